package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/palisade-dev/palisade/bundles"
	"github.com/palisade-dev/palisade/policy"
	"github.com/palisade-dev/palisade/sensor"
	"github.com/palisade-dev/palisade/sensor/enforce"
)

func TestSensorFlags(t *testing.T) {
	t.Setenv("NODE_NAME", "node-a")
	cmd := sensorCmd()
	if err := cmd.ParseFlags([]string{"--bundle-url=https://c/b.tar.gz", "--cluster-id=c1", "--alerts-file=/tmp/a"}); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"node-name": "node-a", "bundle-url": "https://c/b.tar.gz", "cluster-id": "c1",
		"alerts-file": "/tmp/a", "listen": ":8080", "log-level": "info",
	} {
		if got := cmd.Flags().Lookup(name).Value.String(); got != want {
			t.Errorf("--%s = %q, want %q", name, got, want)
		}
	}
}

func TestSensorRefusesWithoutNodeName(t *testing.T) {
	err := runSensor(t.Context(), io.Discard, sensorFlags{logLevel: "info"})
	if err == nil || !strings.Contains(err.Error(), "--node-name") {
		t.Fatalf("err = %v, want it to ask for --node-name", err)
	}
}

// sensorRepo is a policy whose ruleset alerts on and blocks the exec of
// /bin/busybox, and blocks writes under /etc.
const sensorRuleset = `apiVersion: palisade.dev/v1alpha1
kind: RuntimeRuleset
metadata: {name: no_busybox}
spec:
  mode: enforce
  file:
    selectors:
      - {name: etc, operation: [modifyFile], targetFilePath: ["/etc/**"]}
    responses:
      - {match: [etc], actions: [alert, block]}
  process:
    selectors:
      - {name: busybox, operation: [exec], processExecutable: [/bin/busybox]}
    responses:
      - {match: [busybox], actions: [alert, block]}
`

const sensorCluster = `apiVersion: palisade.dev/v1alpha1
kind: Policy
metadata: {name: test}
spec:
  clusters: [test]
  clusterWide:
    runtime: {rulesets: [no_busybox]}
`

func sensorTestRepo(t *testing.T) *policy.Repo {
	t.Helper()
	dir := t.TempDir()
	for name, body := range map[string]string{"clusters/test.yaml": sensorCluster, "rulesets/no_busybox.yaml": sensorRuleset} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	repo, err := policy.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return repo
}

// fakeKiller records what the exec killer is given.
type fakeKiller struct{ blocked map[uint64][]string }

func (f *fakeKiller) Block(id uint64, p string) error {
	f.blocked[id] = append(f.blocked[id], p)
	return nil
}

func (f *fakeKiller) Unblock(id uint64, p string) error {
	f.blocked[id] = slices.DeleteFunc(f.blocked[id], func(s string) bool { return s == p })
	return nil
}

// TestSensorStatus: on a node with the exec killer and fanotify but no
// BPF LSM, an exact exec block is programmed per container, and the file
// block the command does not drive is listed on /status, not ignored.
func TestSensorStatus(t *testing.T) {
	b, err := bundles.Build(sensorTestRepo(t), "test", "rev1")
	if err != nil {
		t.Fatal(err)
	}
	c, err := compileRules(b)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.execPaths, []string{"/bin/busybox"}) || !slices.Equal(c.blockOps, []string{"exec", "modifyFile"}) {
		t.Fatalf("exec paths %v, block operations %v", c.execPaths, c.blockOps)
	}
	if !slices.Equal(c.blocks["no_busybox"], []string{"exec", "modifyFile"}) {
		t.Errorf("blocks per ruleset %v", c.blocks)
	}
	var alerts bytes.Buffer
	enc := &lockedEncoder{enc: json.NewEncoder(&alerts)}
	features := enforce.Features{Fanotify: true, ExecKill: true, Reasons: map[string]string{enforce.FeatureBPFLSM: "EPERM"}}
	ns := newNodeSensor("node-a", features, slog.New(slog.DiscardHandler), prometheus.NewRegistry(), enc, enc)
	k := &fakeKiller{blocked: map[uint64][]string{}}
	ns.killer = k
	ns.rules.Store(c)
	w := &watched{cgroupID: 42, container: "app", facts: &bundles.Container{Namespace: "shop", PodName: "web-1"}}
	ns.containers["abc"] = w
	ns.byCgroup[42] = "abc"
	ns.programLocked("abc", w, c)
	if !slices.Equal(k.blocked[42], []string{"/bin/busybox"}) {
		t.Fatalf("exec killer got %v", k.blocked)
	}
	ns.noteBlock(w, "no_busybox", "exec", "/bin/busybox")
	ns.noteBlock(w, "no_busybox", "modifyFile", "/etc/passwd")

	rec := httptest.NewRecorder()
	ns.serveStatus(rec, httptest.NewRequest("GET", "/status", nil))
	var s sensorStatus
	if err := json.Unmarshal(rec.Body.Bytes(), &s); err != nil {
		t.Fatal(err)
	}
	if s.Node != "node-a" || s.Watched != 1 || s.Blocks != 1 {
		t.Errorf("status %+v", s)
	}
	if s.Backends["exec"] != enforce.BackendExecKill {
		t.Errorf("exec backend %q, want %s", s.Backends["exec"], enforce.BackendExecKill)
	}
	if !strings.HasPrefix(s.Backends["deleteFile"], "cannot block on this node") {
		t.Errorf("deleteFile backend %q", s.Backends["deleteFile"])
	}
	if len(s.Unenforced) != 1 || s.Unenforced[0].Operation != "modifyFile" || s.Unenforced[0].Count != 1 {
		t.Errorf("unenforced blocks %+v, want the modifyFile block once", s.Unenforced)
	}
}

