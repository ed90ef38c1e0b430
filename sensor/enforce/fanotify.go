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
	// of another namespace, so the kernel's d_path stops there.
	Path string
	// ContainerPath is the path as the container sees it when the file is
	// on a root given to MarkContainer, "" otherwise (a mount of the
	// container under its root, such as a volume, is not marked).
	ContainerPath string
	// Root is the MarkContainer argument the file is under, "" otherwise.
	Root string
	// PID is the process and TID the thread that made the syscall, in
	// this process's pid namespace (the host's, for the sensor).
	PID, TID int
	// CgroupID is the id of the process's cgroup v2 directory, the value
	// BPF programs see; 0 when it could not be read (the process exited).
	CgroupID uint64
	// Write says the open asks for write access, when WriteKnown: read
	// from the blocked syscall's arguments (/proc/<tid>/syscall), since a
	// fanotify event does not carry the open's flags. openat2 passes its
	// flags in memory and leaves WriteKnown false.
	Write, WriteKnown bool
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
// decided by the callback given to NewFanotify, on a goroutine of its own,
// so one slow decision does not hold up other processes. An event without
// a decision within the timeout is allowed and counted: blocking opens in
// a container (and whatever on the host waits for that container) on a
// slow sensor is worse than letting one operation through. Its methods
// are safe for concurrent use.
type Fanotify struct {
	fd      int
	decide  func(Access) Verdict
	timeout time.Duration
	cgroup2 string // where cgroup v2 is mounted, "" if it is not

	stop chan struct{}
	done chan struct{}

	mu      sync.Mutex
	closed  bool
	roots   map[uint64]string // mount id → MarkContainer argument
	pending map[*permEvent]struct{}

	allowed, denied, timedOut, released atomic.Uint64
	closeOnce                           sync.Once
	closeErr                            error
}

// permEvent is one event waiting for its answer; answer runs once.
type permEvent struct {
	fd    int32
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
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		roots:   map[uint64]string{},
		pending: map[*permEvent]struct{}{},
	}
	for _, o := range opts {
		o(f)
	}
	f.cgroup2, _ = cgroup2Mount()
	go f.read()
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
	var st unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, root, 0, unix.STATX_MNT_ID, &st); err != nil {
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
	if err := unix.FanotifyMark(f.fd, unix.FAN_MARK_REMOVE|unix.FAN_MARK_MOUNT,
		unix.FAN_OPEN_PERM|unix.FAN_OPEN_EXEC_PERM, unix.AT_FDCWD, root); err != nil {
		return fmt.Errorf("unmark %s: %w", root, err)
	}
	for id, r := range f.roots {
		if r == root {
			delete(f.roots, id)
		}
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
		close(f.stop)
		<-f.done
		f.mu.Lock()
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
		// The kernel allows whatever is still queued unread when the
		// group's last fd closes.
		f.closeErr = unix.Close(f.fd)
		f.mu.Unlock()
	})
	return f.closeErr
}

// read takes events off the group and starts a decision for each.
func (f *Fanotify) read() {
	defer close(f.done)
	buf := make([]byte, 64*unix.FAN_EVENT_METADATA_LEN)
	fds := []unix.PollFd{{Fd: int32(f.fd), Events: unix.POLLIN}}
	for {
		select {
		case <-f.stop:
			return
		default:
		}
		if _, err := unix.Poll(fds, int(pollInterval/time.Millisecond)); err != nil && !errors.Is(err, unix.EINTR) {
			return
		}
		n, err := unix.Read(f.fd, buf)
		if err != nil {
			continue // EAGAIN after a timeout, EINTR
		}
		f.dispatch(buf[:n])
	}
}

func (f *Fanotify) dispatch(b []byte) {
	for len(b) >= unix.FAN_EVENT_METADATA_LEN {
		md := (*unix.FanotifyEventMetadata)(unsafe.Pointer(&b[0]))
		if md.Event_len < unix.FAN_EVENT_METADATA_LEN || int(md.Event_len) > len(b) {
			return
		}
		b = b[md.Event_len:]
		if md.Fd < 0 { // FAN_NOFD: a queue overflow, nothing to answer
			continue
		}
		if md.Mask&(unix.FAN_OPEN_PERM|unix.FAN_OPEN_EXEC_PERM) == 0 {
			unix.Close(int(md.Fd))
			continue
		}
		kind := Open
		if md.Mask&unix.FAN_OPEN_EXEC_PERM != 0 {
			kind = OpenExec
		}
		ev := &permEvent{fd: md.Fd}
		f.mu.Lock()
		f.pending[ev] = struct{}{}
		f.mu.Unlock()
		ev.timer = time.AfterFunc(f.timeout, func() {
			if f.answer(ev, Allow) {
				f.timedOut.Add(1)
			}
		})
		go func(tid int) {
			v := f.decide(f.access(kind, int(ev.fd), tid))
			f.answer(ev, v)
		}(int(md.Pid))
	}
}

// answer writes the verdict for ev unless it has been answered, and
// closes its fd. It reports whether this call answered.
func (f *Fanotify) answer(ev *permEvent, v Verdict) bool {
	answered := false
	ev.once.Do(func() {
		answered = true
		if ev.timer != nil {
			ev.timer.Stop()
		}
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
	a := Access{Kind: kind, TID: tid, PID: tid}
	a.Path, _ = os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	var st unix.Statx_t
	if unix.Statx(fd, "", unix.AT_EMPTY_PATH, unix.STATX_MNT_ID, &st) == nil {
		f.mu.Lock()
		a.Root = f.roots[st.Mnt_id]
		f.mu.Unlock()
		if a.Root != "" {
			a.ContainerPath = a.Path
		}
	}
	proc := "/proc/" + strconv.Itoa(tid)
	if pid, ok := tgid(proc); ok {
		a.PID = pid
	}
	a.CgroupID = cgroupID(f.cgroup2, proc)
	if kind == Open {
		a.Write, a.WriteKnown = openWrites(proc)
	}
	return a
}
