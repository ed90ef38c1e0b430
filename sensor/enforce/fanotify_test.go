package enforce

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/palisade-dev/palisade/test/runtime"
)

// recorder decides by a fixed table and keeps every access it saw.
type recorder struct {
	mu   sync.Mutex
	seen []seen
	deny func(Access) bool
}

// seen is an Access with what its methods read during the decision.
type seen struct {
	Access
	pid               int
	write, writeKnown bool
	flags             uint64
	flagsKnown        bool
}

func (r *recorder) decide(a Access) Verdict {
	s := seen{Access: a, pid: a.PID()}
	s.write, s.writeKnown = a.Write()
	s.flags, s.flagsKnown = a.OpenFlags()
	r.mu.Lock()
	r.seen = append(r.seen, s)
	r.mu.Unlock()
	if r.deny(a) {
		return Deny
	}
	return Allow
}

func (r *recorder) find(kind Kind, path string, write bool) (seen, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, a := range r.seen {
		if a.Kind == kind && a.ContainerPath == path && a.write == write {
			return a, true
		}
	}
	return seen{}, false
}

func newFanotify(t *testing.T, decide func(Access) Verdict, opts ...FanotifyOption) *Fanotify {
	t.Helper()
	f, err := NewFanotify(decide, opts...)
	if err != nil {
		t.Fatalf("fanotify: %v", err)
	}
	t.Cleanup(func() {
		if err := f.Close(); err != nil {
			t.Errorf("close fanotify: %v", err)
		}
	})
	return f
}

func containerRoot(c *runtime.Container) string {
	return "/proc/" + strconv.Itoa(c.PID()) + "/root"
}

