package agent

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/palisade-dev/palisade/bundles"
	"github.com/palisade-dev/palisade/policy"
	"github.com/palisade-dev/palisade/sensor/enforce"
	"github.com/palisade-dev/palisade/sensor/pods"
	"github.com/palisade-dev/palisade/test/vm"
)

// TestAgentLSMInVM boots Debian's 6.1 kernel (test/vm), whose BPF LSM
// the build host's kernel refuses, and runs this package's test binary
// there: the agent probes the node, loads the LSM, and enforces a
// ruleset's blocks for a cgroup standing for a container.
func TestAgentLSMInVM(t *testing.T) {
	if os.Getenv(vm.EnvGuest) == "1" {
		testAgentLSMGuest(t)
		return
	}
	t.Parallel()
	bin := vm.BuildTest(t, "../agent")
	r := vm.Run(t, vm.Options{
		Binary:  bin,
		Args:    []string{"-test.run", "^TestAgentLSMInVM$", "-test.v"},
		Timeout: 2 * time.Minute,
	})
	t.Logf("guest output:\n%s", r.Output)
	if r.ExitCode != 0 || !strings.Contains(r.Output, "--- PASS: TestAgentLSMInVM") {
		t.Fatalf("agent LSM tests in the VM failed (exit %d)", r.ExitCode)
	}
}

// driftRuleset is D4C's drift-prevention default plus path blocks.
const driftRuleset = `apiVersion: palisade.dev/v1alpha1
kind: RuntimeRuleset
metadata: {name: drift}
spec:
  mode: enforce
  file:
    selectors:
      - {name: drift, operation: [createExecutable, modifyExecutable], targetFilePath: ["/**"]}
      - {name: etc, operation: [createFile, modifyFile], targetFilePath: ["/etc/**"]}
      - {name: keep, operation: [deleteFile], targetFilePath: [/srv/keep]}
    responses:
      - {match: [drift], actions: [alert, block]}
      - {match: [etc], actions: [alert, block]}
      - {match: [keep], actions: [alert, block]}
  process:
    selectors:
      - {name: blocked, operation: [exec], processExecutable: [/srv/blocked/true]}
    responses:
      - {match: [blocked], actions: [alert, block]}
`

// cgroupContainers names one container, "ctr", whose cgroup is id.
type cgroupContainers struct {
	id    uint64
	facts *bundles.Container
}

func (c cgroupContainers) CgroupIDFor(id string) (uint64, bool) { return c.id, id == "ctr" }

func (c cgroupContainers) Lookup(id string) (*bundles.Container, bool) { return c.facts, id == "ctr" }

func testAgentLSMGuest(t *testing.T) {
	const dir = "/sys/fs/cgroup/palisade-agent"
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatalf("create cgroup: %v", err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	busybox, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	for p, body := range map[string]string{"/srv/keep": "k\n", "/srv/other": "o\n", "/srv/blocked/true": string(busybox)} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}

	repoDir := t.TempDir()
	for name, body := range map[string]string{"clusters/test.yaml": strings.Replace(testCluster, "no_busybox", "drift", 1), "rulesets/drift.yaml": driftRuleset} {
		p := filepath.Join(repoDir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	repo, err := policy.LoadDir(repoDir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := bundles.Build(repo, "test", "rev-vm")
	if err != nil {
		t.Fatal(err)
	}
	c, err := compileRules(b)
	if err != nil {
		t.Fatal(err)
	}

	features := enforce.Probe()
	if !features.BPFLSM {
		t.Fatalf("the guest's kernel has no BPF LSM: %v", features.Reasons)
	}
	facts := &bundles.Container{Namespace: "shop", PodName: "web-0"}
	a := New(Options{NodeName: "vm", Features: features, Containers: cgroupContainers{id: st.Ino, facts: facts}})
	if err := a.LoadBackends(); err != nil {
		t.Fatalf("LoadBackends: %v", err)
	}
	defer a.Close()
	a.rules.Store(c)
	a.OnContainer(pods.ContainerEvent{Type: pods.ContainerStarted, ContainerID: "ctr", ContainerName: "app", Facts: facts})

	s := a.Status()
	t.Logf("backends %v, container %+v, unenforced %+v", s.Backends, s.Containers, s.Unenforced)
	for _, op := range []string{"exec", "createFile", "modifyFile", "deleteFile", "createExecutable", "modifyExecutable"} {
		if !strings.HasPrefix(s.Backends[op], enforce.BackendLSM) {
			t.Errorf("node backend of %s is %q, want %s", op, s.Backends[op], enforce.BackendLSM)
		}
		if len(s.Containers) != 1 || s.Containers[0].Enforced[op] != enforce.BackendLSM {
			t.Errorf("container enforcement %+v: %s not by %s", s.Containers, op, enforce.BackendLSM)
		}
	}
	if len(s.Unenforced) != 0 {
		t.Errorf("unenforced %+v", s.Unenforced)
	}

	sh := func(inCgroup bool, script string) (string, error) {
		if inCgroup {
			script = "echo $$ > " + dir + "/cgroup.procs || exit 99\n" + script
		}
		out, err := exec.Command("/bin/sh", "-c", script).CombinedOutput()
		return string(out), err
	}
	type check struct {
		name, script string
		host, wantOK bool
	}
	run := func(checks []check) {
		for _, ck := range checks {
			out, err := sh(!ck.host, ck.script)
			switch {
			case ck.wantOK && err != nil:
				t.Errorf("%s: %v, want success:\n%s", ck.name, err, out)
			case !ck.wantOK && err == nil:
				t.Errorf("%s: succeeded, want denial:\n%s", ck.name, out)
			case !ck.wantOK && !strings.Contains(out, "not permitted"):
				t.Errorf("%s: failed without EPERM:\n%s", ck.name, out)
			}
		}
	}
	run([]check{
		{name: "a binary copied into /tmp is written", script: "cp /bin/busybox /tmp/true", wantOK: true},
		{name: "exec of a binary written into the container is denied (drift)", script: "/tmp/true true"},
		{name: "the host may exec that binary", script: "/tmp/true true", host: true, wantOK: true},
		{name: "chmod +x is denied (drift)", script: "echo 'echo ran' > /tmp/script && chmod +x /tmp/script"},
		{name: "write under /etc is denied", script: "echo x > /etc/agent-new"},
		{name: "the host may write under /etc", script: "echo host > /etc/agent-host", host: true, wantOK: true},
		{name: "write outside /etc is allowed", script: "echo x > /tmp/data", wantOK: true},
		{name: "delete of a blocked path is denied", script: "rm /srv/keep"},
		{name: "delete of another path is allowed", script: "rm /srv/other", wantOK: true},
		{name: "exec of a blocked path is denied", script: "/srv/blocked/true true"},
	})
	if n := a.Status().BlockedBy[enforce.BackendLSM]; n < 5 {
		t.Errorf("lsm blocks counted %d, want ≥ 5", n)
	}
	if t.Failed() {
		return
	}
	if err := a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	run([]check{
		{name: "after Close the drifted binary runs", script: "/tmp/true true", wantOK: true},
		{name: "after Close /etc is writable", script: "echo x > /etc/agent-new", wantOK: true},
		{name: "after Close the blocked path is deletable", script: "rm /srv/keep", wantOK: true},
		{name: "after Close the blocked path runs", script: "/srv/blocked/true true", wantOK: true},
	})
}
