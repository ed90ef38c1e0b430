package learning

import (
	"cmp"
	"crypto/rand"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/palisade-dev/palisade/internal/metrics"
)

// DefaultMaxKeys bounds the distinct behaviours an Aggregator holds
// between two flushes. A workload in learning mode repeats a small set of
// behaviours; thousands of new keys in one interval is a workload writing
// unique file names, whose generalisation needs far fewer samples.
const DefaultMaxKeys = 8192

// aggBatchBudget bounds the JSON size of a batch's observations (an
// upper bound, aggEntrySize) below the controller's MaxBatchBytes, so
// that a full batch is never refused as too large.
const (
	aggBatchBudget   = MaxBatchBytes * 3 / 4
	aggEntryOverhead = 400 // field names, punctuation, two RFC 3339 times, a count
)

// Event is one behaviour a sensor observed for the learning rulesets
// named in Rulesets (each ruleset gets an Observed of its own).
type Event struct {
	Rulesets []string
	Workload WorkloadID
	Pod      string
	Key      Key
	// Time is when the behaviour happened; zero means now.
	Time time.Time
}

// AggregatorOptions configure an Aggregator. The zero value is usable.
type AggregatorOptions struct {
	// MaxKeys bounds the distinct (ruleset, workload, key) entries of one
	// batch, and their estimated JSON size is kept under 3 MiB (the
	// controller accepts MaxBatchBytes); an event that would add one more
	// is dropped and counted
	// (Dropped, the palisade_learning_observations_dropped_total metric,
	// a warning at the next Flush). A repeated behaviour is summarised
	// again in a later batch, so a drop delays learning it rather than
	// losing it. 0 means DefaultMaxKeys.
	MaxKeys int
	// BootID names this run of the sensor in batch ids; empty means a
	// random UUID, so that a restarted sensor, whose sequence numbers
	// start again at 1, never reuses an id the controller has applied.
	BootID string
	// Registerer, when not nil, receives the aggregator's metrics.
	Registerer prometheus.Registerer
	// Log receives the dropped-observations warning; nil means
	// slog.Default().
	Log *slog.Logger
}

// aggKey is what one batch entry summarises. Every field is a string or
// a bool, so the struct is a map key without building a string per event.
type aggKey struct {
	ruleset  string
	workload WorkloadID
	key      Key
}

// Aggregator summarises the events of a node's learning rulesets between
// two flushes: one Observed per (ruleset, workload, key) with its count,
// first and last time and sample pods. Add is safe for concurrent use and
// costs a map update under a mutex, so it can be called from the sensor's
// event path.
type Aggregator struct {
	node    string
	boot    string
	maxKeys int
	log     *slog.Logger

	mu       sync.Mutex
	entries  map[aggKey]*Evidence
	bytes    int // estimated JSON size of entries
	seq      uint64
	dropped  uint64 // since the last Flush
	total    uint64 // dropped since NewAggregator
	mDropped prometheus.Counter
	mEvents  prometheus.Counter
}

// Metric names of the sensor side.
const (
	metricObservationsDropped = "palisade_learning_observations_dropped_total"
	metricObservationEvents   = "palisade_learning_observation_events_total"
	metricBatchesSent         = "palisade_learning_batches_sent_total"
	metricBatchesDropped      = "palisade_learning_batches_dropped_total"
	metricBatchesQueued       = "palisade_learning_batches_queued"
	metricBatchesReceived     = "palisade_learning_batches_received_total"
	labelReason               = "reason"
	labelResult               = "result"
)

// NewAggregator returns an Aggregator for node's events.
func NewAggregator(node string, opts AggregatorOptions) *Aggregator {
	if opts.MaxKeys <= 0 {
		opts.MaxKeys = DefaultMaxKeys
	}
	if opts.BootID == "" {
		opts.BootID = learningRandomUUID()
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	a := &Aggregator{
		node:    node,
		boot:    opts.BootID,
		maxKeys: opts.MaxKeys,
		log:     opts.Log,
		entries: make(map[aggKey]*Evidence),
		mDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: metricObservationsDropped,
			Help: "Learning observations dropped because a batch held its maximum of distinct behaviours.",
		}),
		mEvents: prometheus.NewCounter(prometheus.CounterOpts{
			Name: metricObservationEvents,
			Help: "Events observed for learning rulesets, counted once per ruleset.",
		}),
	}
	a.mDropped = metrics.Register(opts.Registerer, opts.Log, a.mDropped)
	a.mEvents = metrics.Register(opts.Registerer, opts.Log, a.mEvents)
	return a
}

// BootID is the run id in this aggregator's batch ids.
func (a *Aggregator) BootID() string { return a.boot }

// Dropped is how many observations were dropped since NewAggregator
// because a batch was full.
func (a *Aggregator) Dropped() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.total
}

