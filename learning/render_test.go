package learning

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/palisade-dev/palisade/bundles"
	"github.com/palisade-dev/palisade/policy"
	"github.com/palisade-dev/palisade/sensor/match"
	"gopkg.in/yaml.v3"
)

var renderUpdate = flag.Bool("update-learned-golden", false, "rewrite learning/testdata golden files")

// renderProfile is the golden profile: a Deployment with two replicas
// (processes, a cache that collapses, pod-named logs, an interactive
// shell), a CronJob in a namespace whose name reads as a boolean, and an
// image with a registry port.
func renderProfile() *Profile {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	ev := func(n uint64, firstMin, lastMin int, pods ...string) Evidence {
		return Evidence{Count: n, FirstSeen: t0.Add(time.Duration(firstMin) * time.Minute), LastSeen: t0.Add(time.Duration(lastMin) * time.Minute), Pods: pods}
	}
	web := WorkloadID{Namespace: "shop", Workload: "Deployment/web", Container: "app", Image: "registry.example/shop/web", Digest: "sha256:0123"}
	pa, pb := "web-7f9c5d6b8-abcde", "web-7f9c5d6b8-fghij"
	w := &WorkloadProfile{ID: web, Behaviour: []Behaviour{
		{Key: Key{Kind: KindProcess, Operation: "exec", Path: "/usr/sbin/nginx", ProcessName: "nginx"}, Evidence: ev(1500, 0, 1380, pa, pb)},
		{Key: Key{Kind: KindProcess, Operation: "fork", Path: "/usr/sbin/nginx", ProcessName: "nginx"}, Evidence: ev(20, 1, 1300, pb)},
		{Key: Key{Kind: KindProcess, Operation: "exec", Path: "/bin/sh", ProcessName: "sh", Interactive: true}, Evidence: ev(1, 600, 600, pa)},
		{Key: Key{Kind: KindFile, Operation: "createFile", Path: "/var/log/nginx/" + pa + ".log"}, Evidence: ev(2, 0, 0, pa)},
		{Key: Key{Kind: KindFile, Operation: "createFile", Path: "/var/log/nginx/" + pb + ".log"}, Evidence: ev(2, 5, 5, pb)},
		{Key: Key{Kind: KindFile, Operation: "modifyFile", Path: "/var/log/nginx/" + pb + ".log"}, Evidence: ev(900, 5, 1380, pb)},
		{Key: Key{Kind: KindFile, Operation: "modifyFile", Path: "/etc/nginx/nginx.conf"}, Evidence: ev(1, 0, 0, pa)},
		{Key: Key{Kind: KindFile, Operation: "deleteFile", Path: "/run/nginx|pid"}, Evidence: ev(3, 0, 900, pa, pb)},
		{Key: Key{Kind: KindFile, Operation: "modifyFile", Path: "/var/lib/app/state{a}.json"}, Evidence: ev(7, 0, 900, pb)},
	}}
	for i, name := range []string{"a1", "b2", "c3", "d4", "e5", "f6", "g7", "h8", "i9", "ja", "kb", "lc", "md", "ne", "of", "pg", "qh", "ri", "sj", "tk", "ul", "vm"} {
		w.Behaviour = append(w.Behaviour, Behaviour{
			Key:      Key{Kind: KindFile, Operation: "createFile", Path: "/var/cache/nginx/" + name + "/" + name},
			Evidence: ev(4, i, 100+i, pa)})
	}
	job := WorkloadID{Namespace: "true", Workload: "CronJob/nightly", Container: "report", Image: "registry.example:5000/ops/report"}
	j := &WorkloadProfile{ID: job, Behaviour: []Behaviour{
		{Key: Key{Kind: KindProcess, Operation: "exec", Path: "/app/report", ProcessName: "report"}, Evidence: ev(3, 0, 2880, "nightly-29012345-qwert")},
		{Key: Key{Kind: KindFile, Operation: "createFile", Path: "/tmp/tmp.Xy7kQ2aB9c/out.csv"}, Evidence: ev(3, 0, 2880, "nightly-29012345-qwert")},
		{Key: Key{Kind: KindFile, Operation: "deleteFile", Path: "/tmp/tmp.Zz1LmN0pQr/out.csv"}, Evidence: ev(3, 0, 2880, "nightly-29012346-asdfg")},
	}}
	return &Profile{Ruleset: "shop_runtime", LastNew: t0, Workloads: map[string]*WorkloadProfile{
		WorkloadKey(web): w, WorkloadKey(job): j}}
}

