package agent

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/palisade-dev/palisade/bundles"
	"github.com/palisade-dev/palisade/policy"
	"github.com/palisade-dev/palisade/sensor"
	"github.com/palisade-dev/palisade/sensor/enforce"
	"github.com/palisade-dev/palisade/sensor/pods"
)

// testRuleset alerts on and blocks the exec of /bin/busybox, and blocks
// writes under /etc.
const testRuleset = `apiVersion: palisade.dev/v1alpha1
kind: RuntimeRuleset
metadata: {name: no_busybox}
spec:
  mode: enforce
  file:
    selectors:
      - {name: etc, operation: [modifyFile, createFile], targetFilePath: ["/etc/**"]}
      - {name: shop, kubernetesNamespace: [shop], operation: [deleteFile], targetFilePath: ["/data/*.db"]}
    responses:
      - {match: [etc], actions: [alert, block]}
      - {match: [shop], actions: [alert, block]}
  process:
    selectors:
      - {name: busybox, operation: [exec], processExecutable: [/bin/busybox]}
    responses:
      - {match: [busybox], actions: [alert, block]}
`

const testCluster = `apiVersion: palisade.dev/v1alpha1
kind: Policy
metadata: {name: test}
spec:
  clusters: [test]
  clusterWide:
    runtime: {rulesets: [no_busybox]}
`

func testRepo(t testing.TB) *policy.Repo {
	t.Helper()
	return repoWith(t, testRuleset)
}

