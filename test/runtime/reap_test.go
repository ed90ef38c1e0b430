package runtime

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestReapRemovesLeftovers leaves a container behind as a test binary
// killed on timeout would, owned by a pid that no longer runs, and checks
// that reap removes its runc state, its processes and its cgroups.
func TestReapRemovesLeftovers(t *testing.T) {
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Fatalf("runc not installed: %s", InstallHint)
	}
	tmpl, err := template()
	if err != nil {
		t.Fatal(err)
	}
	hier, _, err := hierarchies()
	if err != nil {
		t.Fatal(err)
	}
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	c := &Container{id: randomHex(32), podUID: randomUUID(), bundle: t.TempDir()}
	c.cgroup = CgroupfsStyle.cgroupPath(c.podUID, c.id)
	if err := c.writeBundle(tmpl, []string{"sleep", "3600"}, dead.Process.Pid); err != nil {
		t.Fatal(err)
	}
	// Started as Start starts it: the orphaned `runc run` of a killed
	// binary is still the init's parent.
	p, err := startRunc(runc, c.bundle, "init", "run", c.id, []string{"--bundle", c.bundle}, nil)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := p.waitPID(c.id)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // only if reap failed
		_ = exec.Command(runc, "--root", StateRoot, "delete", "--force", c.id).Run()
		_ = p.wait(time.Now().Add(cleanupTimeout))
		_ = removeCgroups(hier, c.cgroup, time.Now().Add(cleanupTimeout))
	})

	reap(runc, hier)

	if err := p.wait(time.Now().Add(cleanupTimeout)); err != nil {
		t.Error(err)
	}
	if out, err := exec.Command(runc, "--root", StateRoot, "state", c.id).CombinedOutput(); err == nil {
		t.Errorf("runc state after reap: %s", out)
	}
	if running(pid) {
		t.Errorf("init %d still runs", pid)
	}
	for _, h := range hier {
		for _, d := range []string{c.cgroup, filepath.Dir(c.cgroup)} {
			if _, err := os.Stat(filepath.Join(h, d)); !os.IsNotExist(err) {
				t.Errorf("cgroup %s: %v, want it removed", filepath.Join(h, d), err)
			}
		}
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

// TestContainersOfOnePod: containers given the same PodUID share the pod's
// cgroup directory, which outlives the first container's removal and not
// the last one's.
func TestContainersOfOnePod(t *testing.T) {
	hier, _, err := hierarchies()
	if err != nil {
		t.Fatal(err)
	}
	var pod string
	t.Run("run", func(t *testing.T) {
		first := Start(t, Options{Args: []string{"sh", "-c", "echo started; exec sleep 3600"}})
		pod = filepath.Dir(first.CgroupPath())
		t.Run("second", func(t *testing.T) {
			second := Start(t, Options{PodUID: first.PodUID()})
			if got := filepath.Dir(second.CgroupPath()); got != pod {
				t.Errorf("second container in pod %s, want %s", got, pod)
			}
		})
		// The second container's cleanup has run: the pod is still there.
		for _, h := range hier {
			if _, err := os.Stat(filepath.Join(h, pod)); err != nil {
				t.Errorf("pod cgroup gone while a container runs: %v", err)
			}
		}
		if out, _, _ := first.Exec(t, "echo", "alive"); out != "alive\n" {
			t.Errorf("first container after the second's removal: %q", out)
		}
		if b, _ := os.ReadFile(filepath.Join(first.bundle, "init.log")); string(b) != "started\n" {
			t.Errorf("init output %q, want Options.Args to have run", b)
		}
	})
	for _, h := range hier {
		if _, err := os.Stat(filepath.Join(h, pod)); !os.IsNotExist(err) {
			t.Errorf("pod cgroup %s: %v, want it removed", filepath.Join(h, pod), err)
		}
	}
}
