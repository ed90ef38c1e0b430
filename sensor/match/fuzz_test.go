package match_test

import (
	"context"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/gobwas/glob"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/palisade-dev/palisade/bundles"
	"github.com/palisade-dev/palisade/sensor/match"
)

// withPolicy evaluates the Rego library's runtime decision with the
// policy data given in the input: compiling a bundle per fuzz input (as
// the differential tests do) would let the fuzzer try a few inputs a
// second instead of thousands. The modules are the bundle's own.
var withPolicy = sync.OnceValues(func() (rego.PreparedEvalQuery, error) {
	modules, err := bundles.Modules()
	if err != nil {
		return rego.PreparedEvalQuery{}, err
	}
	opts := []func(*rego.Rego){
		rego.Query(bundles.RuntimeQuery + " with data.palisade.policy as input.policy with input as input.input"),
		rego.StrictBuiltinErrors(true),
	}
	for _, m := range modules {
		opts = append(opts, rego.ParsedModule(m.Parsed))
	}
	return rego.New(opts...).PrepareForEval(context.Background())
})

// regoDecision is the Rego decision for a policy (ClusterData) and an
// event, read as Engine.Runtime reads it.
func regoDecision(t *testing.T, data *bundles.ClusterData, ev *bundles.RuntimeEvent, c *bundles.Container) bundles.RuntimeDecision {
	t.Helper()
	pq, err := withPolicy()
	if err != nil {
		t.Fatal(err)
	}
	// The policy goes through JSON as Build writes it into data.json.
	raw, err := json.Marshal(data)
	if err != nil {
		t.Fatal(err)
	}
	var plain any
	if err := json.Unmarshal(raw, &plain); err != nil {
		t.Fatal(err)
	}
	pol, err := ast.InterfaceToValue(plain)
	if err != nil {
		t.Fatal(err)
	}
	input := ast.NewObject(
		ast.Item(ast.StringTerm("policy"), ast.NewTerm(pol)),
		ast.Item(ast.StringTerm("input"), ast.NewTerm(bundles.RuntimeInput(ev, c))),
	)
	rs, err := pq.Eval(context.Background(), rego.EvalParsedInput(input))
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 {
		t.Fatalf("undefined decision")
	}
	raw, err = json.Marshal(rs[0].Expressions[0].Value)
	if err != nil {
		t.Fatal(err)
	}
	var d bundles.RuntimeDecision
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	// JSON has empty lists where the engine reads nil; matches are a set.
	if len(d.Actions) == 0 {
		d.Actions = nil
	}
	if len(d.Matches) == 0 {
		d.Matches = nil
	}
	for i := range d.Matches {
		if len(d.Matches[i].Actions) == 0 {
			d.Matches[i].Actions = nil
		}
	}
	slices.SortFunc(d.Matches, func(a, b bundles.RuntimeMatch) int {
		if c := strings.Compare(a.Ruleset, b.Ruleset); c != 0 {
			return c
		}
		return a.Response - b.Response
	})
	return d
}

// FuzzMatch holds the native matcher to Rego on policies generated from a
// seed whose first selectors take the fuzzer's path pattern, pod name
// pattern, label and workload pattern, against events with the fuzzer's
// path, pod name, label value and workload. Policy strings are what validation lets through (valid
// UTF-8 from YAML, absolute path patterns that compile, key:value
// labels); event strings are anything the kernel may report.
func FuzzMatch(f *testing.F) {
	f.Add(uint64(1), "/etc/**", "/etc/ssl/cert.pem", "web-*", "web-1", "app:web*", "web-frontend", "Deployment/web", "Deployment/web")
	f.Add(uint64(2), "/usr/*/x", "/usr/bin/x", "payments-api-0", "payments-api-0", "app:payments-api", "payments-api", "Deployment/*", "Deployment/web-api")
	f.Add(uint64(3), "/{etc,tmp}/?in", "/tmp/bin", "*", "", "tier:*", "", "*", "")
	f.Add(uint64(4), "/**", "/", "w*b", "w*b", "url:http://x*", "http://x.example", "*/web", "Deployment/web")
	f.Add(uint64(5), "/a/[bc]*", "/a/c/d", "api-", "api-7f", "app:", "", "Deployment/web", "Deployment/web-api")
	f.Add(uint64(6), `/usr/bin/run\[1\]`, "/usr/bin/run[1]", "web-*", "web-1", "app:web*", "web", "CronJob/nightly", "CronJob/nightly")
	f.Fuzz(func(t *testing.T, seed uint64, pattern, path, podPattern, podName, lbl, labelValue, workloadPattern, workload string) {
		for _, s := range []string{pattern, podPattern, lbl, workloadPattern} {
			if !utf8.ValidString(s) {
				return
			}
		}
		if !strings.HasPrefix(pattern, "/") {
			return
		}
		if _, err := glob.Compile(pattern, '/'); err != nil {
			return
		}
		key, _, ok := strings.Cut(lbl, ":")
		if !ok || key == "" {
			return
		}
		g := newGen(seed)
		repo := g.repo()
		spec := repo.Rulesets["r1"].Spec
		if spec.File != nil {
			sel := &spec.File.Selectors[0]
			sel.TargetFilePath = []string{pattern}
			sel.KubernetesPodName = []string{podPattern}
			sel.KubernetesPodLabel = []string{lbl}
			sel.KubernetesWorkload = []string{workloadPattern}
		}
		if spec.Process != nil {
			sel := &spec.Process.Selectors[0]
			sel.ProcessExecutable = []string{pattern}
			sel.KubernetesPodName = []string{podPattern}
			sel.KubernetesPodLabel = []string{lbl}
			sel.KubernetesWorkload = []string{workloadPattern}
		}
		repo.Policies[0].Spec.ClusterWide.Runtime.Rulesets = []string{"r1"}
		data, err := bundles.Data(repo, "test")
		if err != nil {
			t.Fatal(err)
		}
		m, err := match.Compile(data)
		if err != nil {
			t.Fatal(err)
		}
		ev, c := g.event(), g.container()
		ev.Path = path
		if ev.Kind == bundles.EventProcess {
			ev.ProcessExecutable = path
		}
		if c != nil {
			c.PodName = podName
			c.PodLabels[key] = labelValue
			c.Workload = workload
		}
		want := regoDecision(t, data, ev, c)
		if got := m.Match(ev, c); !reflect.DeepEqual(got, want) {
			t.Fatalf("native and Rego differ\nevent:     %s\ncontainer: %s\nruleset:   %s\nnative:    %s\nrego:      %s",
				js(ev), js(c), js(spec), js(got), js(want))
		}
	})
}
