package enforce

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Kind is what a permission event asks to do.
type Kind uint8

const (
	// Open: the file is being opened (read, write or both).
	Open Kind = iota + 1
	// OpenExec: the file is being opened to be executed: the program of
	// an execve, or the ELF interpreter the kernel loads for it. An exec
	// is reported as an OpenExec event and then an Open event for the
	// same file; denying either fails the execve with EPERM.
	OpenExec
)

func (k Kind) String() string {
	switch k {
	case Open:
		return "open"
	case OpenExec:
		return "open-exec"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Verdict answers a permission event. The zero value allows.
type Verdict uint8

const (
	Allow Verdict = iota
	Deny          // the syscall fails with EPERM
)

// Access is one permission event: a process of a marked container opening
// or executing a file, waiting in the kernel for the answer.
type Access struct {
	Kind Kind
	// Path names the file from this process's mount namespace (readlink
	// of the event's fd). For a file on a marked container root it is the
	// path inside the container: the container's root mount is the root
	// of another namespace, so the kernel's d_path stops there. A file
	// unlinked while open reads with the kernel's " (deleted)" suffix.
	Path string
	// ContainerPath is the path as the container sees it when the file is
	// on a root given to MarkContainer, "" otherwise (a mount of the
	// container under its root, such as a volume, is not marked).
	ContainerPath string
	// Root is the MarkContainer argument the file is under, "" otherwise.
	Root string
	// TID is the thread that made the syscall, in this process's pid
	// namespace (the host's, for the sensor); PID reads its process.
	TID int
	// CgroupID is the id of the thread's cgroup v2 directory, the value
	// BPF programs see; 0 when it could not be read (the thread exited).
	// A host process that reaches the container's files through
	// /proc/<pid>/root uses the marked mount too, so decide by CgroupID:
	// the sensor never blocks a host process.
	CgroupID uint64
}

// FanotifyStats counts how permission events were answered.
type FanotifyStats struct {
	Allowed, Denied uint64
	// TimedOut events got no decision within the timeout and were
	// allowed (and are counted in Allowed too).
	TimedOut uint64
	// Released events were pending at Close and were allowed (and are
	// counted in Allowed too).
	Released uint64
}

// DefaultTimeout bounds how long a process waits for a decision. A
// decision is a lookup in the native matcher (microseconds); a second
// means the sensor is stuck, and a stuck sensor must not stall every open
// in the containers it watches.
const DefaultTimeout = time.Second

// FanotifyOption configures NewFanotify.
type FanotifyOption func(*Fanotify)

// WithTimeout sets how long an event may wait for its decision before it
// is allowed (DefaultTimeout).
func WithTimeout(d time.Duration) FanotifyOption {
	return func(f *Fanotify) { f.timeout = d }
}

// pollInterval bounds how long Close waits for the reader to notice.
const pollInterval = 50 * time.Millisecond

// Fanotify denies opens and execs on container mounts through fanotify
// permission events (FAN_OPEN_PERM, FAN_OPEN_EXEC_PERM). Each event is
// decided by the callback given to NewFanotify, on the goroutine that
// read it: handing it to another goroutine doubles the cost of a decision
// (measured: ~160 µs instead of ~80 µs added to an open here, mostly
// wakeups). An event without a decision within the timeout is allowed and
// counted: blocking opens in a container (and whatever on the host waits
// for that container) on a slow sensor is worse than letting one
// operation through. A decision that overruns also hands reading over to
// a new goroutine, so one stuck decision never stalls the events after
// it; the stuck goroutine exits when its decision returns. Its methods are
// safe for concurrent use.
type Fanotify struct {
	fd      int
	decide  func(Access) Verdict
	timeout time.Duration
	cgroup2 string // where cgroup v2 is mounted, "" if it is not

	mu       sync.Mutex
	idle     *sync.Cond        // signalled when reading drops to 0 while stopping
	gen      uint64            // the reading goroutine's generation; others exit
	reading  int               // goroutines in poll or read
	stopping bool              // Close has begun: no new reads
	closed   bool              // the group's fd is closed: no more writes
	roots    map[uint64]string // mount id → MarkContainer argument
	pending  map[*permEvent]struct{}

	allowed, denied, timedOut, released atomic.Uint64
	closeOnce                           sync.Once
	closeErr                            error
}

// permEvent is one event waiting for its answer; answer runs once.
type permEvent struct {
	fd    int32
	tid   int
	kind  Kind
	gen   uint64 // the generation of the goroutine deciding it
	once  sync.Once
	timer *time.Timer
}

// NewFanotify creates a fanotify group for permission events; nothing is
// watched until MarkContainer. It needs CAP_SYS_ADMIN. decide must not
// open files on a marked mount itself (its own open would wait for it).
func NewFanotify(decide func(Access) Verdict, opts ...FanotifyOption) (*Fanotify, error) {
	fd, err := unix.FanotifyInit(unix.FAN_CLASS_CONTENT|unix.FAN_CLOEXEC|unix.FAN_NONBLOCK|unix.FAN_REPORT_TID,
		unix.O_RDONLY|unix.O_LARGEFILE|unix.O_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("fanotify_init: %w", err)
	}
	f := &Fanotify{
		fd:      fd,
		decide:  decide,
		timeout: DefaultTimeout,
		roots:   map[uint64]string{},
		pending: map[*permEvent]struct{}{},
	}
	for _, o := range opts {
		o(f)
	}
	f.idle = sync.NewCond(&f.mu)
	f.cgroup2, _ = cgroup2Mount()
	go f.read(0)
	return f, nil
}

// MarkContainer makes opens and execs of files on the mount at root wait
// for a decision. root must be the root of a mount, and should be the
// container's own: /proc/<pid>/root of a process in the container. runc
// bind-mounts the rootfs directory onto itself in the container's mount
// namespace and pivots into it, so the container's root is a mount no
// host process uses: marking it leaves the host's opens of the same files
// (through the host's mount) alone. The rootfs's host path is a plain
// directory on a host mount and is refused (ErrNotMountRoot): marking the
// host mount would stall host processes.
func (f *Fanotify) MarkContainer(root string) error {
	st, err := statMount(unix.AT_FDCWD, root, 0)
	if err != nil {
		return fmt.Errorf("mark %s: %w", root, err)
	}
	if st.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT != 0 && st.Attributes&unix.STATX_ATTR_MOUNT_ROOT == 0 {
		return fmt.Errorf("mark %s: %w", root, ErrNotMountRoot)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return fmt.Errorf("mark %s: %w", root, ErrClosed)
	}
	if err := unix.FanotifyMark(f.fd, unix.FAN_MARK_ADD|unix.FAN_MARK_MOUNT,
		unix.FAN_OPEN_PERM|unix.FAN_OPEN_EXEC_PERM, unix.AT_FDCWD, root); err != nil {
		return fmt.Errorf("mark %s: %w", root, err)
	}
	f.roots[st.Mnt_id] = root
	return nil
}

// UnmarkContainer stops watching the mount at root; opens already waiting
// still get their decision.
func (f *Fanotify) UnmarkContainer(root string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return fmt.Errorf("unmark %s: %w", root, ErrClosed)
	}
	for id, r := range f.roots {
		if r == root {
			delete(f.roots, id)
		}
	}
	// A container that exited took its mount, and the mark, with it.
	err := unix.FanotifyMark(f.fd, unix.FAN_MARK_REMOVE|unix.FAN_MARK_MOUNT,
		unix.FAN_OPEN_PERM|unix.FAN_OPEN_EXEC_PERM, unix.AT_FDCWD, root)
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmark %s: %w", root, err)
	}
	return nil
}

