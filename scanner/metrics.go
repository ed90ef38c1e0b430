package scanner

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	promreg "github.com/palisade-dev/palisade/internal/metrics"
)

// Log keys of the scanner.
const (
	keyNamespace  = "namespace"
	keyPod        = "pod"
	keyRule       = "rule"
	keyAction     = "action"
	keyRevision   = "revision"
	keyContainers = "containers"
	keyError      = "error"
	keyOperation  = "operation"
	keyScope      = "scope"
	keyEvaluated  = "evaluated"
	keyViolations = "violations"
	keyIsolated   = "isolated"
	keyReleased   = "released"
	keyTerminated = "terminated"
	keyHeldBack   = "heldBack"
	keyBudget     = "budget"
	keyErrors     = "errors"
	keyDuration   = "durationSeconds"
	keySchedule   = "schedule"
	keyReport     = "report"
	keyOmitted    = "omitted"
)

// Metric names and label keys.
const (
	MetricDuration   = "palisade_scan_duration_seconds"
	MetricEvaluated  = "palisade_scan_pods_evaluated_total"
	MetricViolations = "palisade_scan_violations_total"
	MetricIsolated   = "palisade_scan_pods_isolated"
	MetricTerminated = "palisade_scan_pods_terminated_total"
	MetricHeldBack   = "palisade_scan_terminations_held_back_total"
	MetricErrors     = "palisade_scan_errors_total"

	LabelRule      = "rule"
	LabelAction    = "action"
	LabelOperation = "operation"
)

// Values of the operation label of MetricErrors: what failed.
const (
	OpEvaluate      = "evaluate"
	OpIsolate       = "isolate" // the pod's isolation label
	OpNetworkPolicy = "networkpolicy"
	OpTerminate     = "terminate"
	OpReport        = "report"
)

type metrics struct {
	duration   prometheus.Histogram
	evaluated  prometheus.Counter
	violations *prometheus.CounterVec
	isolated   prometheus.Gauge
	terminated prometheus.Counter
	heldBack   prometheus.Counter
	errors     *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, log *slog.Logger) *metrics {
	m := &metrics{
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: MetricDuration,
			Help: "Time of one scan: evaluation, actions and reports.",
			// A scan of a few pods takes milliseconds; ten thousand pods
			// take seconds per core, plus the API calls of the actions.
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300},
		}),
		evaluated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: MetricEvaluated,
			Help: "Pods evaluated against the continuous rules.",
		}),
		violations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricViolations,
			Help: "Violations found by scans, by rule and effective action (log, isolate or terminate).",
		}, []string{LabelRule, LabelAction}),
		isolated: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: MetricIsolated,
			Help: "Pods carrying the isolation label after the last scan.",
		}),
		terminated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: MetricTerminated,
			Help: "Pods deleted by terminate actions.",
		}),
		heldBack: prometheus.NewCounter(prometheus.CounterOpts{
			Name: MetricHeldBack,
			Help: "Terminations not carried out because the namespace's per-scan budget was spent.",
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricErrors,
			Help: "Scan failures by operation (evaluate, isolate, networkpolicy, terminate, report).",
		}, []string{LabelOperation}),
	}
	m.duration = promreg.Register(reg, log, m.duration)
	m.evaluated = promreg.Register(reg, log, m.evaluated)
	m.violations = promreg.Register(reg, log, m.violations)
	m.isolated = promreg.Register(reg, log, m.isolated)
	m.terminated = promreg.Register(reg, log, m.terminated)
	m.heldBack = promreg.Register(reg, log, m.heldBack)
	m.errors = promreg.Register(reg, log, m.errors)
	return m
}
