package runtime

import (
	"os"
	"os/exec"
	"path/filepath"
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