func TestRenderLearnedGolden(t *testing.T) {
	got, err := RenderLearned(Generalise(renderProfile(), GeneraliseOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "learned", "shop_runtime.yaml")
	if *renderUpdate {
		if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -run TestRenderLearnedGolden ./learning -update-learned-golden)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("rendered file differs from %s:\n%s", golden, got)
	}
}

// The contract's schema, decoded strictly: every field RenderLearned
// writes is one the contract names.
type renderLearnedFile struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Spec struct {
		Workloads []struct {
			Namespace string `yaml:"namespace"`
			Workload  string `yaml:"workload"`
			Container string `yaml:"container"`
			Image     string `yaml:"image"`
			Process   []struct {
				Executable  string         `yaml:"executable"`
				Interactive *bool          `yaml:"interactive"`
				Evidence    renderEvidence `yaml:"evidence"`
			} `yaml:"process"`
			File []struct {
				Operation []string       `yaml:"operation"`
				Path      string         `yaml:"path"`
				Evidence  renderEvidence `yaml:"evidence"`
			} `yaml:"file"`
		} `yaml:"workloads"`
	} `yaml:"spec"`
}

type renderEvidence struct {
	Count     uint64    `yaml:"count"`
	FirstSeen time.Time `yaml:"firstSeen"`
	LastSeen  time.Time `yaml:"lastSeen"`
	Pods      []string  `yaml:"pods"`
	Distinct  int       `yaml:"distinct"`
}

// TestRenderLearnedReadsBack decodes the rendered file strictly and
// compares it with the proposal, field by field; the reason is a comment
// above each entry.
func TestRenderLearnedReadsBack(t *testing.T) {
	prop := Generalise(renderProfile(), GeneraliseOptions{})
	out, err := RenderLearned(prop)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(out, []byte(LearnedHeader)) {
		t.Errorf("header missing:\n%s", out)
	}
	dec := yaml.NewDecoder(bytes.NewReader(out))
	dec.KnownFields(true)
	var f renderLearnedFile
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("decode: %v\n%s", err, out)
	}
	if f.APIVersion != "palisade.dev/v1alpha1" || f.Kind != "LearnedRules" || f.Metadata.Name != "shop_runtime" || len(f.Spec.Workloads) != len(prop.Workloads) {
		t.Fatalf("header fields: %+v", f)
	}
	for i, w := range prop.Workloads {
		fw := f.Spec.Workloads[i]
		if fw.Namespace != w.ID.Namespace || fw.Workload != w.ID.Workload || fw.Container != w.ID.Container || fw.Image != w.ID.Image {
			t.Errorf("workload %d: %+v, want %+v", i, fw, w.ID)
		}
		if len(fw.Process) != len(w.Process) || len(fw.File) != len(w.File) {
			t.Fatalf("workload %d: %d process, %d file entries", i, len(fw.Process), len(fw.File))
		}
		for k, r := range w.Process {
			fr := fw.Process[k]
			if fr.Executable != r.Executable || (fr.Interactive == nil) != (r.Interactive == nil) || !renderSameEvidence(fr.Evidence, r.Evidence) {
				t.Errorf("process %d/%d: %+v, want %+v", i, k, fr, r)
			}
			if !bytes.Contains(out, []byte("# "+r.Reason+"\n        - executable: ")) {
				t.Errorf("reason %q is not the comment above its entry", r.Reason)
			}
		}
		for k, r := range w.File {
			fr := fw.File[k]
			if fr.Path != r.Path || strings.Join(fr.Operation, ",") != strings.Join(r.Operation, ",") || !renderSameEvidence(fr.Evidence, r.Evidence) {
				t.Errorf("file %d/%d: %+v, want %+v", i, k, fr, r)
			}
			if !bytes.Contains(out, []byte("# "+r.Reason+"\n        - operation: ")) {
				t.Errorf("reason %q is not the comment above its entry", r.Reason)
			}
		}
	}
}

