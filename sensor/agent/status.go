package agent

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"sort"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/palisade-dev/palisade/internal/metrics"
	"github.com/palisade-dev/palisade/sensor"
	"github.com/palisade-dev/palisade/sensor/enforce"
)

// Unenforced is a block response this node does not enforce.
type Unenforced struct {
	Ruleset   string `json:"ruleset"`
	Operation string `json:"operation"`
	Reason    string `json:"reason"`
	// Count is how many events this block matched and no backend
	// blocked.
	Count uint64 `json:"count"`
}

// Status is the /status document.
type Status struct {
	Node     string           `json:"node"`
	Features enforce.Features `json:"features"`
	// Backends names, per operation, the backends that block it on this
	// node ("exec-kill+fanotify": exact paths by the first, patterns by
	// the second), or "cannot block on this node: <reason>".
	Backends map[string]string `json:"backends"`
	// Containers lists, per watched container, which backend enforces
	// which operation of the rules that apply to it.
	Containers []ContainerStatus `json:"containers"`
	Revision   string            `json:"revision"`
	Matcher    string            `json:"matcher"` // native or rego
	Watched    int               `json:"watchedContainers"`
	Events     uint64            `json:"events"`
	Drops      uint64            `json:"drops"`
	Alerts     uint64            `json:"alerts"`
	// Blocks counts operations blocked, all backends; BlockedBy per
	// backend.
	Blocks     uint64            `json:"blocks"`
	BlockedBy  map[string]uint64 `json:"blockedBy"`
	Observed   uint64            `json:"observations"`
	UnknownOps uint64            `json:"unknownOperations"`
	Unenforced []Unenforced      `json:"unenforcedBlocks"`
	Wiring     map[string]string `json:"wiring"`
}

// ContainerStatus is one watched container's enforcement.
type ContainerStatus struct {
	ID        string            `json:"id"`
	Namespace string            `json:"namespace"`
	Pod       string            `json:"pod"`
	Container string            `json:"container"`
	Enforced  map[string]string `json:"enforced"` // operation → backend
	// FanotifyRoot is the marked root mount, "" when not marked.
	FanotifyRoot string `json:"fanotifyRoot,omitempty"`
}

// wiring says what each backend is given, for operators reading /status.
var wiring = map[string]string{
	enforce.BackendLSM:      "exec, write (createFile, modifyFile) and deleteFile rules on exact paths or trailing /** prefixes, per container cgroup; drift prevention for createExecutable/modifyExecutable",
	enforce.BackendExecKill: "exec rules whose processExecutable is an exact path, per container cgroup, when the node has no BPF LSM (SIGKILL after the exec)",
	enforce.BackendFanotify: "open-for-write (createFile, modifyFile) and exec of containers a routed block applies to, decided by the native matcher; EPERM before the operation",
}

// Status returns the agent's state.
func (a *Agent) Status() Status {
	s := Status{
		Node: a.node, Features: a.opts.Features, Backends: a.BackendSummary(), Matcher: "rego", Revision: a.Revision(),
		Events: a.eventCount.Load(), Drops: a.drops(), Alerts: a.alertCount.Load(), BlockedBy: a.blockedBy(),
		Observed: a.observations.Load(), UnknownOps: a.unknownOps.Load(), Unenforced: []Unenforced{},
		Containers: []ContainerStatus{}, Wiring: wiring,
	}
	for _, n := range s.BlockedBy {
		s.Blocks += n
	}
	if r := a.rules.Load(); r != nil && r.revision == s.Revision {
		s.Matcher = "native"
	}
	a.mu.RLock()
	s.Watched = len(a.containers)
	for _, u := range a.unenforced {
		s.Unenforced = append(s.Unenforced, *u)
	}
	for _, w := range a.containers {
		cs := ContainerStatus{ID: w.id, Container: w.container, Enforced: map[string]string{}, FanotifyRoot: w.fanRoot}
		if w.facts != nil {
			cs.Namespace, cs.Pod = w.facts.Namespace, w.facts.PodName
		}
		for op, b := range w.covered {
			cs.Enforced[op] = b
		}
		s.Containers = append(s.Containers, cs)
	}
	a.mu.RUnlock()
	sort.Slice(s.Unenforced, func(i, j int) bool {
		x, y := s.Unenforced[i], s.Unenforced[j]
		return x.Ruleset+"\x00"+x.Operation < y.Ruleset+"\x00"+y.Operation
	})
	sort.Slice(s.Containers, func(i, j int) bool { return s.Containers[i].ID < s.Containers[j].ID })
	return s
}

