package admission

import (
	promreg "github.com/palisade-dev/palisade/internal/metrics"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
)

// Log keys of the webhook.
const (
	keyUID         = "uid"
	keyNamespace   = "namespace"
	keyKind        = "kind"
	keyName        = "name"
	keyOperation   = "operation"
	keySubResource = "subResource"
	keyUser        = "user"
	keyDryRun      = "dryRun"
	keyRevision    = "revision"
	keyAllowed     = "allowed"
	keyDecision    = "decision"
	keyViolations  = "violations"
	keyLatency     = "latencySeconds"
	keyCode        = "code"
	keyReason      = "reason"
	keyRemote      = "remote"
	keyError       = "error"
	keyFile        = "file"
	keySecret      = "secret"
	keyWebhook     = "webhook"
	keyNotAfter    = "notAfter"
	keyRetryIn     = "retryIn"
)

// Metric names and label keys.
const (
	MetricDuration   = "palisade_admission_duration_seconds"
	MetricViolations = "palisade_admission_violations_total"
	MetricRequests   = "palisade_admission_requests_total"

	LabelOperation = "operation"
	LabelDecision  = "decision"
	LabelRule      = "rule"
	LabelAction    = "action"
	LabelCode      = "code"
)

// Values of the decision label (and of the decision log's decision key).
const (
	DecisionAllowed = "allowed"
	DecisionDenied  = "denied"
	// DecisionError: no decision could be made (no active bundle, or the
	// evaluation failed); the request was answered per Options.FailOpen.
	DecisionError = "error"
)

// otherOperation labels operations Kubernetes does not define, so that a
// malicious client cannot grow the label set.
const otherOperation = "other"

type metrics struct {
	duration   *prometheus.HistogramVec
	violations *prometheus.CounterVec
	requests   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, log *slog.Logger) *metrics {
	m := &metrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: MetricDuration,
			Help: "Time from reading an AdmissionReview to writing its response, by operation and decision (allowed, denied, error).",
			// Decisions take around a millisecond; the API server gives up
			// at the webhook's timeout (at most 30 s).
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{LabelOperation, LabelDecision}),
		violations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricViolations,
			Help: "Violations found in admission requests, by rule and effective action (log or block).",
		}, []string{LabelRule, LabelAction}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricRequests,
			Help: "Admission webhook HTTP requests by status code (200: a review was answered).",
		}, []string{LabelCode}),
	}
	m.duration = promreg.Register(reg, log, m.duration)
	m.violations = promreg.Register(reg, log, m.violations)
	m.requests = promreg.Register(reg, log, m.requests)
	return m
}

// operationLabel bounds the operation label to the operations Kubernetes
// defines.
func operationLabel(op string) string {
	switch op {
	case "CREATE", "UPDATE", "DELETE", "CONNECT":
		return op
	}
	return otherOperation
}
