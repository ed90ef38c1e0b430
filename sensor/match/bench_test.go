package match_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/palisade-dev/palisade/bundles"
	"github.com/palisade-dev/palisade/policy"
)

// benchEvents are the events both benchmarks decide on, in turn: the
// generator's mix of kinds, namespaces (so both definitions of prod) and
// outcomes.
func benchEvents(b *testing.B) (pair, []*bundles.RuntimeEvent, []*bundles.Container) {
	repo, err := policy.LoadDir(examplesDir)
	if err != nil {
		b.Fatal(err)
	}
	p := compile(b, repo, "prod")
	g := newGen(7)
	events := make([]*bundles.RuntimeEvent, 256)
	containers := make([]*bundles.Container, len(events))
	for i := range events {
		events[i], containers[i] = g.event(), g.container()
	}
	return p, events, containers
}

// BenchmarkMatch is the native matcher per event, deciding into one
// reused decision as the sensor's agent does; compare with
// BenchmarkRego (issue target: at least 50 times faster).
func BenchmarkMatch(b *testing.B) {
	p, events, containers := benchEvents(b)
	b.ReportAllocs()
	var d bundles.RuntimeDecision // reused, as the sensor's agent does
	i := 0
	for b.Loop() {
		p.matcher.MatchInto(&d, events[i%len(events)], containers[i%len(events)])
		i++
	}
}

// BenchmarkRego is Engine.Runtime per event on the same events.
func BenchmarkRego(b *testing.B) {
	p, events, containers := benchEvents(b)
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := p.engine.Runtime(ctx, events[i%len(events)], containers[i%len(events)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkMatchManyRules is bench/sensor's "100 rules" case: 50 process
// responses that all match an exec, each with its own selector (the
// matcher's worst case: no response can be skipped).
func BenchmarkMatchManyRules(b *testing.B) {
	dir := b.TempDir()
	var sel, resp strings.Builder
	for i := range 50 {
		fmt.Fprintf(&sel, "      - {name: p%d, operation: [fork, exec], processExecutable: [\"/**\", \"/bench/p%d\"]}\n", i, i)
		fmt.Fprintf(&resp, "      - {match: [p%d], actions: [log]}\n", i)
	}
	files := map[string]string{
		"clusters/bench.yaml": "apiVersion: palisade.dev/v1alpha1\nkind: Policy\nmetadata: {name: bench}\nspec:\n  clusters: [bench]\n  clusterWide:\n    runtime: {rulesets: [many]}\n",
		"rulesets/many.yaml":  "apiVersion: palisade.dev/v1alpha1\nkind: RuntimeRuleset\nmetadata: {name: many}\nspec:\n  process:\n    selectors:\n" + sel.String() + "    responses:\n" + resp.String(),
	}
	for name, body := range files {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	repo, err := policy.LoadDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	p := compile(b, repo, "bench")
	ev := &bundles.RuntimeEvent{Kind: bundles.EventProcess, Operation: "exec", Path: "/bin/true", ProcessExecutable: "/bin/true", ProcessName: "true"}
	c := &bundles.Container{Namespace: "bench", PodName: "bench-0", ImageFullName: "docker.io/library/busybox"}
	if d := p.matcher.Match(ev, c); len(d.Matches) != 50 {
		b.Fatalf("%d matches, want 50", len(d.Matches))
	}
	b.ReportAllocs()
	var d bundles.RuntimeDecision // reused, as the sensor's agent does
	for b.Loop() {
		p.matcher.MatchInto(&d, ev, c)
	}
}
