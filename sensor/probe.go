package sensor

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
)

// Options tunes a Probe. The zero value is the defaults.
type Options struct {
	// RingBytes is the ring buffer's size: a power of two, a multiple of
	// the page size. Default 4 MiB: about 20 ms of a 200k events/s burst
	// at ~100 bytes an event, while the reader is descheduled.
	RingBytes uint32
	// WakeupBytes is how much data must be pending before the kernel
	// wakes the reader. Default 64 KiB: one wakeup per several hundred
	// events instead of one per event (a wakeup costs ~15 µs here).
	WakeupBytes uint64
	// PollInterval bounds how long an event may wait in the ring below
	// WakeupBytes: the reader polls at least this often. Default 10 ms.
	PollInterval time.Duration
	// EventBuffer is the capacity of the Events channel. Default 4096. A
	// consumer that falls behind fills it, then the ring, and then the
	// kernel counts drops.
	EventBuffer int
}

func (o Options) withDefaults() Options {
	if o.RingBytes == 0 {
		o.RingBytes = 4 << 20
	}
	if o.WakeupBytes == 0 {
		o.WakeupBytes = 64 << 10
	}
	if o.PollInterval == 0 {
		o.PollInterval = 10 * time.Millisecond
	}
	if o.EventBuffer == 0 {
		o.EventBuffer = 4096
	}
	return o
}

// Probe is the loaded and attached sensor. Its methods are safe for
// concurrent use.
type Probe struct {
	coll   *ebpf.Collection
	links  []link.Link
	rd     *ringbuf.Reader
	events chan Event
	poll   time.Duration
	mono0  time.Duration
	wall0  time.Time

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error

	mu        sync.Mutex
	malformed uint64
}

// Load loads the sensor's BPF programs, attaches them, and starts reading
// events. It needs CAP_BPF and CAP_PERFMON (root, here). An error wraps
// the kernel's reason (ebpf.ErrNotSupported, os.ErrPermission, a verifier
// log) and leaves nothing attached.
func Load(opts Options) (_ *Probe, err error) {
	opts = opts.withDefaults()
	spec, err := loadSensor()
	if err != nil {
		return nil, fmt.Errorf("load sensor spec: %w", err)
	}
	spec.Maps["events"].MaxEntries = opts.RingBytes
	if err := spec.Variables["wakeup_bytes"].Set(opts.WakeupBytes); err != nil {
		return nil, fmt.Errorf("set wakeup_bytes: %w", err)
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("load sensor programs: %+v", ve)
		}
		return nil, fmt.Errorf("load sensor programs: %w", err)
	}
	p := &Probe{
		coll:   coll,
		events: make(chan Event, opts.EventBuffer),
		poll:   opts.PollInterval,
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	defer func() {
		if err != nil {
			p.detach()
			coll.Close()
		}
	}()
	// Attach in a fixed order so that failures read the same every run.
	names := make([]string, 0, len(spec.Programs))
	for name := range spec.Programs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		l, err := attach(spec.Programs[name].SectionName, coll.Programs[name])
		if err != nil {
			return nil, fmt.Errorf("attach %s: %w", name, err)
		}
		p.links = append(p.links, l)
	}
	if p.rd, err = ringbuf.NewReader(coll.Maps["events"]); err != nil {
		return nil, fmt.Errorf("open ring buffer: %w", err)
	}
	p.mono0, p.wall0 = monotonicNow(), time.Now()
	go p.read()
	return p, nil
}

// attach attaches a program by its ELF section. All are BTF-typed raw
// tracepoints (tp_btf/<event>): no tracefs, no perf event per call.
func attach(section string, prog *ebpf.Program) (link.Link, error) {
	if !strings.HasPrefix(section, "tp_btf/") {
		return nil, fmt.Errorf("section %q: not a kind the sensor attaches", section)
	}
	return link.AttachTracing(link.TracingOptions{Program: prog, AttachType: ebpf.AttachTraceRawTp})
}