func renderSameEvidence(a renderEvidence, b RuleEvidence) bool {
	return a.Count == b.Count && a.FirstSeen.Equal(b.FirstSeen) && a.LastSeen.Equal(b.LastSeen) &&
		strings.Join(a.Pods, ",") == strings.Join(b.Pods, ",") && a.Distinct == b.Distinct
}

func TestRenderLearnedEmptyAndInvalid(t *testing.T) {
	out, err := RenderLearned(&Proposal{Ruleset: "r"})
	if err != nil || !strings.HasSuffix(string(out), "spec:\n  workloads: []\n") {
		t.Errorf("empty proposal: %v\n%s", err, out)
	}
	for _, p := range []*Proposal{
		nil,
		{},
		{Ruleset: "r", Workloads: []WorkloadRules{{ID: WorkloadID{Namespace: "a", Workload: "Deployment/b"}}}},
		{Ruleset: "r", Workloads: []WorkloadRules{{ID: WorkloadID{Namespace: "a", Workload: "Deployment/b", Container: "c"}, Process: []ProcessRule{{Executable: "sh"}}}}},
		{Ruleset: "r", Workloads: []WorkloadRules{{ID: WorkloadID{Namespace: "a", Workload: "Deployment/b", Container: "c"}, File: []FileRule{{Path: "/x"}}}}},
	} {
		if _, err := RenderLearned(p); err == nil {
			t.Errorf("RenderLearned(%+v) = nil error", p)
		}
	}
}

func TestYAMLScalar(t *testing.T) {
	for in, want := range map[string]string{
		"/var/cache/nginx/**": "/var/cache/nginx/**",
		`/data/a\*b`:          `'/data/a\*b'`,
		"shop":                "shop",
		"true":                `'true'`,
		"No":                  `'No'`,
		"123":                 `'123'`,
		"1e3":                 `'1e3'`,
		"2026-12-01":          `'2026-12-01'`,
		"web-7f9c-abcde":      "web-7f9c-abcde",
		"registry:5000/x":     `'registry:5000/x'`,
		"a, b":                `'a, b'`,
		"":                    `''`,
		"*alias":              `'*alias'`,
		"-x":                  `'-x'`,
		"<b>&":                `'<b>&'`,
		"/it's":               `'/it''s'`,
		"/a\x7fb\tc\u2028":    `"/a\x7fb\x09c\u2028"`,
		"/é\"q\\\x01":         `"/é\"q\\\x01"`,
	} {
		if got := yamlScalar(in); got != want {
			t.Errorf("yamlScalar(%q) = %s, want %s", in, got, want)
		}
		var v any
		if err := yaml.Unmarshal([]byte("["+yamlScalar(in)+"]"), &v); err != nil || v.([]any)[0] != in {
			t.Errorf("%q does not read back in a flow sequence: %v %v", in, v, err)
		}
	}
}