// StatusHandler serves Status as JSON (GET /status).
func (a *Agent) StatusHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(a.Status())
	})
}

func (a *Agent) drops() uint64 {
	if a.watcher == nil {
		return 0
	}
	n, _ := a.watcher.Drops()
	return n
}

// lsmDenials reads the LSM's denial counters, when it is loaded.
type lsmCounters interface {
	Denials() (enforce.LSMDenials, error)
}

// blockedBy counts blocked operations per backend.
func (a *Agent) blockedBy() map[string]uint64 {
	out := map[string]uint64{
		enforce.BackendExecKill: a.killed.Load(),
		enforce.BackendFanotify: a.fanDenied.Load(),
	}
	a.mu.RLock()
	l, ok := a.backends.LSM.(lsmCounters)
	a.mu.RUnlock()
	if ok {
		if d, err := l.Denials(); err == nil {
			out[enforce.BackendLSM] = d.Exec + d.Write + d.Delete + d.Chmod + d.Drift
		}
	}
	return out
}

// agentMetrics are the palisade_sensor_* series.
type agentMetrics struct {
	events *prometheus.CounterVec
	alerts prometheus.Counter
	match  prometheus.Histogram
	// byOp caches events' child counter of each operation package
	// sensor knows (by its number): WithLabelValues hashes the label
	// and takes a lock, too much for every event.
	byOp *[16]atomic.Pointer[counter]
}

type counter struct{ prometheus.Counter }

// countEvent adds an event of op (named name) to palisade_sensor_events_total.
func (m *agentMetrics) countEvent(op sensor.Op, name string) {
	if int(op) >= len(m.byOp) {
		m.events.WithLabelValues(name).Inc()
		return
	}
	c := m.byOp[op].Load()
	if c == nil {
		// Racing stores hold the same child: the vector keeps one per label.
		c = &counter{m.events.WithLabelValues(name)}
		m.byOp[op].Store(c)
	}
	c.Inc()
}

func newMetrics(a *Agent, reg prometheus.Registerer, log *slog.Logger) agentMetrics {
	m := agentMetrics{
		byOp: new([16]atomic.Pointer[counter]),
		events: metrics.Register(reg, log, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "palisade_sensor_events_total", Help: "Events from watched containers, by operation.",
		}, []string{"operation"})),
		alerts: metrics.Register(reg, log, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "palisade_sensor_alerts_total", Help: "Events that matched an alert response.",
		})),
		match: metrics.Register(reg, log, prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "palisade_sensor_match_seconds", Help: "Time to decide on one event (one event in 16 is timed).",
			Buckets: prometheus.ExponentialBuckets(1e-7, 4, 10),
		})),
	}
	metrics.Register(reg, log, prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "palisade_sensor_drops_total", Help: "Events the kernel dropped because the ring buffer was full.",
	}, func() float64 { return float64(a.drops()) }))
	metrics.Register(reg, log, prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "palisade_sensor_observations_total", Help: "Events a learning ruleset observed.",
	}, func() float64 { return float64(a.observations.Load()) }))
	metrics.Register(reg, log, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "palisade_sensor_unenforced_blocks", Help: "Block responses (ruleset and operation) of the active revision this node does not enforce.",
	}, func() float64 {
		a.mu.RLock()
		defer a.mu.RUnlock()
		return float64(len(a.unenforced))
	}))
	metrics.Register(reg, log, &blockedCollector{a: a, desc: prometheus.NewDesc("palisade_sensor_blocked_total",
		"Operations blocked, by backend.", []string{"backend"}, nil)})
	return m
}

// blockedCollector reads the per-backend block counts when scraped (the
// LSM's are kernel counters).
type blockedCollector struct {
	a    *Agent
	desc *prometheus.Desc
}

func (c *blockedCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *blockedCollector) Collect(ch chan<- prometheus.Metric) {
	for b, n := range c.a.blockedBy() {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(n), b)
	}
}