// Stats returns how events were answered since NewFanotify.
func (f *Fanotify) Stats() FanotifyStats {
	return FanotifyStats{
		Allowed:  f.allowed.Load(),
		Denied:   f.denied.Load(),
		TimedOut: f.timedOut.Load(),
		Released: f.released.Load(),
	}
}

// Close stops reading, allows every event still waiting for a decision,
// and closes the group, which removes its marks: after Close nothing is
// blocked and no process waits on it. It does not wait for decide calls
// in flight; their verdicts are dropped. Safe to call more than once.
func (f *Fanotify) Close() error {
	f.closeOnce.Do(func() {
		f.mu.Lock()
		f.stopping = true
		for f.reading > 0 { // at most pollInterval
			f.idle.Wait()
		}
		waiting := make([]*permEvent, 0, len(f.pending))
		for ev := range f.pending {
			waiting = append(waiting, ev)
		}
		f.mu.Unlock()
		for _, ev := range waiting {
			if f.answer(ev, Allow) {
				f.released.Add(1)
			}
		}
		f.mu.Lock()
		f.closed = true
		// The kernel allows whatever is still queued, or read and not
		// answered, when the group's last fd closes.
		f.closeErr = unix.Close(f.fd)
		f.mu.Unlock()
	})
	return f.closeErr
}

// read takes events off the group and decides them, while it is the
// reading goroutine of generation gen.
func (f *Fanotify) read(gen uint64) {
	buf := make([]byte, 64*unix.FAN_EVENT_METADATA_LEN)
	fds := []unix.PollFd{{Fd: int32(f.fd), Events: unix.POLLIN}}
	for {
		f.mu.Lock()
		if f.stopping || f.gen != gen {
			f.mu.Unlock()
			return
		}
		f.reading++
		f.mu.Unlock()

		var evs []*permEvent
		n, err := unix.Poll(fds, int(pollInterval/time.Millisecond))
		if err == nil && n > 0 {
			if n, err := unix.Read(f.fd, buf); err == nil {
				evs = f.parse(buf[:n], gen) // EAGAIN: another reader took them
			}
		}

		f.mu.Lock()
		f.reading--
		if f.stopping && f.reading == 0 {
			f.idle.Broadcast()
		}
		f.mu.Unlock()
		for _, ev := range evs {
			f.answer(ev, f.decide(f.access(ev.kind, int(ev.fd), ev.tid)))
		}
	}
}