func TestRenderBody(t *testing.T) {
	prop := Generalise(renderProfile(), GeneraliseOptions{})
	rs := &policy.RuntimeRuleset{Metadata: policy.Metadata{Name: "shop_runtime"}, Spec: policy.RuntimeRulesetSpec{
		Mode: "learning",
		Process: &policy.D4CSection{
			Selectors: []policy.Selector{
				{Name: "shop", Operation: []string{"exec"}, KubernetesNamespace: []string{"shop", "true"}},
				{Name: "own", ProcessExecutable: []string{"/app/own|pipe"}},
				{Name: "learned.0.process.0", ProcessExecutable: []string{"/old"}, KubernetesNamespace: []string{"shop"}},
			},
			Responses: []policy.Response{{Match: []string{"shop"}, Exclude: []string{"own", "learned.0.process.0"}, Actions: []string{"alert", "block"}}},
		},
	}}
	body := RenderBody(prop, BodyOptions{RulesetFile: "rulesets/shop.yaml", LearnedFile: "policies/learned/shop_runtime.yaml", Ruleset: rs, Why: "no new behaviour for 24h"})
	for _, want := range []string{
		"## Summary",
		"ruleset `shop_runtime` from 2533 observed events between 2026-12-01T10:00:00Z and 2026-12-03T10:00:00Z",
		"Proposed now because: no new behaviour for 24h.",
		"adds `policies/learned/shop_runtime.yaml`: 3 process and 6 file rules for 2 workloads",
		"changes the ruleset's `spec.mode` in `rulesets/shop.yaml` from `learning` to `audit`",
		"**Enforcement begins only after a second, human change** that sets `mode: enforce`",
		"widens nothing for any other workload",
		"### Review these first",
		"`/bin/sh` was run in an interactive session",
		"### `CronJob/nightly` in `true`, container `report`",
		"### `Deployment/web` in `shop`, container `app`",
		"Image `registry.example/shop/web` (`sha256:0123`).",
		"| process | `/usr/sbin/nginx` | run, not interactive | 1520 |  | 2026-12-01T10:00:00Z | 2026-12-02T09:00:00Z | `web-7f9c5d6b8-abcde` `web-7f9c5d6b8-fghij` | exact executable, only seen outside interactive sessions |",
		"| file | `/var/cache/nginx/**` | createFile | 88 | 22 |",
		"| file | `/run/nginx\\|pid` | deleteFile | 3 | 1 |",
		"| file | `/var/log/nginx/web-*.log` | createFile, modifyFile | 904 | 2 |",
		"## How the rules were generalised",
		"- A directory with more than 20 distinct children became `dir/**`",
		"- Never at or above `/`, `/bin`, `/etc`, `/lib`, `/sbin`, `/usr/bin`, `/usr/lib`, `/usr/sbin`: their children stay listed one by one.",
		"## What will now alert",
		"### process\n\nThese responses now alert on every event they match",
		"1. actions alert, block, on events matching `shop` (operation: exec; kubernetesNamespace: shop, true), except `own` (processExecutable: /app/own\\|pipe) (the rules of the current `policies/learned/shop_runtime.yaml`, which this change replaces, are excluded today).",
		"- `Deployment/web` in `shop`, container `app`: any executable other than `/bin/sh`, `/usr/sbin/nginx`",
		"- every other workload: everything these responses match, as before",
		"### file\n\nThe ruleset has no file responses: nothing in this section alerts",
		"## How to reject a rule",
		"delete its entry in `policies/learned/shop_runtime.yaml` in this pull request",
		"close this pull request without merging. Palisade remembers a closed proposal and does not reopen a pull request with the same content",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("body lacks %q", want)
		}
	}
	// Every table row has exactly its 9 cells: no `|` in content breaks one.
	cell := regexp.MustCompile(`(^|[^\\])\|`)
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "| process") || strings.HasPrefix(line, "| file") {
			if n := len(cell.FindAllString(line, -1)); n != 10 {
				t.Errorf("row with %d separators: %s", n, line)
			}
		}
	}
	if !strings.Contains(body, "block` action is reported") {
		t.Errorf("audit's meaning is not explained")
	}
	first := RenderBody(prop, BodyOptions{Ruleset: rs, Why: "x"})
	if again := RenderBody(Generalise(renderProfile(), GeneraliseOptions{}), BodyOptions{Ruleset: rs, Why: "x"}); again != first {
		t.Error("the body is not deterministic")
	}
}

