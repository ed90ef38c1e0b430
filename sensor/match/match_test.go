package match_test

import (
	"context"
	"encoding/json"
	"reflect"
	"slices"
	"testing"

	"github.com/palisade-dev/palisade/bundles"
	"github.com/palisade-dev/palisade/policy"
	"github.com/palisade-dev/palisade/sensor/match"
)

const examplesDir = "../../policies-example"

// pair is the Rego engine and the native matcher of one bundle.
type pair struct {
	engine  *bundles.Engine
	matcher *match.Matcher
	repo    *policy.Repo
	// reused is the decision MatchInto writes every event of a test
	// into, as the sensor's agent does.
	reused *bundles.RuntimeDecision
}

// compile builds a cluster's bundle exactly as production does, and both
// deciders from it.
func compile(t testing.TB, repo *policy.Repo, cluster string) pair {
	t.Helper()
	b, err := bundles.Build(repo, cluster, "test")
	if err != nil {
		t.Fatal(err)
	}
	e, err := bundles.NewEngine(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	m, err := match.FromBundle(b)
	if err != nil {
		t.Fatal(err)
	}
	return pair{engine: e, matcher: m, repo: repo, reused: &bundles.RuntimeDecision{}}
}

// same checks that the native matcher decides as Rego does, field for
// field, and that MatchInto, writing into the decision the previous
// events were written into, decides as Match; it returns the decision.
func (p pair) same(t *testing.T, ev *bundles.RuntimeEvent, c *bundles.Container) bundles.RuntimeDecision {
	t.Helper()
	want, err := p.engine.Runtime(context.Background(), ev, c)
	if err != nil {
		t.Fatal(err)
	}
	got := p.matcher.Match(ev, c)
	if !reflect.DeepEqual(got, *want) {
		t.Fatalf("native and Rego differ\nevent:     %s\ncontainer: %s\nrulesets:  %s\nnative:    %s\nrego:      %s",
			js(ev), js(c), js(rulesetsOf(p.repo)), js(got), js(want))
	}
	p.matcher.MatchInto(p.reused, ev, c)
	into := *p.reused
	if len(into.Matches) == 0 {
		into.Matches = nil // MatchInto's empty may keep the array
	}
	if !reflect.DeepEqual(into, got) {
		t.Fatalf("MatchInto into a reused decision differs from Match\nevent: %s\nMatch:     %s\nMatchInto: %s", js(ev), js(got), js(into))
	}
	return got
}

func rulesetsOf(repo *policy.Repo) any {
	out := map[string]any{}
	for name, rs := range repo.Rulesets {
		out[name] = rs.Spec
	}
	return map[string]any{"rulesets": out, "policy": repo.Policies[0].Spec}
}

func js(v any) string {
	raw, _ := json.Marshal(v)
	return string(raw)
}

// TestDifferentialExamples holds the matcher to Rego on every cluster of
// the example repository (so on every ruleset it uses) with generated
// events.
func TestDifferentialExamples(t *testing.T) {
	repo, err := policy.LoadDir(examplesDir)
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for _, cluster := range repo.Clusters() {
		p := compile(t, repo, cluster)
		g := newGen(1)
		matched := 0
		for range 400 {
			d := p.same(t, g.event(), g.container())
			for _, m := range d.Matches {
				used[m.Ruleset] = true
			}
			if len(d.Matches) > 0 {
				matched++
			}
		}
		// Generated events that never match would prove little.
		if matched < 20 {
			t.Errorf("cluster %s: only %d of 400 events matched", cluster, matched)
		}
	}
	for name := range repo.Rulesets {
		if !used[name] {
			t.Errorf("ruleset %s never matched a generated event", name)
		}
	}
}

// TestDifferentialRandom holds the matcher to Rego on random valid
// policies and rulesets (deterministic seeds) with random events.
func TestDifferentialRandom(t *testing.T) {
	policies, events := 40, 400
	if testing.Short() {
		policies = 5
	}
	matched, observed, blocked := 0, 0, 0
	for seed := range uint64(policies) {
		g := newGen(seed)
		repo := g.repo()
		p := compile(t, repo, "test")
		data, err := bundles.Data(repo, "test")
		if err != nil {
			t.Fatal(err)
		}
		for i := range events {
			ev, c := g.event(), g.container()
			d := p.same(t, ev, c)
			// FuzzMatch's evaluator (policy in the input) must be the
			// bundle's decision too.
			if i < 20 {
				if viaInput := regoDecision(t, data, ev, c); !reflect.DeepEqual(viaInput, d) {
					t.Fatalf("FuzzMatch's Rego evaluation differs from the bundle's\nevent: %s\nbundle: %s\nvia input: %s", js(ev), js(d), js(viaInput))
				}
			}
			if len(d.Matches) > 0 {
				matched++
			}
			if d.Observe {
				observed++
			}
			if slices.Contains(d.Actions, "block") {
				blocked++
			}
		}
	}
	t.Logf("%d events: %d matched, %d observed, %d with block", policies*events, matched, observed, blocked)
	if matched == 0 || observed == 0 || blocked == 0 {
		t.Errorf("the generator no longer reaches every outcome: %d matched, %d observed, %d blocked", matched, observed, blocked)
	}
}

func TestHostProcessNeverMatches(t *testing.T) {
	repo, err := policy.LoadDir(examplesDir)
	if err != nil {
		t.Fatal(err)
	}
	p := compile(t, repo, "prod")
	ev := &bundles.RuntimeEvent{Kind: bundles.EventFile, Operation: "modifyFile", Path: "/usr/bin/ls"}
	if d := p.same(t, ev, nil); len(d.Matches) != 0 {
		t.Errorf("host process matched: %+v", d)
	}
}
