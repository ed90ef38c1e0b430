package sensor

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
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
	// WakeupBytes: the reader polls at least this often. Default
	// DefaultPollInterval.
	// Each poll costs far more than its read: waking a thread costs the
	// machine CPU time whatever wakes it (on a 2-vCPU VM with a 6.18
	// guest kernel, a Go program that only ticks every 30 ms uses 0.9% of
	// a CPU), and a poll touches cold caches. A spawn loop in a watched
	// container (fork+exec: two events a spawn, a spawn every 2.8 ms) cost the
	// sensor's user space 74–82 µs of CPU per spawn at 30 ms (Falco's
	// libscap waits 30 ms on empty buffers) and 24–25 µs at 100 ms, in
	// back-to-back runs of bench/sensor; 10 ms cost more still. Blocking
	// does not wait for the reader: it happens in the kernel (or on
	// fanotify's own fd), so only the log and alert streams see the
	// interval, and a busy ring wakes the reader at WakeupBytes anyway.
	PollInterval time.Duration
	// EventBuffer is how many events may wait for the consumer, decoded,
	// before the reader stops draining the ring. Default 4096. A
	// consumer that falls behind fills it, then the ring, and then the
	// kernel counts drops.
	EventBuffer int
}

// DefaultPollInterval is Options.PollInterval's default (see there why).
const DefaultPollInterval = 100 * time.Millisecond

// MaxBatch is the most events a batch from Batches holds. The reader hands
// over a batch when it is full or when the ring has nothing more to read,
// so batching never holds an event back.
const MaxBatch = 256

func (o Options) withDefaults() Options {
	if o.RingBytes == 0 {
		o.RingBytes = 4 << 20
	}
	if o.WakeupBytes == 0 {
		o.WakeupBytes = 64 << 10
	}
	if o.PollInterval == 0 {
		o.PollInterval = DefaultPollInterval
	}
	if o.EventBuffer == 0 {
		o.EventBuffer = 4096
	}
	return o
}

// Probe is the loaded and attached sensor. Its methods are safe for
// concurrent use.
type Probe struct {
	coll    *ebpf.Collection
	links   []link.Link
	rd      *ringbuf.Reader
	batches chan []Event
	poll    time.Duration
	buffer  int

	eventsOnce sync.Once
	events     chan Event // Events' stream, made by its first call
	mono0      time.Duration
	wall0      time.Time

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error

	malformed atomic.Uint64
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
		coll:    coll,
		batches: make(chan []Event, max(1, opts.EventBuffer/MaxBatch)),
		poll:    opts.PollInterval,
		buffer:  opts.EventBuffer,
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
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

// Batches returns the event stream in batches, in the kernel's order: the
// sensor's fast path. Each batch holds 1 to MaxBatch events and belongs
// to its receiver (the reader never touches it again). The channel is
// closed after Close. Read either Batches or Events, not both: each
// event goes to one of them.
func (p *Probe) Batches() <-chan []Event { return p.batches }

// Events returns the event stream one event at a time, taken from
// Batches by a goroutine started on the first call: simpler to read, at
// a channel operation per event. It is closed after Close.
func (p *Probe) Events() <-chan Event {
	p.eventsOnce.Do(func() {
		p.events = make(chan Event, p.buffer)
		go p.unbatch()
	})
	return p.events
}

func (p *Probe) unbatch() {
	defer close(p.events)
	for b := range p.batches {
		for _, ev := range b {
			select {
			case p.events <- ev:
			case <-p.stop:
				return
			}
		}
	}
}

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
func (p *Probe) Malformed() uint64 { return p.malformed.Load() }

// Close detaches every program, stops the reader, releases the kernel
// objects, and closes Batches and Events. It is safe to call more than
// once.
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

// read drains the ring buffer into Batches. The kernel wakes it only when
// WakeupBytes are pending; the deadline makes it look at least every
// PollInterval, so a lone event waits at most that long. The deadline is
// renewed only when it has passed, not per record: the reader waits only
// on an empty ring, so a deadline set at most PollInterval ago still
// bounds every wait, and records read in between cost no clock read.
// Decoded events collect in a batch, handed over when it is full or when
// the ring holds nothing more (an atomic read of its positions): a
// channel operation per batch, not per event, and no event waits for
// one that has not happened yet.
func (p *Probe) read() {
	defer close(p.done)
	defer close(p.batches)
	var rec ringbuf.Record
	var d decoder
	// Events are decoded into a scratch array, and a batch is a copy of
	// its used part: at a low rate a batch holds a few events, and a
	// MaxBatch slice for each would cost ~28 KiB to clear and collect.
	var scratch [MaxBatch]Event
	batch := scratch[:0]
	p.rd.SetDeadline(time.Now().Add(p.poll))
	for {
		err := p.rd.ReadInto(&rec)
		switch {
		case err == nil:
			ev, err := d.decode(rec.RawSample, p.mono0, p.wall0)
			if err != nil {
				p.malformed.Add(1)
				break
			}
			batch = append(batch, ev)
		case errors.Is(err, os.ErrDeadlineExceeded):
			p.rd.SetDeadline(time.Now().Add(p.poll))
		case errors.Is(err, ringbuf.ErrClosed):
			return
		default:
			p.malformed.Add(1)
		}
		if len(batch) == 0 || (len(batch) < MaxBatch && p.rd.AvailableBytes() > 0) {
			continue
		}
		select {
		case p.batches <- slices.Clone(batch):
			clear(batch) // the scratch keeps no strings alive
			batch = batch[:0]
		case <-p.stop:
			return
		}
	}
}

// monotonicNow reads CLOCK_MONOTONIC, the clock of bpf_ktime_get_ns.
func monotonicNow() time.Duration {
	const clockMonotonic = 1
	var ts syscall.Timespec
	syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockMonotonic, uintptr(unsafe.Pointer(&ts)), 0)
	return time.Duration(ts.Nano())
}
