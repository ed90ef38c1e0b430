package runtime

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// StateRoot is runc's state directory for these containers (runc --root).
// It is not runc's default, so that `runc --root StateRoot list` shows only
// test containers and a reaper may remove the ones a dead test left.
const StateRoot = "/run/palisade-test-runc"

// Bounds on runc invocations: generous for a loaded CI machine, short
// enough that a hung runc fails the test instead of its whole timeout.
const (
	startTimeout   = 30 * time.Second
	execTimeout    = 30 * time.Second
	cleanupTimeout = 15 * time.Second
)

// ownerAnnotation records the pid of the test binary that started a
// container, and cgroupAnnotation its cgroup path, so that the next Start
// reaps containers whose owner died before its Cleanup ran (a kill on
// timeout), cgroup directories included.
const (
	ownerAnnotation  = "dev.palisade.test/owner-pid"
	cgroupAnnotation = "dev.palisade.test/cgroup-path"
)

// Options configures a container. The zero value is a besteffort pod's
// only container, in a systemd-style cgroup path, running `sleep 3600`.
type Options struct {
	// Style is the cgroup path layout (SystemdStyle by default).
	Style CgroupStyle
	// PodUID puts the container in this pod's cgroup; empty means a fresh
	// random uid. Containers of one pod share the pod's directory.
	PodUID string
	// Args is the container's init; empty means `sleep 3600`, long enough
	// to outlive any test (Cleanup kills it).
	Args []string
}

// Container is a running runc container. Its methods are safe for
// concurrent use, and fail the test once the container has been removed.
type Container struct {
	id        string
	podUID    string
	bundle    string
	pid       int
	cgroup    string
	cgroupID  uint64
	runc      string
	hierarchy []string
	init      *runcProc

	mu   sync.Mutex
	bg   []*runcProc // runc exec processes of ExecBackground
	done bool        // remove has run
}

// Start starts a container for the test and registers its removal with
// t.Cleanup. It fails the test when runc or busybox-static is missing.
func Start(t testing.TB, opts Options) *Container {
	t.Helper()
	c, err := start(t, opts)
	if err != nil {
		t.Fatalf("start container: %v", err)
	}
	return c
}

func start(t testing.TB, opts Options) (*Container, error) {
	runc, err := exec.LookPath("runc")
	if err != nil {
		return nil, fmt.Errorf("runc not installed (%w): %s", err, InstallHint)
	}
	tmpl, err := template()
	if err != nil {
		return nil, err
	}
	hier, unified, err := hierarchies()
	if err != nil {
		return nil, err
	}
	if unified == "" {
		return nil, errors.New("no cgroup v2 hierarchy mounted: a container has no cgroup id for BPF programs to see")
	}
	reapOnce.Do(func() { reap(runc, hier) })

	c := &Container{id: randomHex(32), podUID: opts.PodUID, runc: runc, hierarchy: hier}
	if c.podUID == "" {
		c.podUID = randomUUID()
	}
	c.cgroup = opts.Style.cgroupPath(c.podUID, c.id)
	args := opts.Args
	if len(args) == 0 {
		args = []string{"sleep", "3600"}
	}

	c.bundle = t.TempDir()
	if err := c.writeBundle(tmpl, args, os.Getpid()); err != nil {
		return nil, err
	}

	// Cleanup is registered before runc runs: a run that fails halfway
	// may still leave state and cgroup directories behind.
	t.Cleanup(func() {
		if err := c.remove(); err != nil {
			t.Errorf("remove container %s: %v", c.id, err)
		}
	})
	lock, err := lockCgroups()
	if err != nil {
		return nil, err
	}
	c.init, err = startRunc(runc, c.bundle, "init", "run", c.id, []string{"--bundle", c.bundle}, nil)
	if err == nil {
		c.pid, err = c.init.waitPID(c.id)
	}
	lock.unlock()
	if err != nil {
		return nil, fmt.Errorf("runc run: %w", err)
	}
	if c.cgroupID, err = cgroupInode(filepath.Join(unified, c.cgroup)); err != nil {
		return nil, err
	}
	return c, nil
}

// writeBundle lays out the container's OCI bundle: a copy of the rootfs
// template and config.json, annotated with the owner's pid for reap.
func (c *Container) writeBundle(tmpl string, args []string, owner int) error {
	if err := copyTree(tmpl, filepath.Join(c.bundle, "rootfs")); err != nil {
		return fmt.Errorf("copy rootfs: %w", err)
	}
	cfg := newSpec(c.id, "c-"+c.id[:12], c.cgroup, args,
		map[string]string{ownerAnnotation: strconv.Itoa(owner), cgroupAnnotation: c.cgroup})
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return fmt.Errorf("encode config.json: %w", err)
	}
	if err := os.WriteFile(filepath.Join(c.bundle, "config.json"), b, 0o644); err != nil {
		return fmt.Errorf("write config.json: %w", err)
	}
	return nil
}

// ID returns the container id: 64 hex digits, as containerd makes them.
func (c *Container) ID() string { return c.id }

// ContainerID returns the id as Kubernetes reports it in
// status.containerStatuses[].containerID, for a Pod a test creates to
// name this container.
func (c *Container) ContainerID() string { return "containerd://" + c.id }

// PodUID returns the uid of the pod whose cgroup holds the container.
func (c *Container) PodUID() string { return c.podUID }

