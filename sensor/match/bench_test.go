package match_test

import (
	"context"
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

// BenchmarkMatch is the native matcher per event; compare with
// BenchmarkRego (issue target: at least 50 times faster).
func BenchmarkMatch(b *testing.B) {
	p, events, containers := benchEvents(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		p.matcher.Match(events[i%len(events)], containers[i%len(events)])
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
