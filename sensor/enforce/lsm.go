package enforce

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// maxLSMPath is the longest path a rule names: the trie's key holds 240
// path bytes with the NUL (the kernel caps LPM data at 256 bytes).
const maxLSMPath = 239

// Per-cgroup flags and rule operations, as bpf/lsm.c defines them.
const (
	cgWatched = 1 << iota
	cgDrift
	cgExec
	cgWrite
	cgDelete
)

const (
	opExec uint32 = iota
	opWrite
	opDelete
	denyChmod
	denyDrift
)

// LSMDenials counts the operations the LSM programs have denied since
// load, by kind.
type LSMDenials struct {
	Exec   uint64 // exec of a path BlockExec named
	Write  uint64 // write-open, creation, rename, link or truncate under a BlockWrite path
	Delete uint64 // unlink, rmdir or rename away of a path BlockDelete named
	Chmod  uint64 // chmod adding an exec bit, drift prevention
	Drift  uint64 // exec of a file written in a drift-prevention cgroup
}

// LSM is the BPF LSM backend: programs on lsm/file_open, path_mknod,
// bprm_check_security, path_unlink and path_chmod that deny an operation
// before it happens (the syscall fails with EPERM), and on path_rename,
// path_link, path_symlink, path_mkdir, path_rmdir and path_truncate so
// that a write rule cannot be bypassed by renaming or linking into place,
// nor a delete rule by renaming the file away. Rules are per cgroup, so
// host processes and unwatched containers are never denied. Its methods
// are safe for concurrent use.
type LSM struct {
	objs  lsmObjects
	links []link.Link

	mu     sync.Mutex
	flags  map[uint64]uint32
	rules  map[uint64][]lsmRuleKey // per cgroup, for Unwatch
	closed bool
	once   sync.Once
	err    error
}

// LoadLSM loads the programs and attaches them. It blocks nothing until a
// rule is added. On a kernel that refuses LSM programs (bpf missing from
// lsm=, or trampolines refused, as on the build host) the error wraps
// unix.EPERM and names the step; nothing stays attached.
func LoadLSM() (*LSM, error) {
	l := &LSM{flags: map[uint64]uint32{}, rules: map[uint64][]lsmRuleKey{}}
	if err := loadLsmObjects(&l.objs, nil); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("load lsm programs: %+v", ve)
		}
		if errors.Is(err, unix.EPERM) {
			// cilium/ebpf appends a memlock hint to every EPERM; as root
			// it means the kernel refuses this program type.
			return nil, fmt.Errorf("load lsm programs (the kernel refuses BPF LSM, or needs root): %w", unix.EPERM)
		}
		return nil, fmt.Errorf("load lsm programs: %w", err)
	}
	p := l.objs.lsmPrograms
	for _, prog := range []*ebpf.Program{
		p.PalisadeFileOpen, p.PalisadePathMknod, p.PalisadeBprmCheck, p.PalisadePathUnlink, p.PalisadePathChmod,
		p.PalisadePathRename, p.PalisadePathLink, p.PalisadePathSymlink, p.PalisadePathMkdir, p.PalisadePathRmdir,
		p.PalisadePathTruncate,
	} {
		ln, err := link.AttachLSM(link.LSMOptions{Program: prog})
		if err != nil {
			_ = l.Close()
			if errors.Is(err, unix.EPERM) {
				err = unix.EPERM // drop cilium/ebpf's memlock hint: see lsmError
			}
			return nil, fmt.Errorf("attach lsm program %s: %w", prog, err)
		}
		l.links = append(l.links, ln)
	}
	return l, nil
}

// setFlags ORs on into the cgroup's flags (or clears off) and writes the
// kernel's entry. The caller holds l.mu.
func (l *LSM) setFlags(cgroupID uint64, on, off uint32) error {
	if l.closed {
		return ErrClosed
	}
	f := (l.flags[cgroupID] | on | cgWatched) &^ off
	if err := l.objs.Cgroups.Put(cgroupID, f); err != nil {
		return fmt.Errorf("update cgroup %d: %w", cgroupID, err)
	}
	l.flags[cgroupID] = f
	return nil
}

// Watch registers the cgroup: its tasks' operations are checked against
// its rules. Adding a rule watches the cgroup too.
func (l *LSM) Watch(cgroupID uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.setFlags(cgroupID, 0, 0)
}

// Unwatch forgets the cgroup and its rules (its container has gone, or
// its rules are being replaced): its tasks are no longer checked. Files
// it marked stay marked until Close, harmlessly: a mark only denies exec
// to a drift-prevention cgroup.
func (l *LSM) Unwatch(cgroupID uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	// The cgroup entry first, so that no hook walks a path for rules
	// being removed.
	if err := l.objs.Cgroups.Delete(cgroupID); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("unwatch cgroup %d: %w", cgroupID, err)
	}
	delete(l.flags, cgroupID)
	var errs []error
	for _, k := range l.rules[cgroupID] {
		if err := l.objs.Rules.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			errs = append(errs, err)
		}
	}
	delete(l.rules, cgroupID)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove rules of cgroup %d: %w", cgroupID, err)
	}
	return nil
}

