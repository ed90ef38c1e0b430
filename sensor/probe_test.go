package sensor

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/palisade-dev/palisade/test/runtime"
)

// load loads the sensor for a test, failing (not skipping) when the kernel
// refuses: CI machines run these tests as root on a kernel that has every
// program type the sensor uses.
func load(t testing.TB, opts Options) *Probe {
	t.Helper()
	p, err := Load(opts)
	if err != nil {
		t.Fatalf("load sensor: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("close sensor: %v", err)
		}
	})
	return p
}

// collect gathers events until match has seen everything it wants or the
// deadline passes; it returns all events seen.
func collect(t *testing.T, p *Probe, d time.Duration, done func([]Event) bool) []Event {
	t.Helper()
	var evs []Event
	deadline := time.After(d)
	for !done(evs) {
		select {
		case ev, ok := <-p.Events():
			if !ok {
				return evs
			}
			evs = append(evs, ev)
		case <-deadline:
			return evs
		}
	}
	return evs
}

func find(evs []Event, op Op, path string) (Event, bool) {
	for _, ev := range evs {
		if ev.Op == op && ev.Path == path {
			return ev, true
		}
	}
	return Event{}, false
}

func dump(evs []Event) string {
	var b strings.Builder
	for _, ev := range evs {
		fmt.Fprintf(&b, "  %s pid=%d ppid=%d comm=%q path=%q argv=%q cgroup=%d tty=%v\n",
			ev.Op, ev.PID, ev.PPID, ev.Comm, ev.Path, ev.Argv, ev.CgroupID, ev.Interactive)
	}
	return b.String()
}

func TestContainerEvents(t *testing.T) {
	p := load(t, Options{})
	c := runtime.Start(t, runtime.Options{})
	if err := p.Watch(c.CgroupID()); err != nil {
		t.Fatal(err)
	}
	script := "echo x > /tmp/f; rm /tmp/f; echo y > /tmp/g; chmod +x /tmp/g; echo z >> /tmp/g; " +
		"cd /tmp && echo w > rel && rm rel; rm /tmp/missing 2>/dev/null; cp /bin/busybox /tmp/bb; true"
	if _, stderr, code := c.Exec(t, "/bin/sh", "-c", script); code != 0 {
		t.Fatalf("exec in container: exit %d: %s", code, stderr)
	}

	want := []struct {
		op   Op
		path string
	}{
		{OpExec, "/bin/busybox"},
		{OpFork, "/bin/busybox"},
		{OpCreateFile, "/tmp/f"},
		{OpDeleteFile, "/tmp/f"},
		{OpCreateFile, "/tmp/g"},
		{OpModifyExecutable, "/tmp/g"},
		{OpCreateFile, "/tmp/rel"},
		{OpDeleteFile, "/tmp/rel"},
		{OpCreateExecutable, "/tmp/bb"},
	}
	evs := collect(t, p, 5*time.Second, func(evs []Event) bool {
		for _, w := range want {
			if _, ok := find(evs, w.op, w.path); !ok {
				return false
			}
		}
		// the append to the executable /tmp/g comes last
		n := 0
		for _, ev := range evs {
			if ev.Op == OpModifyExecutable && ev.Path == "/tmp/g" {
				n++
			}
		}
		return n >= 2
	})
	t.Logf("events:\n%s", dump(evs))
	for _, w := range want {
		ev, ok := find(evs, w.op, w.path)
		if !ok {
			t.Errorf("no %s event for %s; got:\n%s", w.op, w.path, dump(evs))
			continue
		}
		if ev.CgroupID != c.CgroupID() {
			t.Errorf("%s %s: cgroup id %d, want the container's %d", w.op, w.path, ev.CgroupID, c.CgroupID())
		}
		if ev.PID == 0 || ev.PPID == 0 || ev.Comm == "" {
			t.Errorf("%s %s: pid %d ppid %d comm %q: want all set", w.op, w.path, ev.PID, ev.PPID, ev.Comm)
		}
		if time.Since(ev.Time).Abs() > time.Minute {
			t.Errorf("%s %s: time %v is not now", w.op, w.path, ev.Time)
		}
	}
	if _, ok := find(evs, OpDeleteFile, "/tmp/missing"); ok {
		t.Errorf("deleteFile reported for an rm that failed")
	}
	// The shell's exec, not the container init's (`sleep`, which may
	// exec after Watch: runc starts it once Start has returned).
	var sh Event
	for _, ev := range evs {
		if ev.Op == OpExec && len(ev.Argv) == 3 && ev.Argv[2] == script {
			sh = ev
		}
	}
	for _, ev := range evs {
		// The shell forks for rm, chmod and cp (busybox runs them in
		// the child without an exec). A runc that clones its exec
		// process into the cgroup adds a fork by runc: not checked.
		if ev.Op == OpFork && ev.Comm == "sh" && ev.PPID != sh.PID {
			t.Errorf("fork of pid %d: parent %d, want the shell %d", ev.PID, ev.PPID, sh.PID)
		}
	}
	execs := 0
	for _, ev := range evs {
		if ev.Op == OpExec && ev.Path == "/bin/busybox" && slices.Equal(ev.Argv, []string{"/bin/sh", "-c", script}) {
			execs++
			if ev.Interactive {
				t.Errorf("exec without a terminal reported as interactive")
			}
		}
	}
	if execs != 1 {
		t.Errorf("want one exec of /bin/sh -c with its argv; got:\n%s", dump(evs))
	}
	if n, err := p.Drops(); err != nil || n != 0 {
		t.Errorf("drops = %d, %v; want 0", n, err)
	}
}