func TestRuntimeEvent(t *testing.T) {
	re := runtimeEvent(&sensor.Event{Op: sensor.OpExec, Path: "/bin/busybox", Comm: "sh"})
	if re.Kind != bundles.EventProcess || re.ProcessExecutable != "/bin/busybox" || re.ProcessName != "sh" || re.Operation != "exec" {
		t.Errorf("exec event %+v", re)
	}
	re = runtimeEvent(&sensor.Event{Op: sensor.OpModifyFile, Path: "/etc/passwd", Comm: "sh"})
	if re.Kind != bundles.EventFile || re.Path != "/etc/passwd" || re.ProcessName != "sh" {
		t.Errorf("file event %+v", re)
	}
}

// TestSensorStreams: alert goes to the alert stream, a learning ruleset
// to the observation stream and never to alerts, and an event of a
// container no pod names (a host process) to neither.
func TestSensorStreams(t *testing.T) {
	repo := sensorTestRepo(t)
	for _, c := range []struct {
		name                       string
		mode                       string
		container                  string
		alerts, observations, logs int
	}{
		{"enforce alerts", policy.ModeEnforce, "abc", 1, 0, 0},
		{"learning observes, never alerts", policy.ModeLearning, "abc", 0, 1, 0},
		{"host process is never acted on", policy.ModeEnforce, "host", 0, 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := repo.Rulesets["no_busybox"]
			r.Spec.Mode = c.mode
			repo.Rulesets["no_busybox"] = r
			b, err := bundles.Build(repo, "test", "rev1")
			if err != nil {
				t.Fatal(err)
			}
			rules, err := compileRules(b)
			if err != nil {
				t.Fatal(err)
			}
			var alerts, obs bytes.Buffer
			ns := newNodeSensor("node-a", enforce.Features{}, slog.New(slog.DiscardHandler), prometheus.NewRegistry(),
				&lockedEncoder{enc: json.NewEncoder(&alerts)}, &lockedEncoder{enc: json.NewEncoder(&obs)})
			ns.rules.Store(rules)
			facts := &bundles.Container{Namespace: "shop", PodName: "web-1", ImageFullName: "docker.io/library/busybox", ImageTag: "1.36"}
			ns.lookup = func(id string) (*bundles.Container, bool) { return facts, id == "abc" }
			ns.containers[c.container] = &watched{cgroupID: 42, container: "app", facts: facts}
			ns.byCgroup[42] = c.container
			ns.handle(&sensor.Event{Op: sensor.OpExec, Path: "/bin/busybox", Comm: "sh", CgroupID: 42})
			if n := strings.Count(alerts.String(), "\n"); n != c.alerts {
				t.Errorf("%d alert lines, want %d:\n%s", n, c.alerts, alerts.String())
			}
			if n := strings.Count(obs.String(), "\n"); n != c.observations {
				t.Errorf("%d observation lines, want %d:\n%s", n, c.observations, obs.String())
			}
			if c.alerts > 0 {
				var a alertLine
				if err := json.Unmarshal(alerts.Bytes(), &a); err != nil {
					t.Fatal(err)
				}
				if a.Pod != "web-1" || a.Namespace != "shop" || a.Container != "app" || a.Image != "docker.io/library/busybox:1.36" ||
					a.Operation != "exec" || a.Path != "/bin/busybox" || a.Ruleset != "no_busybox" || a.Node != "node-a" {
					t.Errorf("alert %+v", a)
				}
			}
		})
	}
}