// parse registers the permission events in b and starts their timers:
// every event of a batch runs against its deadline from the moment it is
// read, even while an earlier one is being decided.
func (f *Fanotify) parse(b []byte, gen uint64) []*permEvent {
	var evs []*permEvent
	for len(b) >= unix.FAN_EVENT_METADATA_LEN {
		md := (*unix.FanotifyEventMetadata)(unsafe.Pointer(&b[0]))
		if md.Event_len < unix.FAN_EVENT_METADATA_LEN || int(md.Event_len) > len(b) {
			break
		}
		b = b[md.Event_len:]
		if md.Fd < 0 { // FAN_NOFD: a queue overflow, nothing to answer
			continue
		}
		if md.Mask&(unix.FAN_OPEN_PERM|unix.FAN_OPEN_EXEC_PERM) == 0 {
			unix.Close(int(md.Fd))
			continue
		}
		ev := &permEvent{fd: md.Fd, tid: int(md.Pid), kind: Open, gen: gen}
		if md.Mask&unix.FAN_OPEN_EXEC_PERM != 0 {
			ev.kind = OpenExec
		}
		// The timer is set under mu, where answer reads it.
		f.mu.Lock()
		f.pending[ev] = struct{}{}
		ev.timer = time.AfterFunc(f.timeout, func() { f.overrun(ev) })
		f.mu.Unlock()
		evs = append(evs, ev)
	}
	return evs
}

// overrun allows an event whose decision missed the deadline and, when
// the goroutine deciding it is still the reader, starts a new reader.
func (f *Fanotify) overrun(ev *permEvent) {
	if !f.answer(ev, Allow) {
		return
	}
	f.timedOut.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gen == ev.gen && !f.stopping {
		f.gen++
		go f.read(f.gen)
	}
}

// answer writes the verdict for ev unless it has been answered, and
// closes its fd. It reports whether this call answered.
func (f *Fanotify) answer(ev *permEvent, v Verdict) bool {
	answered := false
	ev.once.Do(func() {
		answered = true
		resp := uint32(unix.FAN_ALLOW)
		if v == Deny {
			resp = unix.FAN_DENY
			f.denied.Add(1)
		} else {
			f.allowed.Add(1)
		}
		var b [8]byte
		binary.NativeEndian.PutUint32(b[0:], uint32(ev.fd))
		binary.NativeEndian.PutUint32(b[4:], resp)
		f.mu.Lock()
		defer f.mu.Unlock()
		ev.timer.Stop()
		delete(f.pending, ev)
		if !f.closed {
			_, _ = unix.Write(f.fd, b[:])
		}
		unix.Close(int(ev.fd))
	})
	return answered
}

// access describes an event from its fd and the waiting thread's /proc.
func (f *Fanotify) access(kind Kind, fd, tid int) Access {
	a := Access{Kind: kind, TID: tid}
	a.Path, _ = os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if st, err := statMount(fd, "", unix.AT_EMPTY_PATH); err == nil {
		f.mu.Lock()
		a.Root = f.roots[st.Mnt_id]
		f.mu.Unlock()
		if a.Root != "" {
			a.ContainerPath = a.Path
		}
	}
	a.CgroupID = cgroupID(f.cgroup2, procDir(tid))
	return a
}

// statMount stats a file for its mount id: the 64-bit id the kernel never
// reuses (Linux 6.8+) where it has one, so that a container's mount that
// went away is not mistaken for a later one; else the reusable id.
func statMount(dirfd int, path string, flags int) (unix.Statx_t, error) {
	var st unix.Statx_t
	if err := unix.Statx(dirfd, path, flags, unix.STATX_MNT_ID_UNIQUE, &st); err != nil {
		return st, err
	}
	if st.Mask&unix.STATX_MNT_ID_UNIQUE != 0 {
		return st, nil
	}
	err := unix.Statx(dirfd, path, flags, unix.STATX_MNT_ID, &st)
	return st, err
}

// PID returns the process id of the thread (read from /proc/<tid>/status
// when asked, not for every event: most decisions need only the cgroup
// and the path), or 0 when it exited. Valid during the decision.
func (a Access) PID() int {
	pid, _ := tgid(procDir(a.TID))
	return pid
}

// Write reports whether the open asks for write access (O_WRONLY,
// O_RDWR, O_CREAT, O_TRUNC), when known is true. A fanotify event does
// not carry the open's flags: they are read from the syscall the thread
// is blocked in (/proc/<tid>/syscall), so it is valid only during the
// decision, and known only for open, openat and creat (openat2 passes its
// flags in memory) and never for OpenExec.
func (a Access) Write() (write, known bool) {
	if a.Kind != Open {
		return false, false
	}
	return openWrites(procDir(a.TID))
}

func procDir(tid int) string { return "/proc/" + strconv.Itoa(tid) }

// OpenFlags returns the open(2) flags of the open being decided (O_CREAT,
// O_WRONLY, ...), when known is true; known as Write is: during the
// decision, for open, openat and creat, never for OpenExec. A caller
// telling a possible creation (O_CREAT) from a modification uses it.
func (a Access) OpenFlags() (flags uint64, known bool) {
	if a.Kind != Open {
		return 0, false
	}
	return openFlags(procDir(a.TID))
}