func TestHostProcessesNotReported(t *testing.T) {
	p := load(t, Options{PollInterval: time.Millisecond})
	c := runtime.Start(t, runtime.Options{})
	if err := p.Watch(c.CgroupID()); err != nil {
		t.Fatal(err)
	}
	f := t.TempDir() + "/host-file"
	if out, err := exec.Command("/bin/sh", "-c", "echo x > "+f+"; chmod +x "+f+"; rm "+f).CombinedOutput(); err != nil {
		t.Fatalf("host command: %v: %s", err, out)
	}
	// A container event after the host's shows the host's would have
	// arrived by then: events of one CPU come in order, and the reader
	// polls every millisecond.
	c.Exec(t, "/bin/true")
	evs := collect(t, p, 5*time.Second, func(evs []Event) bool {
		_, ok := find(evs, OpExec, "/bin/busybox")
		return ok
	})
	time.Sleep(50 * time.Millisecond)
	for len(p.Events()) > 0 {
		evs = append(evs, <-p.Events())
	}
	for _, ev := range evs {
		if ev.CgroupID != c.CgroupID() {
			t.Errorf("event from an unwatched cgroup: %s", dump([]Event{ev}))
		}
	}
	if _, ok := find(evs, OpExec, "/bin/busybox"); !ok {
		t.Errorf("no exec event from the container; got:\n%s", dump(evs))
	}

	// Unwatched, the container is as silent as the host.
	if err := p.Unwatch(c.CgroupID()); err != nil {
		t.Fatal(err)
	}
	c.Exec(t, "/bin/sh", "-c", "echo x > /tmp/after")
	evs = collect(t, p, 200*time.Millisecond, func([]Event) bool { return false })
	if len(evs) != 0 {
		t.Errorf("events after Unwatch:\n%s", dump(evs))
	}
}

func TestCloseDetachesEverything(t *testing.T) {
	p, err := Load(Options{})
	if err != nil {
		t.Fatalf("load sensor: %v", err)
	}
	var ids []ebpf.ProgramID
	for name, prog := range p.coll.Programs {
		info, err := prog.Info()
		if err != nil {
			t.Fatal(err)
		}
		id, ok := info.ID()
		if !ok {
			t.Fatalf("program %s: kernel reports no id", name)
		}
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		t.Fatal("no programs loaded")
	}
	if got := attachedTo(t, ids); len(got) == 0 {
		t.Fatal("no links found for the loaded programs before Close: the check below proves nothing")
	}
	if err := p.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if _, ok := <-p.Events(); ok {
		t.Error("Events not closed after Close")
	}
	// The kernel frees programs after an RCU grace period: retry briefly.
	deadline := time.Now().Add(5 * time.Second)
	for {
		left := loaded(t, ids)
		links := attachedTo(t, ids)
		if len(left) == 0 && len(links) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after Close: programs %v still loaded, links %v still attached", left, links)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
}

// loaded returns which of ids the kernel still has.
func loaded(t *testing.T, ids []ebpf.ProgramID) []ebpf.ProgramID {
	var left []ebpf.ProgramID
	for id := ebpf.ProgramID(0); ; {
		next, err := ebpf.ProgramGetNextID(id)
		if errors.Is(err, os.ErrNotExist) {
			return left
		}
		if err != nil {
			t.Fatalf("list programs: %v", err)
		}
		if slices.Contains(ids, next) {
			left = append(left, next)
		}
		id = next
	}
}

// attachedTo returns the ids of links whose program is one of ids.
func attachedTo(t *testing.T, ids []ebpf.ProgramID) []link.ID {
	var found []link.ID
	it := new(link.Iterator)
	defer it.Close()
	for it.Next() {
		info, err := it.Link.Info()
		if err != nil {
			continue // gone between listing and reading
		}
		if slices.Contains(ids, info.Program) {
			found = append(found, info.ID)
		}
	}
	if err := it.Err(); err != nil {
		t.Fatalf("list links: %v", err)
	}
	return found
}