func TestRenderBodyWithoutRulesetAndTruncated(t *testing.T) {
	prop := Generalise(renderProfile(), GeneraliseOptions{})
	body := RenderBody(prop, BodyOptions{MaxRows: 2, NextMode: "enforce"})
	for _, want := range []string{
		"adds `learned/shop_runtime.yaml`",
		"from `learning` to `enforce`",
		"blocks behaviour outside the rules",
		"Every event that a response of `shop_runtime` matches and that no learned rule of its workload covers will alert, and be blocked",
		"5 more rules of this workload are in `learned/shop_runtime.yaml`.",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("body lacks %q", want)
		}
	}
	if strings.Contains(body, "Enforcement begins only after") {
		t.Error("an enforce proposal claims a second change is needed")
	}
	if got := Title(prop); got != "Palisade learning: 9 learned rules for shop_runtime (2 workloads)" {
		t.Errorf("Title = %q", got)
	}
	if got := Title(&Proposal{Ruleset: "r", Workloads: []WorkloadRules{{Process: []ProcessRule{{}}}}}); got != "Palisade learning: 1 learned rule for r (1 workload)" {
		t.Errorf("Title = %q", got)
	}
}

func TestMDCode(t *testing.T) {
	for in, want := range map[string]string{
		"a|b":   "`a\\|b`",
		"a`b":   "`` a`b ``",
		"x\ny":  "`x y`",
		"plain": "`plain`",
		"a*b_c": "`a*b_c`",
	} {
		if got := mdCode(in); got != want {
			t.Errorf("mdCode(%q) = %q, want %q", in, got, want)
		}
	}
	if got, want := mdText("a*b_c <x> [l](u) `q` |"), `a\*b\_c \<x\> \[l\](u) \`+"`"+`q\`+"`"+` \|`; got != want {
		t.Errorf("mdText = %s, want %s", got, want)
	}
}

// renderRuleset is a learning ruleset that alerts on every exec and every
// file write when not learning.
const renderRuleset = `# The shop's runtime rules.
apiVersion: palisade.dev/v1alpha1
kind: RuntimeRuleset
metadata:
  name: shop_runtime
spec:
  mode: learning   # learning until the proposal is merged
  process:
    selectors:
      - {name: execs, operation: [exec]}
    responses:
      - {match: [execs], actions: [alert]}
  file:
    selectors:
      - {name: writes, operation: [createFile, modifyFile, deleteFile, createExecutable, modifyExecutable], targetFilePath: [/**]}
    responses:
      - {match: [writes], actions: [alert, block]}
`

const renderCluster = `apiVersion: palisade.dev/v1alpha1
kind: Policy
metadata: {name: test}
spec:
  clusters: [test]
  clusterWide:
    runtime:
      rulesets: [shop_runtime]
`

// TestRenderedLearnedFileLoadsAndSparesItsWorkload is the proposal as
// merged: the ruleset's mode set to audit by SetMode and the rendered
// learned file load with the policy loader, and the native matcher
// compiled from the bundle raises nothing for any observed behaviour of
// the profile, in its own workload's container, while drift (a new
// executable, a write under /etc, one workload's behaviour in another
// workload or container) alerts.
func TestRenderedLearnedFileLoadsAndSparesItsWorkload(t *testing.T) {
	prof := renderProfile()
	learned, err := RenderLearned(Generalise(prof, GeneraliseOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	rs, err := SetMode([]byte(renderRuleset), "shop_runtime", "audit")
	if err != nil {
		t.Fatal(err)
	}
	repo, err := policy.Load(fstest.MapFS{
		"clusters/test.yaml":        {Data: []byte(renderCluster)},
		"rulesets/shop.yaml":        {Data: rs},
		"learned/shop_runtime.yaml": {Data: learned},
	})
	if err != nil {
		t.Fatalf("the rendered file does not load: %v\n%s", err, learned)
	}
	if got := repo.Rulesets["shop_runtime"].Spec.Mode; got != "audit" {
		t.Fatalf("mode %q, want audit", got)
	}
	b, err := bundles.Build(repo, "test", "rev")
	if err != nil {
		t.Fatal(err)
	}
	m, err := match.FromBundle(b)
	if err != nil {
		t.Fatal(err)
	}
	engine, err := bundles.NewEngine(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	// decide is the native matcher's decision, checked against Rego's.
	decide := func(ev *bundles.RuntimeEvent, c *bundles.Container) []string {
		t.Helper()
		native := m.Match(ev, c)
		rd, err := engine.Runtime(context.Background(), ev, c)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(native.Actions) != fmt.Sprint(rd.Actions) {
			t.Errorf("%s %s: native %v, Rego %v", ev.Operation, ev.Path, native.Actions, rd.Actions)
		}
		return native.Actions
	}
	container := func(id WorkloadID, pod string) *bundles.Container {
		return &bundles.Container{Namespace: id.Namespace, Workload: id.Workload, ContainerName: id.Container, PodName: pod, ImageFullName: id.Image}
	}
	event := func(k Key) *bundles.RuntimeEvent {
		if k.Kind == KindProcess {
			return &bundles.RuntimeEvent{Kind: bundles.EventProcess, Operation: k.Operation, Path: k.Path, ProcessExecutable: k.Path, ProcessName: path.Base(k.Path), Interactive: k.Interactive}
		}
		return &bundles.RuntimeEvent{Kind: bundles.EventFile, Operation: k.Operation, Path: k.Path, ProcessExecutable: "/usr/sbin/nginx", ProcessName: "nginx"}
	}
	replayed := 0
	for _, w := range prof.Workloads {
		for _, beh := range w.Behaviour {
			for _, pod := range beh.Evidence.Pods {
				replayed++
				if a := decide(event(beh.Key), container(w.ID, pod)); len(a) > 0 {
					t.Errorf("%s %s %s in %s: %v, want no alert", w.ID.Workload, beh.Key.Operation, beh.Key.Path, pod, a)
				}
			}
		}
	}
	web := WorkloadID{Namespace: "shop", Workload: "Deployment/web", Container: "app"}
	job := WorkloadID{Namespace: "true", Workload: "CronJob/nightly", Container: "report"}
	sidecar := web
	sidecar.Container = "sidecar"
	other := web
	other.Namespace = "staging"
	for _, tc := range []struct {
		name string
		id   WorkloadID
		key  Key
	}{
		{"a new executable", web, Key{Kind: KindProcess, Operation: "exec", Path: "/tmp/miner"}},
		{"a shell", web, Key{Kind: KindProcess, Operation: "exec", Path: "/bin/bash", Interactive: true}},
		{"nginx interactively", web, Key{Kind: KindProcess, Operation: "exec", Path: "/usr/sbin/nginx", Interactive: true}},
		{"a write under /etc", web, Key{Kind: KindFile, Operation: "modifyFile", Path: "/etc/passwd"}},
		{"an operation not learned for the path", web, Key{Kind: KindFile, Operation: "deleteFile", Path: "/etc/nginx/nginx.conf"}},
		{"an executable written in the cache", web, Key{Kind: KindFile, Operation: "createExecutable", Path: "/var/cache/nginx/x/y"}},
		{"the job's executable in the web workload", web, Key{Kind: KindProcess, Operation: "exec", Path: "/app/report"}},
		{"the web workload's executable in the job", job, Key{Kind: KindProcess, Operation: "exec", Path: "/usr/sbin/nginx"}},
		{"another container of the workload", sidecar, Key{Kind: KindProcess, Operation: "exec", Path: "/usr/sbin/nginx"}},
		{"a name the escaped braces would match as a glob", web, Key{Kind: KindFile, Operation: "modifyFile", Path: "/var/lib/app/statea.json"}},
		{"the same workload name in another namespace", other, Key{Kind: KindFile, Operation: "createFile", Path: "/var/cache/nginx/a1/a1"}},
	} {
		if a := decide(event(tc.key), container(tc.id, "p-1")); !slices.Contains(a, "alert") {
			t.Errorf("%s: %v, want an alert", tc.name, a)
		}
	}
	if replayed < 30 {
		t.Fatalf("replayed only %d behaviours", replayed)
	}
	// A proposal with nothing learned loads too.
	empty, err := RenderLearned(&Proposal{Ruleset: "shop_runtime"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := policy.Load(fstest.MapFS{
		"clusters/test.yaml":        {Data: []byte(renderCluster)},
		"rulesets/shop.yaml":        {Data: rs},
		"learned/shop_runtime.yaml": {Data: empty},
	}); err != nil {
		t.Errorf("an empty learned file does not load: %v", err)
	}
}