// DriftPrevention turns D4C's createExecutable/modifyExecutable block on
// or off for the cgroup: a file its tasks open for writing (created or
// modified) is marked in inode storage and cannot be exec'd by them, and
// chmod adding an exec bit to a regular file is denied. Files written
// before it was turned on are not marked.
func (l *LSM) DriftPrevention(cgroupID uint64, on bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if on {
		return l.setFlags(cgroupID, cgDrift, 0)
	}
	return l.setFlags(cgroupID, 0, cgDrift)
}

// In the Block methods a path ending in "/" covers everything below it
// ("/etc/" is D4C's /etc/**); any other path is exact. KernelPath turns a
// D4C targetFilePath into such a path.

// BlockExec denies exec of path (the file the kernel runs, as the
// container sees it, symlinks resolved) to the cgroup's tasks.
func (l *LSM) BlockExec(cgroupID uint64, path string) error {
	return l.addRule(cgroupID, opExec, cgExec, path)
}

// BlockWrite denies opening for write, creating, truncating, and renaming
// or linking onto path to the cgroup's tasks.
func (l *LSM) BlockWrite(cgroupID uint64, path string) error {
	return l.addRule(cgroupID, opWrite, cgWrite, path)
}

// BlockDelete denies unlinking, removing and renaming away path to the
// cgroup's tasks.
func (l *LSM) BlockDelete(cgroupID uint64, path string) error {
	return l.addRule(cgroupID, opDelete, cgDelete, path)
}

// KernelPath converts a D4C targetFilePath or executable pattern into a
// path the Block methods take: an exact path stays as it is, a trailing
// "/**" becomes a "/" prefix. Any other wildcard ("*" within a segment,
// "**" before the last segment) cannot be matched by the kernel's trie:
// the error wraps ErrPatternUnsupported, and a block rule using it is a
// validation error. It also returns ErrNotAbsolute and ErrPathTooLong.
func KernelPath(pattern string) (string, error) {
	if !strings.HasPrefix(pattern, "/") {
		return "", fmt.Errorf("kernel path %q: %w", pattern, ErrNotAbsolute)
	}
	path := pattern
	if strings.HasSuffix(pattern, "/**") {
		path = strings.TrimSuffix(pattern, "**")
	} else if strings.HasSuffix(pattern, "/") {
		return "", fmt.Errorf("kernel path %q: a directory is covered by %q: %w", pattern, pattern+"**", ErrPatternUnsupported)
	}
	if strings.Contains(path, "*") {
		return "", fmt.Errorf("kernel path %q: only a trailing /** is a prefix: %w", pattern, ErrPatternUnsupported)
	}
	if len(path) > maxLSMPath {
		return "", fmt.Errorf("kernel path %q: %w", pattern, ErrPathTooLong)
	}
	return path, nil
}

// ErrPatternUnsupported: a path pattern the BPF LSM rules cannot express
// (see KernelPath).
var ErrPatternUnsupported = errors.New("pattern not expressible as a kernel path rule")

// addRule puts the rule in the trie, then flags the cgroup, so that a
// hook never sees the flag without its rule. It returns ErrNotAbsolute or
// ErrPathTooLong for a path the kernel side cannot match.
func (l *LSM) addRule(cgroupID uint64, op, flag uint32, path string) error {
	prefix := strings.HasSuffix(path, "/")
	if len(path) == 0 || path[0] != '/' {
		return fmt.Errorf("lsm rule %q: %w", path, ErrNotAbsolute)
	}
	if len(path) > maxLSMPath {
		return fmt.Errorf("lsm rule %q: %w", path, ErrPathTooLong)
	}
	k := lsmRuleKey{Op: op, CgroupId: cgroupID}
	for i := 0; i < len(path); i++ {
		k.Path[i] = int8(path[i])
	}
	n := len(path)
	if !prefix {
		n++ // the NUL: an exact rule covers no longer path
	}
	k.Prefixlen = uint32(4+8+n) * 8
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	if err := l.objs.Rules.Put(k, uint8(1)); err != nil {
		return fmt.Errorf("add lsm rule %q for cgroup %d: %w", path, cgroupID, err)
	}
	l.rules[cgroupID] = append(l.rules[cgroupID], k)
	return l.setFlags(cgroupID, flag, 0)
}

// Denials returns how many operations the programs have denied since
// load; ErrClosed after Close, whose maps are gone.
func (l *LSM) Denials() (LSMDenials, error) {
	var d LSMDenials
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return d, ErrClosed
	}
	for kind, dst := range map[uint32]*uint64{
		opExec: &d.Exec, opWrite: &d.Write, opDelete: &d.Delete, denyChmod: &d.Chmod, denyDrift: &d.Drift,
	} {
		var perCPU []uint64
		if err := l.objs.Denials.Lookup(kind, &perCPU); err != nil {
			return d, fmt.Errorf("read denial counters: %w", err)
		}
		for _, c := range perCPU {
			*dst += c
		}
	}
	return d, nil
}

// Close detaches every program, so nothing is denied any more, and
// releases the maps (inode marks included). It is safe to call more than
// once.
func (l *LSM) Close() error {
	l.once.Do(func() {
		l.mu.Lock()
		l.closed = true
		l.mu.Unlock()
		var errs []error
		for _, ln := range l.links {
			errs = append(errs, ln.Close())
		}
		errs = append(errs, l.objs.Close())
		l.err = errors.Join(errs...)
	})
	return l.err
}
