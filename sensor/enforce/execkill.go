package enforce

import (
	"errors"
	"fmt"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// maxExecPath is the longest path Block accepts: the kernel's key holds
// 255 bytes and a NUL.
const maxExecPath = 255

// ExecKiller kills a container's process at exec when the executable is
// one of the paths blocked for its cgroup. It is the fallback for exec on
// kernels without BPF LSM: the exec has happened when the program runs, so
// the process dies by SIGKILL before running the binary (a shell reports
// 137) instead of execve failing with EPERM. Its methods are safe for
// concurrent use.
type ExecKiller struct {
	objs execkillObjects
	link link.Link

	mu    sync.Mutex
	paths map[uint64]int // blocked paths per cgroup, to keep blocked_cgroups exact
	once  sync.Once
	err   error
}

// LoadExecKiller loads the program and attaches it to
// tp_btf/sched_process_exec. It blocks nothing until Block. It needs
// CAP_BPF and CAP_PERFMON (root); an error wraps the kernel's reason and
// leaves nothing attached.
func LoadExecKiller() (*ExecKiller, error) {
	k := &ExecKiller{paths: map[uint64]int{}}
	if err := loadExecSpecs(&k.objs); err != nil {
		return nil, err
	}
	l, err := link.AttachTracing(link.TracingOptions{Program: k.objs.KillExec, AttachType: ebpf.AttachTraceRawTp})
	if err != nil {
		k.objs.Close()
		return nil, fmt.Errorf("attach exec killer: %w", err)
	}
	k.link = l
	return k, nil
}

func loadExecSpecs(objs *execkillObjects) error {
	if err := loadExeckillObjects(objs, nil); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return fmt.Errorf("load exec killer: %+v", ve)
		}
		return fmt.Errorf("load exec killer: %w", err)
	}
	return nil
}

// execKey builds the map key: the path NUL-padded, so the kernel compares the
// whole key without knowing the length.
func execKey(cgroupID uint64, path string) (execkillExecKey, error) {
	var k execkillExecKey
	if len(path) == 0 || path[0] != '/' {
		return k, fmt.Errorf("block exec %q: %w", path, ErrNotAbsolute)
	}
	if len(path) > maxExecPath {
		return k, fmt.Errorf("block exec %q: %w", path, ErrPathTooLong)
	}
	k.CgroupId = cgroupID
	for i := 0; i < len(path); i++ {
		k.Path[i] = int8(path[i])
	}
	return k, nil
}

// Block kills every exec of path (exactly: the file the kernel runs, as
// the container sees it, symlinks resolved, e.g. /bin/busybox for
// /bin/cat in a busybox image) by a process of the cgroup with this id.
// It returns ErrNotAbsolute or ErrPathTooLong for a path the kernel side
// cannot match.
func (k *ExecKiller) Block(cgroupID uint64, path string) error {
	key, err := execKey(cgroupID, path)
	if err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.objs.BlockedPaths.Update(key, uint8(1), ebpf.UpdateNoExist); err != nil {
		if errors.Is(err, ebpf.ErrKeyExist) {
			return nil
		}
		return fmt.Errorf("block exec %q in cgroup %d: %w", path, cgroupID, err)
	}
	// The cgroup entry after the path: an exec between the two sees the
	// cgroup without its path, never the reverse.
	if err := k.objs.BlockedCgroups.Put(cgroupID, uint32(k.paths[cgroupID]+1)); err != nil {
		_ = k.objs.BlockedPaths.Delete(key)
		return fmt.Errorf("block exec %q in cgroup %d: %w", path, cgroupID, err)
	}
	k.paths[cgroupID]++
	return nil
}

// Unblock lets execs of path in the cgroup run again. Unblocking a path
// not blocked is not an error.
func (k *ExecKiller) Unblock(cgroupID uint64, path string) error {
	key, err := execKey(cgroupID, path)
	if err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.objs.BlockedPaths.Delete(key); err != nil {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil
		}
		return fmt.Errorf("unblock exec %q in cgroup %d: %w", path, cgroupID, err)
	}
	k.paths[cgroupID]--
	if k.paths[cgroupID] > 0 {
		return nil
	}
	delete(k.paths, cgroupID)
	if err := k.objs.BlockedCgroups.Delete(cgroupID); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("unblock cgroup %d: %w", cgroupID, err)
	}
	return nil
}

// Kills returns how many processes the program has killed since load.
func (k *ExecKiller) Kills() (uint64, error) {
	var perCPU []uint64
	if err := k.objs.Kills.Lookup(uint32(0), &perCPU); err != nil {
		return 0, fmt.Errorf("read kill counters: %w", err)
	}
	var n uint64
	for _, c := range perCPU {
		n += c
	}
	return n, nil
}

// Close detaches the program, so nothing is killed any more, and releases
// its maps. It is safe to call more than once.
func (k *ExecKiller) Close() error {
	k.once.Do(func() {
		k.err = errors.Join(k.link.Close(), k.objs.Close())
	})
	return k.err
}
