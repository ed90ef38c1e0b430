package runtime

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMissingRuncSaysHowToInstall: a machine without runc fails the test
// (never skips it) with the command that installs it.
func TestMissingRuncSaysHowToInstall(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := start(t, Options{})
	if err == nil || !strings.Contains(err.Error(), "apt-get install -y runc busybox-static") {
		t.Errorf("start without runc: %v, want the install command", err)
	}
}

// TestDynamicBusyboxRefused: Debian's dynamic busybox package installs the
// same path as busybox-static, and a rootfs without libc cannot run it;
// the error says which package to install.
func TestDynamicBusyboxRefused(t *testing.T) {
	sh, err := exec.LookPath("bash")
	if err != nil {
		t.Fatal(err)
	}
	_, err = staticBusybox(sh)
	if err == nil || !strings.Contains(err.Error(), "apt-get install -y runc busybox-static") {
		t.Errorf("staticBusybox(%s) = %v, want the install command", sh, err)
	}
	_, err = staticBusybox(filepath.Join(t.TempDir(), "busybox"))
	if err == nil || !strings.Contains(err.Error(), "apt-get install -y runc busybox-static") {
		t.Errorf("missing busybox: %v, want the install command", err)
	}
}