// Watch makes the programs report the processes of the cgroup with this
// id (a container's cgroup v2 id; see CgroupPath). Processes in a child
// cgroup are not included: a container's processes share its cgroup.
func (p *Probe) Watch(cgroupID uint64) error {
	if err := p.coll.Maps["watched"].Put(cgroupID, uint8(1)); err != nil {
		return fmt.Errorf("watch cgroup %d: %w", cgroupID, err)
	}
	return nil
}

// Unwatch stops reporting a cgroup. Unwatching a cgroup not watched is
// not an error: the container may have been removed twice.
func (p *Probe) Unwatch(cgroupID uint64) error {
	err := p.coll.Maps["watched"].Delete(cgroupID)
	if err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("unwatch cgroup %d: %w", cgroupID, err)
	}
	return nil
}

// Events returns the event stream. It is closed after Close.
func (p *Probe) Events() <-chan Event { return p.events }

// Drops returns how many events the kernel could not put in the ring
// buffer because it was full, since Load.
func (p *Probe) Drops() (uint64, error) {
	var perCPU []uint64
	if err := p.coll.Maps["drops"].Lookup(uint32(0), &perCPU); err != nil {
		return 0, fmt.Errorf("read drop counters: %w", err)
	}
	var n uint64
	for _, c := range perCPU {
		n += c
	}
	return n, nil
}

// Malformed returns how many ring buffer records could not be decoded
// (a sensor bug, never expected): counted rather than dropped silently.
func (p *Probe) Malformed() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.malformed
}

// Close detaches every program, stops the reader, releases the kernel
// objects, and closes Events. It is safe to call more than once.
func (p *Probe) Close() error {
	p.closeOnce.Do(func() {
		// Detach first: nothing new enters the ring while it drains.
		errs := []error{p.detach()}
		close(p.stop)
		errs = append(errs, p.rd.Close())
		<-p.done
		p.coll.Close()
		p.closeErr = errors.Join(errs...)
	})
	return p.closeErr
}

func (p *Probe) detach() error {
	var errs []error
	for _, l := range p.links {
		if err := l.Close(); err != nil {
			errs = append(errs, fmt.Errorf("detach: %w", err))
		}
	}
	p.links = nil
	return errors.Join(errs...)
}

// read drains the ring buffer into Events. The kernel wakes it only when
// WakeupBytes are pending; the deadline makes it look at least every
// PollInterval, so a lone event waits at most that long. The deadline is
// renewed only when it has passed, not per record: the reader waits only
// on an empty ring, so a deadline set at most PollInterval ago still
// bounds every wait, and records read in between cost no clock read.
func (p *Probe) read() {
	defer close(p.done)
	defer close(p.events)
	var rec ringbuf.Record
	var d decoder
	p.rd.SetDeadline(time.Now().Add(p.poll))
	for {
		err := p.rd.ReadInto(&rec)
		switch {
		case err == nil:
		case errors.Is(err, os.ErrDeadlineExceeded):
			p.rd.SetDeadline(time.Now().Add(p.poll))
			continue
		case errors.Is(err, ringbuf.ErrClosed):
			return
		case err != nil:
			p.countMalformed()
			continue
		}
		ev, err := d.decode(rec.RawSample, p.mono0, p.wall0)
		if err != nil {
			p.countMalformed()
			continue
		}
		select {
		case p.events <- ev:
		case <-p.stop:
			return
		}
	}
}

func (p *Probe) countMalformed() {
	p.mu.Lock()
	p.malformed++
	p.mu.Unlock()
}

// monotonicNow reads CLOCK_MONOTONIC, the clock of bpf_ktime_get_ns.
func monotonicNow() time.Duration {
	const clockMonotonic = 1
	var ts syscall.Timespec
	syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockMonotonic, uintptr(unsafe.Pointer(&ts)), 0)
	return time.Duration(ts.Nano())
}