// Add counts ev once for each of its rulesets.
func (a *Aggregator) Add(ev Event) {
	if len(ev.Rulesets) == 0 {
		return
	}
	t := ev.Time
	if t.IsZero() {
		t = time.Now()
	}
	var dropped int
	a.mu.Lock()
	for _, rs := range ev.Rulesets {
		k := aggKey{ruleset: rs, workload: ev.Workload, key: ev.Key}
		e, ok := a.entries[k]
		if !ok {
			size := aggEntrySize(rs, &ev)
			if len(a.entries) >= a.maxKeys || a.bytes+size > aggBatchBudget {
				dropped++
				continue
			}
			e = &Evidence{FirstSeen: t, LastSeen: t, Pods: make([]string, 0, MaxSamplePods)}
			a.entries[k] = e
			a.bytes += size
		}
		e.Count++
		if t.Before(e.FirstSeen) {
			e.FirstSeen = t
		}
		if t.After(e.LastSeen) {
			e.LastSeen = t
		}
		if ev.Pod != "" {
			e.Pods = addSamplePod(e.Pods, ev.Pod)
		}
	}
	a.dropped += uint64(dropped)
	a.total += uint64(dropped)
	a.mu.Unlock()
	a.mEvents.Add(float64(len(ev.Rulesets) - dropped))
	if dropped > 0 {
		a.mDropped.Add(float64(dropped))
	}
}

// aggEntrySize bounds the JSON size of ev's entry in ruleset rs from
// above, counting MaxSamplePods pods as long as ev's.
func aggEntrySize(rs string, ev *Event) int {
	w, k := &ev.Workload, &ev.Key
	n := aggEntryOverhead + MaxSamplePods*(aggJSONLen(ev.Pod)+3)
	for _, s := range [...]string{rs, w.Namespace, w.Workload, w.Container, w.Image, w.Digest, k.Kind, k.Operation, k.Path, k.ProcessName} {
		n += aggJSONLen(s)
	}
	return n
}

// aggJSONLen bounds the length of s encoded as a JSON string by
// encoding/json: control characters and <, >, & become \u00XX, '"' and
// '\\' are escaped, an invalid UTF-8 byte becomes \ufffd, U+2028 and
// U+2029 become \u2028: at most 6 bytes for any byte.
func aggJSONLen(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c >= 0x80 || c == '<' || c == '>' || c == '&':
			n += 6
		case c == '"' || c == '\\':
			n += 2
		default:
			n++
		}
	}
	return n
}

// addSamplePod adds pod to pods (sorted, at most MaxSamplePods): the
// lexicographically first names are kept, so that the sample does not
// depend on the order batches are merged in.
func addSamplePod(pods []string, pod string) []string {
	i, found := slices.BinarySearch(pods, pod)
	if found {
		return pods
	}
	if len(pods) < MaxSamplePods {
		return slices.Insert(pods, i, pod)
	}
	if i >= MaxSamplePods {
		return pods
	}
	copy(pods[i+1:], pods[i:MaxSamplePods-1])
	pods[i] = pod
	return pods
}

// Flush returns the observations summarised since the last Flush as a
// batch with the next sequence number, or nil when there are none.
// Observations are sorted (ruleset, workload key, key) so a batch's JSON
// is deterministic.
func (a *Aggregator) Flush() *Batch {
	a.mu.Lock()
	entries, dropped := a.entries, a.dropped
	if len(entries) == 0 {
		a.dropped = 0
		a.mu.Unlock()
		if dropped > 0 {
			a.log.Warn("learning observations dropped", "dropped", dropped, "maxKeys", a.maxKeys)
		}
		return nil
	}
	a.entries = make(map[aggKey]*Evidence, len(entries))
	a.bytes = 0
	a.dropped = 0
	a.seq++
	seq := a.seq
	a.mu.Unlock()

	if dropped > 0 {
		a.log.Warn("learning observations dropped", "dropped", dropped, "maxKeys", a.maxKeys)
	}
	b := &Batch{
		ID:           a.node + "/" + a.boot + "/" + strconv.FormatUint(seq, 10),
		Node:         a.node,
		Sent:         time.Now().UTC(),
		Observations: make([]Observed, 0, len(entries)),
	}
	for k, e := range entries {
		b.Observations = append(b.Observations, Observed{Ruleset: k.ruleset, Workload: k.workload, Key: k.key, Evidence: *e})
	}
	slices.SortFunc(b.Observations, transportObservedOrder)
	return b
}

func transportObservedOrder(x, y Observed) int {
	return cmp.Or(
		cmp.Compare(x.Ruleset, y.Ruleset),
		cmp.Compare(WorkloadKey(x.Workload), WorkloadKey(y.Workload)),
		cmp.Compare(x.Workload.Image, y.Workload.Image),
		cmp.Compare(x.Workload.Digest, y.Workload.Digest),
		transportKeyOrder(x.Key, y.Key),
	)
}

// transportKeyOrder orders behaviours as WorkloadProfile.Behaviour is sorted:
// Kind, Operation, Path, Interactive, then ProcessName so the order is
// total.
func transportKeyOrder(x, y Key) int {
	return cmp.Or(
		cmp.Compare(x.Kind, y.Kind),
		cmp.Compare(x.Operation, y.Operation),
		cmp.Compare(x.Path, y.Path),
		transportBoolOrder(x.Interactive, y.Interactive),
		cmp.Compare(x.ProcessName, y.ProcessName),
	)
}

func transportBoolOrder(x, y bool) int {
	switch {
	case x == y:
		return 0
	case !x:
		return -1
	default:
		return 1
	}
}

// learningRandomUUID is a random (version 4) UUID.
func learningRandomUUID() string {
	var u [16]byte
	_, _ = rand.Read(u[:]) // crypto/rand.Read never fails on Linux
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:])
}