// PID returns the host pid of the container's init.
func (c *Container) PID() int { return c.pid }

// CgroupPath returns the container's cgroup path relative to a hierarchy's
// root, as /proc/<pid>/cgroup shows it on the host.
func (c *Container) CgroupPath() string { return c.cgroup }

// CgroupID returns the id of the container's cgroup v2 directory, the
// value bpf_get_current_cgroup_id() returns for its processes: on 64-bit
// kernels the directory's inode number.
func (c *Container) CgroupID() uint64 { return c.cgroupID }

// Rootfs returns the host path of the container's root file system.
func (c *Container) Rootfs() string { return filepath.Join(c.bundle, "rootfs") }

// Exec runs args in the container (runc exec: same namespaces and cgroup
// as the init) and returns its output and exit code. It fails the test
// when runc itself cannot run the process or it outlives execTimeout.
// runc copies the output until every writer has closed it, so a process
// left in the background must redirect its stdio (`sleep 60 >/dev/null
// 2>&1 &`) or Exec waits for it too; ExecBackground has no such wait.
func (c *Container) Exec(t testing.TB, args ...string) (stdout, stderr string, exitCode int) {
	t.Helper()
	// runc's "container does not exist" exits 1 like any process: say so
	// instead of returning an exit code the test would misread.
	c.mu.Lock()
	done := c.done
	c.mu.Unlock()
	if done {
		t.Fatalf("exec %q in %s: container removed", args, c.id[:12])
	}
	ctx, cancel := context.WithTimeout(context.Background(), execTimeout)
	defer cancel()
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, c.runc, append([]string{"--root", StateRoot, "exec", c.id}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case ctx.Err() != nil:
		t.Fatalf("exec %q in %s: no exit within %s", args, c.id[:12], execTimeout)
	case errors.As(err, &ee) && ee.ExitCode() >= 0:
		exitCode = ee.ExitCode()
	default:
		t.Fatalf("exec %q in %s: %v: %s", args, c.id[:12], err, errb.String())
	}
	return out.String(), errb.String(), exitCode
}

// ExecBackground starts args in the container without waiting for it and
// returns its host pid: a test observes a live process of the container
// from the host (its /proc entry, its cgroup, the sensor's events). The
// process dies with the container; its output goes to a log in the
// bundle.
func (c *Container) ExecBackground(t testing.TB, args ...string) int {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		t.Fatalf("exec %q in %s: container removed", args, c.id[:12])
	}
	p, err := startRunc(c.runc, c.bundle, "exec-"+strconv.Itoa(len(c.bg)), "exec", c.id, nil, args)
	if err != nil {
		t.Fatalf("exec %q in %s: %v", args, c.id[:12], err)
	}
	c.bg = append(c.bg, p)
	pid, err := p.waitPID(c.id)
	if err != nil {
		t.Fatalf("exec %q in %s: %v", args, c.id[:12], err)
	}
	return pid
}

// remove kills and deletes the container, reaps the runc processes that
// were its processes' parents, and removes its cgroup directories; it is
// what Cleanup runs, and is safe on a container that never started.
func (c *Container) remove() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.done = true
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	var errs []error
	runc := func(args ...string) ([]byte, error) {
		return exec.CommandContext(ctx, c.runc, append([]string{"--root", StateRoot}, args...)...).CombinedOutput()
	}
	// SIGKILL to the init ends its pid namespace, the exec'd processes
	// included; the foreground runc processes then reap their children
	// and exit, and `runc run` deletes the container's state. A container
	// that already stopped refuses the signal, which is no error here.
	_, _ = runc("kill", c.id, "KILL")
	for _, p := range append([]*runcProc{c.init}, c.bg...) {
		if err := p.wait(deadline); err != nil {
			errs = append(errs, err)
		}
	}
	// delete --force covers a `runc run` that died before deleting.
	if out, err := runc("delete", "--force", c.id); err != nil && !bytes.Contains(out, []byte("does not exist")) {
		errs = append(errs, fmt.Errorf("runc delete: %w: %s", err, bytes.TrimSpace(out)))
	}
	lock, err := lockCgroups()
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	defer lock.unlock()
	if c.cgroup != "" {
		errs = append(errs, removeCgroups(c.hierarchy, c.cgroup, deadline))
	}
	return errors.Join(errs...)
}

// randomHex returns n random bytes in hex. crypto/rand.Read never returns
// an error (since Go 1.24 it crashes the program instead).
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// randomUUID returns a version 4 UUID, the form of a Pod's metadata.uid.
func randomUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// cgroupLock serialises creating and removing the shared kubepods
// directories across test binaries: without it, one binary's rmdir of an
// empty parent can race another's runc creating a child in it.
// The lock file sits beside StateRoot, not in it: runc owns that
// directory's entries.
type cgroupLock struct{ f *os.File }

// lockTimeout bounds the wait for the lock, which a holder keeps for one
// runc run or one cleanup at most.
const lockTimeout = 2 * startTimeout

func lockCgroups() (cgroupLock, error) {
	f, err := os.OpenFile(StateRoot+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return cgroupLock{}, fmt.Errorf("open cgroup lock: %w", err)
	}
	deadline := time.Now().Add(lockTimeout)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return cgroupLock{f}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			f.Close()
			return cgroupLock{}, fmt.Errorf("lock cgroups: %w", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (l cgroupLock) unlock() { l.f.Close() }
