package enforce

import (
	"errors"
	"testing"

	"github.com/palisade-dev/palisade/test/runtime"
)

func loadKiller(t *testing.T) *ExecKiller {
	t.Helper()
	k, err := LoadExecKiller()
	if err != nil {
		t.Fatalf("load exec killer: %v", err)
	}
	t.Cleanup(func() {
		if err := k.Close(); err != nil {
			t.Errorf("close exec killer: %v", err)
		}
	})
	return k
}

func TestExecKillerKillsBlockedExec(t *testing.T) {
	k := loadKiller(t)
	c := runtime.Start(t, runtime.Options{})
	other := runtime.Start(t, runtime.Options{})
	// A copy of busybox, so that blocking it leaves the shell (also
	// busybox) running: the rule names the file the kernel runs.
	if _, errOut, code := c.Exec(t, "cp", "/bin/busybox", "/tmp/true"); code != 0 {
		t.Fatalf("copy busybox: exit %d: %s", code, errOut)
	}
	if err := k.Block(c.CgroupID(), "/tmp/true"); err != nil {
		t.Fatal(err)
	}

	if _, _, code := c.Exec(t, "sh", "-c", "/tmp/true; exit $?"); code != 137 {
		// The shell reports the child's death by signal 9 as 128+9.
		t.Errorf("blocked exec: exit %d, want 137 (SIGKILL)", code)
	}
	if _, errOut, code := c.Exec(t, "sh", "-c", "/bin/busybox true"); code != 0 {
		t.Errorf("unrelated exec: exit %d: %s", code, errOut)
	}
	if n, err := k.Kills(); err != nil || n != 1 {
		t.Errorf("Kills() = %d, %v; want 1", n, err)
	}

	// Another container's cgroup has no rule: the same path runs there.
	if _, errOut, code := other.Exec(t, "cp", "/bin/busybox", "/tmp/true"); code != 0 {
		t.Fatalf("copy busybox: exit %d: %s", code, errOut)
	}
	if _, errOut, code := other.Exec(t, "/tmp/true"); code != 0 {
		t.Errorf("exec in a container without rules: exit %d: %s", code, errOut)
	}

	if err := k.Unblock(c.CgroupID(), "/tmp/true"); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := c.Exec(t, "/tmp/true"); code != 0 {
		t.Errorf("exec after Unblock: exit %d: %s", code, errOut)
	}
}

func TestExecKillerClose(t *testing.T) {
	k, err := LoadExecKiller()
	if err != nil {
		t.Fatalf("load exec killer: %v", err)
	}
	c := runtime.Start(t, runtime.Options{})
	// A copy of busybox, not busybox itself: the container's init may
	// not have exec'd its `sleep` yet when Start returns, and a rule on
	// busybox would kill it.
	if _, errOut, code := c.Exec(t, "sh", "-c", "cp /bin/busybox /tmp/true && mkdir /tmp/l && ln -s /tmp/true /tmp/l/true"); code != 0 {
		t.Fatalf("copy busybox: exit %d: %s", code, errOut)
	}
	if err := k.Block(c.CgroupID(), "/tmp/true"); err != nil {
		t.Fatal(err)
	}
	// The rule matches the file the kernel runs, whatever name the exec
	// used: here a symlink to it.
	if _, _, code := c.Exec(t, "/tmp/l/true"); code != 137 {
		t.Errorf("exec through a symlink to a blocked file: exit %d, want 137", code)
	}
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := c.Exec(t, "/tmp/l/true"); code != 0 {
		t.Errorf("exec after Close: exit %d: %s", code, errOut)
	}
	if err := k.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestExecKillerRejectsPaths(t *testing.T) {
	k := loadKiller(t)
	long := "/" + string(make([]byte, maxExecPath))
	for _, tc := range []struct {
		path string
		want error
	}{
		{"bin/sh", ErrNotAbsolute},
		{"", ErrNotAbsolute},
		{long, ErrPathTooLong},
	} {
		if err := k.Block(1, tc.path); !errors.Is(err, tc.want) {
			t.Errorf("Block(%.20q) = %v, want %v", tc.path, err, tc.want)
		}
	}
}
