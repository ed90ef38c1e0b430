package agent

import (
	"io"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/palisade-dev/palisade/bundles"
	"github.com/palisade-dev/palisade/policy"
	"github.com/palisade-dev/palisade/sensor"
)

// consumeEvents is what BenchmarkConsume feeds the agent: a watched
// container's file writes no rule matches and an exec its block rule
// matches (an alert line each), the mix of a busy container.
var consumeEvents = []sensor.Event{
	{Op: sensor.OpModifyFile, Path: "/var/log/app/access.log", Comm: "nginx", CgroupID: 42},
	{Op: sensor.OpCreateFile, Path: "/tmp/upload-1234", Comm: "nginx", CgroupID: 42},
	{Op: sensor.OpModifyFile, Path: "/var/cache/nginx/x", Comm: "nginx", CgroupID: 42},
	{Op: sensor.OpExec, Path: "/bin/busybox", Comm: "sh", CgroupID: 42},
}

// newConsumeAgent is the agent BenchmarkConsume and
// BenchmarkConsumeBatches feed: the test rules, enforce mode, one
// container, metrics registered, streams discarded.
func newConsumeAgent(b *testing.B) *Agent {
	a := New(Options{NodeName: "n", Containers: fakeContainers{"abc": shopFacts}, Registerer: prometheus.NewRegistry(),
		Alerts: io.Discard, Events: io.Discard})
	a.rules.Store(testRules(b, policy.ModeEnforce))
	startAbc(a)
	return a
}

// BenchmarkConsume is the agent's share of the pipeline per event, as
// `palisade sensor` runs it: events arrive on a channel from the probe's
// reader, and each is attributed (cgroup → container → pod facts),
// decided by the native matcher, counted in the metrics and written to
// its streams. ns/op is per event.
func BenchmarkConsume(b *testing.B) {
	a := newConsumeAgent(b)
	ch := make(chan sensor.Event, 4096)
	done := make(chan struct{})
	go func() { defer close(done); a.Consume(ch) }()
	b.ResetTimer()
	for i := range b.N {
		ch <- consumeEvents[i%len(consumeEvents)]
	}
	close(ch)
	<-done
}

// BenchmarkConsumeBatches is BenchmarkConsume through ConsumeBatches, in
// batches of sensor.MaxBatch as the probe hands them over when the ring
// is busy. ns/op is per event.
func BenchmarkConsumeBatches(b *testing.B) {
	feedBatches(b, newConsumeAgent(b), consumeEvents)
}

// feedBatches hands b.N events, cycling through events, to
// a.ConsumeBatches in batches of sensor.MaxBatch, and returns once the
// agent consumed them all.
func feedBatches(b *testing.B, a *Agent, events []sensor.Event) {
	ch := make(chan []sensor.Event, 16)
	done := make(chan struct{})
	go func() { defer close(done); a.ConsumeBatches(ch) }()
	b.ResetTimer()
	for i := 0; i < b.N; {
		batch := make([]sensor.Event, 0, sensor.MaxBatch)
		for ; i < b.N && len(batch) < sensor.MaxBatch; i++ {
			batch = append(batch, events[i%len(events)])
		}
		ch <- batch
	}
	close(ch)
	<-done
}

// BenchmarkConsumeLogged is BenchmarkConsumeBatches with a ruleset that
// logs every file event: a decision with a match and an event stream line
// per event, the agent's heaviest common path. ns/op is per event.
func BenchmarkConsumeLogged(b *testing.B) {
	const logAll = `apiVersion: palisade.dev/v1alpha1
kind: RuntimeRuleset
metadata: {name: no_busybox}
spec:
  mode: enforce
  file:
    selectors:
      - {name: all, operation: [createFile, modifyFile], targetFilePath: ["/**"]}
    responses:
      - {match: [all], actions: [log]}
`
	bundle, err := bundles.Build(repoWith(b, logAll), "test", "rev1")
	if err != nil {
		b.Fatal(err)
	}
	c, err := compileRules(bundle)
	if err != nil {
		b.Fatal(err)
	}
	var lines countWriter
	a := New(Options{NodeName: "n", Containers: fakeContainers{"abc": shopFacts}, Registerer: prometheus.NewRegistry(),
		Alerts: io.Discard, Events: &lines})
	a.rules.Store(c)
	startAbc(a)
	feedBatches(b, a, consumeEvents[:3]) // the file events
	if lines != countWriter(b.N) {
		b.Fatalf("%d lines for %d events", lines, b.N)
	}
}

// countWriter counts Write calls: stream lines.
type countWriter int

func (w *countWriter) Write(p []byte) (int, error) { *w++; return len(p), nil }
