package sensor

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// openPTY returns a new pseudo-terminal's controller and its terminal.
func openPTY(t *testing.T) (ptmx, pts *os.File) {
	t.Helper()
	const (
		tiocsptlck = 0x40045431 // unlock the terminal
		tiocgptn   = 0x80045430 // its number under /dev/pts
	)
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open /dev/ptmx: %v", err)
	}
	t.Cleanup(func() { ptmx.Close() })
	var unlock, n int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, ptmx.Fd(), tiocsptlck, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		t.Fatalf("unlock pty: %v", e)
	}
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, ptmx.Fd(), tiocgptn, uintptr(unsafe.Pointer(&n))); e != 0 {
		t.Fatalf("pty number: %v", e)
	}
	pts, err = os.OpenFile("/dev/pts/"+strconv.Itoa(int(n)), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open pty: %v", err)
	}
	t.Cleanup(func() { pts.Close() })
	return ptmx, pts
}

// A process with a controlling terminal (a `kubectl exec -it` shell) is
// interactive; the same program without one is not.
func TestExecInteractive(t *testing.T) {
	p := load(t, Options{PollInterval: time.Millisecond})
	dir, id := benchCgroup(t)
	if err := p.Watch(id); err != nil {
		t.Fatal(err)
	}
	cg, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer cg.Close()
	_, pts := openPTY(t)
	for _, withTTY := range []bool{true, false} {
		cmd := exec.Command("/bin/true", strconv.FormatBool(withTTY))
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cg.Fd())}
		if withTTY {
			cmd.Stdin, cmd.Stdout, cmd.Stderr = pts, pts, pts
			cmd.SysProcAttr.Setsid, cmd.SysProcAttr.Setctty = true, true
		}
		if err := cmd.Run(); err != nil {
			t.Fatalf("run /bin/true: %v", err)
		}
		evs := collect(t, p, 5*time.Second, func(evs []Event) bool {
			return len(evs) > 0 && evs[len(evs)-1].Op == OpExec
		})
		if len(evs) == 0 || evs[len(evs)-1].Op != OpExec {
			t.Fatalf("tty %v: no exec event; got:\n%s", withTTY, dump(evs))
		}
		ev := evs[len(evs)-1]
		if ev.Interactive != withTTY {
			t.Errorf("exec with tty %v: Interactive = %v", withTTY, ev.Interactive)
		}
		if len(ev.Argv) != 2 || ev.Argv[1] != strconv.FormatBool(withTTY) {
			t.Errorf("argv %q, want [/bin/true %v]", ev.Argv, withTTY)
		}
	}
}

// The exec path is the file the kernel runs, not the name it was given:
// /proc/self/exe reads as the binary it links to.
func TestExecPathIsTheFileRun(t *testing.T) {
	p := load(t, Options{PollInterval: time.Millisecond})
	dir, id := benchCgroup(t)
	if err := p.Watch(id); err != nil {
		t.Fatal(err)
	}
	cg, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer cg.Close()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if self, err = filepath.EvalSymlinks(self); err != nil {
		t.Fatal(err)
	}
	// The test binary, run as /proc/self/exe, exits at once as a
	// generator of no events (TestMain).
	cmd := exec.Command("/proc/self/exe")
	cmd.Env = append(os.Environ(), genEnv+"=0")
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cg.Fd())}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("run /proc/self/exe: %v: %s", err, out)
	}
	evs := collect(t, p, 5*time.Second, func(evs []Event) bool {
		return slices.ContainsFunc(evs, func(ev Event) bool { return ev.Op == OpExec })
	})
	i := slices.IndexFunc(evs, func(ev Event) bool { return ev.Op == OpExec })
	if i < 0 {
		t.Fatalf("no exec event; got:\n%s", dump(evs))
	}
	if evs[i].Path != self || evs[i].Argv[0] != "/proc/self/exe" {
		t.Errorf("exec path %q argv %q; want path %q, argv[0] /proc/self/exe", evs[i].Path, evs[i].Argv, self)
	}
	// The child was cloned straight into the watched cgroup by a parent
	// outside it (CLONE_INTO_CGROUP): its fork is still reported, with the
	// child's cgroup.
	fork := slices.IndexFunc(evs, func(ev Event) bool { return ev.Op == OpFork })
	if fork < 0 || evs[fork].PID != evs[i].PID || evs[fork].PPID != uint32(os.Getpid()) || evs[fork].CgroupID != id {
		t.Errorf("want a fork of pid %d by the test (%d) in cgroup %d; got:\n%s", evs[i].PID, os.Getpid(), id, dump(evs))
	}
}