func TestFanotifyDeniesInContainerOnly(t *testing.T) {
	c := runtime.Start(t, runtime.Options{})
	secret := filepath.Join(c.Rootfs(), "etc", "secret")
	if err := os.WriteFile(secret, []byte("s3cret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := c.Exec(t, "cp", "/bin/busybox", "/tmp/true"); code != 0 {
		t.Fatalf("copy busybox: exit %d: %s", code, errOut)
	}
	r := &recorder{deny: func(a Access) bool {
		return (a.Kind == Open && a.ContainerPath == "/etc/secret") ||
			(a.Kind == OpenExec && a.ContainerPath == "/tmp/true")
	}}
	f := newFanotify(t, r.decide)
	if err := f.MarkContainer(containerRoot(c)); err != nil {
		t.Fatal(err)
	}

	out, errOut, code := c.Exec(t, "cat", "/etc/secret")
	if code == 0 || !strings.Contains(errOut, "not permitted") {
		t.Errorf("cat /etc/secret in the container: exit %d, %q %q; want EPERM", code, out, errOut)
	}
	a, ok := r.find(Open, "/etc/secret", false)
	if !ok {
		t.Fatalf("no access for /etc/secret; saw %+v", r.seen)
	}
	if a.CgroupID != c.CgroupID() || a.pid <= 0 || !a.writeKnown || a.Root != containerRoot(c) {
		t.Errorf("access = %+v; want cgroup %d, a pid, a known read under %s", a, c.CgroupID(), containerRoot(c))
	}
	// The same file through the host's mount: no event, no denial.
	if b, err := os.ReadFile(secret); err != nil || string(b) != "s3cret\n" {
		t.Errorf("host read of %s: %q, %v", secret, b, err)
	}

	if _, errOut, code := c.Exec(t, "sh", "-c", "echo x >> /etc/secret"); code == 0 {
		t.Errorf("write to /etc/secret in the container succeeded")
	} else if a, ok := r.find(Open, "/etc/secret", true); !ok {
		t.Errorf("no write access for /etc/secret (%s); saw %+v", errOut, r.seen)
	} else if !a.flagsKnown || a.flags&unix.O_CREAT == 0 || a.flags&unix.O_APPEND == 0 {
		// The shell's >> is open(O_WRONLY|O_CREAT|O_APPEND).
		t.Errorf("open flags of the append %#o (known %v), want O_CREAT|O_APPEND", a.flags, a.flagsKnown)
	}

	_, errOut, code = c.Exec(t, "sh", "-c", "/tmp/true")
	if code != 126 || !strings.Contains(errOut, "not permitted") {
		t.Errorf("exec /tmp/true: exit %d, %q; want 126 and EPERM", code, errOut)
	}
	if _, errOut, code := c.Exec(t, "sh", "-c", "/bin/true && cat /etc/passwd >/dev/null"); code != 0 {
		t.Errorf("unrelated exec and open: exit %d: %s", code, errOut)
	}
	// An allowed exec's open of the program raises FAN_OPEN_PERM too: it
	// reads as a known read, not as a write of the program.
	if a, ok := r.find(Open, "/bin/busybox", false); !ok || !a.flagsKnown {
		t.Errorf("the exec's open of /bin/busybox: %+v (found %v), want a known read", a, ok)
	} else if _, w := r.find(Open, "/bin/busybox", true); w {
		t.Errorf("the exec's open of /bin/busybox was taken as a write")
	}
	st := f.Stats()
	if st.Denied < 3 || st.TimedOut != 0 {
		t.Errorf("stats = %+v; want >= 3 denied, no timeouts", st)
	}
}

func TestFanotifyRefusesHostDirectory(t *testing.T) {
	c := runtime.Start(t, runtime.Options{})
	f := newFanotify(t, func(Access) Verdict { return Allow })
	if err := f.MarkContainer(c.Rootfs()); err == nil {
		t.Errorf("MarkContainer(%s) accepted a host directory", c.Rootfs())
	}
}

func writeFile(t *testing.T, c *runtime.Container, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(c.Rootfs(), name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestFanotifyTimeoutAllows(t *testing.T) {
	c := runtime.Start(t, runtime.Options{})
	writeFile(t, c, "etc/slow", "slow\n")
	writeFile(t, c, "etc/secret", "s3cret\n")
	release := make(chan struct{})
	defer close(release)
	const timeout = 300 * time.Millisecond
	f := newFanotify(t, func(a Access) Verdict {
		switch {
		case a.ContainerPath == "/etc/slow":
			<-release // a stuck decision; its Deny comes too late
			return Deny
		case a.ContainerPath == "/etc/secret":
			return Deny
		}
		return Allow
	}, WithTimeout(timeout))
	if err := f.MarkContainer(containerRoot(c)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	out, errOut, code := c.Exec(t, "cat", "/etc/slow")
	took := time.Since(start)
	if code != 0 || out != "slow\n" {
		t.Errorf("cat /etc/slow: exit %d, %q %q; want allowed after the timeout", code, out, errOut)
	}
	if took < timeout {
		t.Errorf("cat took %s, less than the timeout %s: was it decided at all?", took, timeout)
	}
	// The stuck decision still holds the goroutine that read it; a new
	// one decides what comes after.
	if _, _, code := c.Exec(t, "cat", "/etc/secret"); code == 0 {
		t.Errorf("cat /etc/secret allowed while another decision is stuck")
	}
	// At least: on a loaded machine runc's own opens may overrun too.
	if st := f.Stats(); st.TimedOut < 1 {
		t.Errorf("stats = %+v; want the stuck decision timed out", st)
	}
}

func TestFanotifyCloseReleasesAndUnblocks(t *testing.T) {
	c := runtime.Start(t, runtime.Options{})
	writeFile(t, c, "etc/hang", "hang\n")
	writeFile(t, c, "etc/secret", "s3cret\n")
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	defer close(release)
	f, err := NewFanotify(func(a Access) Verdict {
		switch a.ContainerPath {
		case "/etc/hang":
			entered <- struct{}{}
			<-release // never answers before Close
			return Deny
		case "/etc/secret":
			return Deny
		}
		return Allow
	}, WithTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.MarkContainer(containerRoot(c)); err != nil {
		t.Fatal(err)
	}
	if _, _, code := c.Exec(t, "cat", "/etc/secret"); code == 0 {
		t.Fatal("cat /etc/secret allowed before Close")
	}

	type result struct {
		out  string
		code int
	}
	done := make(chan result, 1)
	go func() {
		out, _, code := c.Exec(t, "cat", "/etc/hang")
		done <- result{out, code}
	}()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("no permission event for /etc/hang")
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r.code != 0 || r.out != "hang\n" {
			t.Errorf("cat /etc/hang released by Close: exit %d, %q", r.code, r.out)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("cat /etc/hang still waiting after Close")
	}
	if st := f.Stats(); st.Released != 1 {
		t.Errorf("stats = %+v; want 1 released", st)
	}
	if out, errOut, code := c.Exec(t, "cat", "/etc/secret"); code != 0 {
		t.Errorf("cat /etc/secret after Close: exit %d, %q %q", code, out, errOut)
	}
}