// repoWith is a repository whose one ruleset, no_busybox, is ruleset.
func repoWith(t testing.TB, ruleset string) *policy.Repo {
	t.Helper()
	dir := t.TempDir()
	for name, body := range map[string]string{"clusters/test.yaml": testCluster, "rulesets/no_busybox.yaml": ruleset} {
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

func testRules(t testing.TB, mode string) *compiled {
	t.Helper()
	repo := testRepo(t)
	r := repo.Rulesets["no_busybox"]
	r.Spec.Mode = mode
	repo.Rulesets["no_busybox"] = r
	b, err := bundles.Build(repo, "test", "rev1")
	if err != nil {
		t.Fatal(err)
	}
	c, err := compileRules(b)
	if err != nil {
		t.Fatal(err)
	}
	return c
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

// fakeFanotify records marks.
type fakeFanotify struct{ marked []string }

func (f *fakeFanotify) MarkContainer(root string) error {
	f.marked = append(f.marked, root)
	return nil
}

func (f *fakeFanotify) UnmarkContainer(root string) error {
	f.marked = slices.DeleteFunc(f.marked, func(s string) bool { return s == root })
	return nil
}

// fakeLSM records rules as "op path" per cgroup.
type fakeLSM struct{ rules map[uint64][]string }

func (f *fakeLSM) add(id uint64, r string) error         { f.rules[id] = append(f.rules[id], r); return nil }
func (f *fakeLSM) BlockExec(id uint64, p string) error   { return f.add(id, "exec "+p) }
func (f *fakeLSM) BlockWrite(id uint64, p string) error  { return f.add(id, "write "+p) }
func (f *fakeLSM) BlockDelete(id uint64, p string) error { return f.add(id, "delete "+p) }
func (f *fakeLSM) DriftPrevention(id uint64, on bool) error {
	return f.add(id, "drift")
}
func (f *fakeLSM) Unwatch(id uint64) error { delete(f.rules, id); return nil }

// fakeContainers attributes container ids to facts.
type fakeContainers map[string]*bundles.Container

func (f fakeContainers) CgroupIDFor(id string) (uint64, bool) {
	if id == "abc" {
		return 42, true
	}
	return 0, false
}

func (f fakeContainers) Lookup(id string) (*bundles.Container, bool) {
	c, ok := f[id]
	return c, ok
}

var shopFacts = &bundles.Container{Namespace: "shop", PodName: "web-1", ImageFullName: "docker.io/library/busybox", ImageTag: "1.36"}

func startAbc(a *Agent) {
	a.OnContainer(pods.ContainerEvent{Type: pods.ContainerStarted, ContainerID: "abc", ContainerName: "app", PodUID: "uid-1",
		Namespace: "shop", Pod: "web-1", ImageDigest: "sha256:" + strings.Repeat("ab", 32), Facts: shopFacts})
}

func status(t *testing.T, a *Agent) Status {
	t.Helper()
	rec := httptest.NewRecorder()
	a.StatusHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/status", nil))
	var s Status
	if err := json.Unmarshal(rec.Body.Bytes(), &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestHostBackends: on a node with the exec killer and fanotify but no
// BPF LSM, the exact exec block goes to the exec killer, the /etc/**
// write blocks make the container's root marked for fanotify, the
// deleteFile block no backend can enforce is listed on /status and
// counted by the metric, not ignored; the container's entry names which
// backend enforces which operation.
func TestHostBackends(t *testing.T) {
	c := testRules(t, policy.ModeEnforce)
	if !slices.Equal(c.blockOps, []string{"createFile", "deleteFile", "exec", "modifyFile"}) {
		t.Fatalf("block operations %v", c.blockOps)
	}
	if !slices.Equal(c.blocks["no_busybox"], c.blockOps) {
		t.Errorf("blocks per ruleset %v", c.blocks)
	}
	k, fa := &fakeKiller{blocked: map[uint64][]string{}}, &fakeFanotify{}
	reg := prometheus.NewRegistry()
	a := New(Options{NodeName: "node-a", Registerer: reg,
		Features:   enforce.Features{Fanotify: true, ExecKill: true, Reasons: map[string]string{enforce.FeatureBPFLSM: "EPERM"}},
		Containers: fakeContainers{"abc": shopFacts}, Backends: Backends{Killer: k, Fanotify: fa},
		ContainerRoot: func(id uint64) (string, error) { return "/proc/7/root", nil }})
	a.rules.Store(c)
	startAbc(a)
	if !slices.Equal(k.blocked[42], []string{"/bin/busybox"}) {
		t.Fatalf("exec killer got %v", k.blocked)
	}
	if !slices.Equal(fa.marked, []string{"/proc/7/root"}) {
		t.Fatalf("fanotify marks %v", fa.marked)
	}
	a.Handle(&sensor.Event{Op: sensor.OpExec, Path: "/bin/busybox", Comm: "sh", CgroupID: 42})
	a.Handle(&sensor.Event{Op: sensor.OpModifyFile, Path: "/etc/passwd", Comm: "sh", CgroupID: 42})
	a.Handle(&sensor.Event{Op: sensor.OpDeleteFile, Path: "/data/x.db", Comm: "sh", CgroupID: 42})

	s := status(t, a)
	if s.Node != "node-a" || s.Watched != 1 || s.Blocks != 1 || s.BlockedBy[enforce.BackendExecKill] != 1 {
		t.Errorf("status %+v", s)
	}
	for op, want := range map[string]string{"exec": "exec-kill+fanotify", "modifyFile": "fanotify", "createFile": "fanotify"} {
		if s.Backends[op] != want {
			t.Errorf("backend of %s %q, want %s", op, s.Backends[op], want)
		}
	}
	if !strings.HasPrefix(s.Backends["deleteFile"], "cannot block on this node") {
		t.Errorf("deleteFile backend %q", s.Backends["deleteFile"])
	}
	if len(s.Containers) != 1 || s.Containers[0].FanotifyRoot != "/proc/7/root" ||
		s.Containers[0].Enforced["exec"] != "exec-kill" || s.Containers[0].Enforced["modifyFile"] != "fanotify" {
		t.Errorf("containers %+v", s.Containers)
	}
	if len(s.Unenforced) != 1 || s.Unenforced[0].Operation != "deleteFile" || s.Unenforced[0].Count != 1 {
		t.Errorf("unenforced blocks %+v, want the deleteFile block once", s.Unenforced)
	}
	if n := gauge(t, reg, "palisade_sensor_unenforced_blocks"); n != 1 {
		t.Errorf("palisade_sensor_unenforced_blocks = %v", n)
	}

	// The container goes: its backends forget it.
	a.OnContainer(pods.ContainerEvent{Type: pods.ContainerGone, ContainerID: "abc"})
	if len(k.blocked[42]) != 0 || len(fa.marked) != 0 {
		t.Errorf("after the container went: killer %v, marks %v", k.blocked, fa.marked)
	}
}

func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestLSMBackend: with BPF LSM every operation of the ruleset goes to
// the LSM as a kernel path rule, only for containers the rule applies to
// (the deleteFile block is for namespace shop only).
func TestLSMBackend(t *testing.T) {
	c := testRules(t, policy.ModeEnforce)
	l := &fakeLSM{rules: map[uint64][]string{}}
	facts := map[string]*bundles.Container{"shop": shopFacts, "other": {Namespace: "other", PodName: "p"}}
	for ns, want := range map[string][]string{
		"shop":  {"delete /data/", "exec /bin/busybox", "write /etc/"},
		"other": {"exec /bin/busybox", "write /etc/"},
	} {
		t.Run(ns, func(t *testing.T) {
			clear(l.rules)
			a := New(Options{NodeName: "n", Features: enforce.Features{BPFLSM: true, Fanotify: true},
				Containers: fakeContainers{"abc": facts[ns]}, Backends: Backends{LSM: l}})
			a.rules.Store(c)
			a.OnContainer(pods.ContainerEvent{Type: pods.ContainerStarted, ContainerID: "abc", Facts: facts[ns]})
			got := slices.Clone(l.rules[42])
			slices.Sort(got)
			got = slices.Compact(got)
			if ns == "shop" {
				// /data/*.db is no kernel path: without a fanotify
				// backend loaded it is reported, not widened to /data/.
				want = want[1:]
			}
			if !slices.Equal(got, want) {
				t.Errorf("lsm rules %v, want %v", got, want)
			}
			s := a.Status()
			if s.Backends["deleteFile"] != enforce.BackendLSM || s.Backends["exec"] != enforce.BackendLSM {
				t.Errorf("backends %v", s.Backends)
			}
			if ns == "shop" && (len(s.Unenforced) != 1 || s.Unenforced[0].Operation != "deleteFile" ||
				!strings.Contains(s.Unenforced[0].Reason, "only a trailing /**")) {
				t.Errorf("unenforced %+v, want the /data/*.db delete", s.Unenforced)
			}
		})
	}
}

// TestFanotifyDecision: the fanotify callback denies a write open of a
// blocked path in a marked container, allows reads and other paths, and
// always allows a process of no watched container (the host).
func TestFanotifyDecision(t *testing.T) {
	c := testRules(t, policy.ModeEnforce)
	a := New(Options{NodeName: "n", Features: enforce.Features{Fanotify: true},
		Containers: fakeContainers{"abc": shopFacts}, Backends: Backends{Fanotify: &fakeFanotify{}},
		ContainerRoot: func(uint64) (string, error) { return "/proc/7/root", nil }})
	a.rules.Store(c)
	startAbc(a)
	flags := func(f uint64, known bool) func() (uint64, bool) { return func() (uint64, bool) { return f, known } }
	for _, tc := range []struct {
		name   string
		cgroup uint64
		kind   enforce.Kind
		path   string
		flags  func() (uint64, bool)
		want   enforce.Verdict
	}{
		{"write under /etc denied", 42, enforce.Open, "/etc/foo", flags(syscall.O_WRONLY|syscall.O_CREAT, true), enforce.Deny},
		{"truncate of an /etc file denied", 42, enforce.Open, "/etc/passwd", flags(syscall.O_WRONLY|syscall.O_TRUNC, true), enforce.Deny},
		{"unknown flags taken as a write", 42, enforce.Open, "/etc/passwd", flags(0, false), enforce.Deny},
		{"read of /etc allowed", 42, enforce.Open, "/etc/passwd", flags(syscall.O_RDONLY, true), enforce.Allow},
		{"write elsewhere allowed", 42, enforce.Open, "/tmp/x", flags(syscall.O_WRONLY, true), enforce.Allow},
		{"exec of a blocked path denied", 42, enforce.OpenExec, "/bin/busybox", flags(0, false), enforce.Deny},
		{"host process allowed", 1, enforce.Open, "/etc/foo", flags(syscall.O_WRONLY, true), enforce.Allow},
		{"file off the container root allowed", 42, enforce.Open, "", flags(syscall.O_WRONLY, true), enforce.Allow},
	} {
		if got := a.decideAccess(tc.cgroup, tc.kind, tc.path, os.Getpid(), tc.flags); got != tc.want {
			t.Errorf("%s: verdict %v, want %v", tc.name, got, tc.want)
		}
	}
	if n := a.Status().BlockedBy[enforce.BackendFanotify]; n != 4 {
		t.Errorf("fanotify denials counted %d, want 4", n)
	}
}

// TestNarrowDriftReported: the kernel's drift prevention covers every
// path, so a drift block on /tmp/** is reported unenforced rather than
// widened to the whole container.
func TestNarrowDriftReported(t *testing.T) {
	b, err := bundles.Build(repoWith(t, `apiVersion: palisade.dev/v1alpha1
kind: RuntimeRuleset
metadata: {name: no_busybox}
spec:
  mode: enforce
  file:
    selectors:
      - {name: drift, operation: [createExecutable], targetFilePath: ["/tmp/**"]}
    responses:
      - {match: [drift], actions: [alert, block]}
`), "test", "rev1")
	if err != nil {
		t.Fatal(err)
	}
	c, err := compileRules(b)
	if err != nil {
		t.Fatal(err)
	}
	l := &fakeLSM{rules: map[uint64][]string{}}
	a := New(Options{NodeName: "n", Features: enforce.Features{BPFLSM: true}, Containers: fakeContainers{"abc": shopFacts}, Backends: Backends{LSM: l}})
	a.rules.Store(c)
	startAbc(a)
	s := a.Status()
	if len(l.rules[42]) != 0 || len(s.Unenforced) != 1 || s.Unenforced[0].Operation != "createExecutable" {
		t.Errorf("lsm rules %v, unenforced %+v", l.rules, s.Unenforced)
	}
}

// TestDecisionsWhileReprogramming: fanotify decisions run on their own
// goroutine while containers come and go and revisions change (run with
// -race).
func TestDecisionsWhileReprogramming(t *testing.T) {
	c := testRules(t, policy.ModeEnforce)
	a := New(Options{NodeName: "n", Features: enforce.Features{Fanotify: true},
		Containers: fakeContainers{"abc": shopFacts}, Backends: Backends{Fanotify: &fakeFanotify{}},
		ContainerRoot: func(uint64) (string, error) { return "/proc/7/root", nil }})
	a.rules.Store(c)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 200 {
			a.OnContainer(pods.ContainerEvent{Type: pods.ContainerGone, ContainerID: "abc"})
			startAbc(a)
			a.mu.Lock()
			for _, w := range a.containers {
				a.programLocked(w, c)
			}
			a.mu.Unlock()
		}
	}()
	w := func() (uint64, bool) { return syscall.O_WRONLY, true }
	for {
		select {
		case <-done:
			if v := a.decideAccess(42, enforce.Open, "/etc/x", os.Getpid(), w); v != enforce.Deny {
				t.Errorf("verdict after reprogramming %v, want deny", v)
			}
			return
		default:
			a.decideAccess(42, enforce.Open, "/etc/x", os.Getpid(), w)
			a.Handle(&sensor.Event{Op: sensor.OpModifyFile, Path: "/etc/x", CgroupID: 42})
		}
	}
}

func TestRuntimeEvent(t *testing.T) {
	re, ok := runtimeEvent(&sensor.Event{Op: sensor.OpExec, Path: "/bin/busybox", Comm: "sh"})
	if !ok || re.Kind != bundles.EventProcess || re.ProcessExecutable != "/bin/busybox" || re.ProcessName != "sh" || re.Operation != "exec" {
		t.Errorf("exec event %+v", re)
	}
	re, ok = runtimeEvent(&sensor.Event{Op: sensor.OpModifyFile, Path: "/etc/passwd", Comm: "sh"})
	if !ok || re.Kind != bundles.EventFile || re.Path != "/etc/passwd" || re.ProcessName != "sh" {
		t.Errorf("file event %+v", re)
	}
	if _, ok := runtimeEvent(&sensor.Event{Op: sensor.Op(99), Path: "/x"}); ok {
		t.Error("an unknown operation was mapped")
	}
}

// TestUnknownOperationCounted: an operation the agent does not know is
// counted, not decided on.
func TestUnknownOperationCounted(t *testing.T) {
	var alerts bytes.Buffer
	a := New(Options{NodeName: "n", Alerts: &alerts, Containers: fakeContainers{"abc": shopFacts}})
	a.rules.Store(testRules(t, policy.ModeEnforce))
	startAbc(a)
	a.Handle(&sensor.Event{Op: sensor.Op(99), Path: "/bin/busybox", CgroupID: 42})
	s := a.Status()
	if s.Events != 1 || s.UnknownOps != 1 || alerts.Len() != 0 {
		t.Errorf("events %d, unknown %d, alerts %q", s.Events, s.UnknownOps, alerts.String())
	}
}

// TestStreams: alert goes to the alert stream, log to the event stream,
// a learning ruleset to the observer and never to alerts, and an event
// of a container no pod names (a host process) to none.
func TestStreams(t *testing.T) {
	for _, c := range []struct {
		name                 string
		mode                 string
		container            string
		alerts, observations int
	}{
		{"enforce alerts", policy.ModeEnforce, "abc", 1, 0},
		{"learning observes, never alerts", policy.ModeLearning, "abc", 0, 1},
		{"host process is never acted on", policy.ModeEnforce, "host", 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			rules := testRules(t, c.mode)
			var alerts, obs bytes.Buffer
			var got []Observation
			a := New(Options{NodeName: "node-a", Alerts: &alerts, Containers: fakeContainers{"abc": shopFacts},
				Observer: Observers{JSONLines(&obs, nil), ObserverFunc(func(o Observation) { got = append(got, o) })}})
			a.rules.Store(rules)
			a.mu.Lock()
			a.containers[c.container] = &watched{id: c.container, cgroupID: 42, container: "app", facts: shopFacts, imageDigest: "sha256:d"}
			a.byCgroup[42] = c.container
			a.mu.Unlock()
			at := time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)
			a.Handle(&sensor.Event{Op: sensor.OpExec, Path: "/bin/busybox", Comm: "sh", CgroupID: 42, Time: at, Interactive: true})
			if n := strings.Count(alerts.String(), "\n"); n != c.alerts {
				t.Errorf("%d alert lines, want %d:\n%s", n, c.alerts, alerts.String())
			}
			if n := strings.Count(obs.String(), "\n"); n != c.observations || len(got) != c.observations {
				t.Errorf("%d observation lines, %d observations, want %d:\n%s", n, len(got), c.observations, obs.String())
			}
			if c.alerts > 0 {
				var l Line
				if err := json.Unmarshal(alerts.Bytes(), &l); err != nil {
					t.Fatal(err)
				}
				if l.Pod != "web-1" || l.Namespace != "shop" || l.Container != "app" || l.Image != "docker.io/library/busybox:1.36" ||
					l.Operation != "exec" || l.Path != "/bin/busybox" || l.Ruleset != "no_busybox" || l.Node != "node-a" || l.Stream != "alert" {
					t.Errorf("alert %+v", l)
				}
			}
			if c.observations > 0 {
				o := got[0]
				if !slices.Equal(o.Rulesets, []string{"no_busybox"}) || o.Container != shopFacts || o.ContainerID != "abc" ||
					o.ContainerName != "app" || o.Pod != "web-1" || o.Namespace != "shop" || o.ImageDigest != "sha256:d" ||
					o.Operation != "exec" || o.Path != "/bin/busybox" || o.ProcessExecutable != "/bin/busybox" ||
					o.ProcessName != "sh" || !o.Interactive || !o.Time.Equal(at) || o.Node != "node-a" {
					t.Errorf("observation %+v", o)
				}
				var l ObservationLine
				if err := json.Unmarshal(obs.Bytes(), &l); err != nil {
					t.Fatal(err)
				}
				if l.Stream != "observation" || l.ImageDigest != "sha256:d" || l.Image != "docker.io/library/busybox:1.36" || !slices.Equal(l.Rulesets, o.Rulesets) {
					t.Errorf("observation line %+v", l)
				}
			}
		})
	}
}

// TestActivate: a revision activated through a real engine gets its
// native matcher compiled and used; /status says so.
func TestActivate(t *testing.T) {
	b, err := bundles.Build(testRepo(t), "test", "rev-a")
	if err != nil {
		t.Fatal(err)
	}
	e, err := bundles.NewEngine(t.Context(), b)
	if err != nil {
		t.Fatal(err)
	}
	k := &fakeKiller{blocked: map[uint64][]string{}}
	a := New(Options{NodeName: "n", Features: enforce.Features{ExecKill: true}, Containers: fakeContainers{"abc": shopFacts}, Backends: Backends{Killer: k}})
	startAbc(a)
	a.Activate(e)
	deadline := time.Now().Add(10 * time.Second)
	for a.Status().Matcher != "native" {
		if time.Now().After(deadline) {
			t.Fatalf("status %+v: no native matcher", a.Status())
		}
		time.Sleep(10 * time.Millisecond)
	}
	a.mu.RLock()
	got := slices.Clone(k.blocked[42])
	a.mu.RUnlock()
	if s := a.Status(); s.Revision != "rev-a" || !slices.Equal(got, []string{"/bin/busybox"}) {
		t.Errorf("revision %q, exec killer %v", s.Revision, got)
	}
	// Without fanotify, the /etc/** write blocks are reported.
	var ops []string
	for _, u := range a.Status().Unenforced {
		ops = append(ops, u.Operation)
	}
	if !slices.Equal(ops, []string{"createFile", "deleteFile", "modifyFile"}) {
		t.Errorf("unenforced operations %v", ops)
	}
}

func TestSamplePath(t *testing.T) {
	for p, want := range map[string]string{"/etc/**": "/etc/x", "/usr/*/bin": "/usr/x/bin", "/bin/sh": "/bin/sh", "/**": "/x"} {
		if got := samplePath(p); got != want {
			t.Errorf("samplePath(%q) = %q, want %q", p, got, want)
		}
	}
}
