package bundles

import (
	"github.com/palisade-dev/palisade/internal/metrics"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
)

// Log keys of the bundle service and client.
const (
	keyCluster  = "cluster"
	keyClusters = "clusters"
	keyChanged  = "changed"
	keyRevision = "revision"
	keyETag     = "etag"
	keyError    = "error"
	keyReason   = "reason"
	keyRemote   = "remote"
	keyPath     = "path"
	keyURL      = "url"
	keySource   = "source"
	keyRetryIn  = "retryIn"
	keyDir      = "dir"
)

// Metric names and label keys.
const (
	metricBundleSize     = "palisade_bundle_size_bytes"
	metricRequests       = "palisade_bundle_requests_total"
	metricActiveRevision = "palisade_active_revision_info"
	metricWaiting        = "palisade_bundle_waiting_requests"
	metricPublish        = "palisade_bundle_publish_duration_seconds"

	metricClientErrors     = "palisade_bundle_client_errors_total"
	metricClientRevision   = "palisade_bundle_client_active_revision_info"
	metricClientActivation = "palisade_bundle_client_activation_duration_seconds"

	labelCluster  = "cluster"
	labelCode     = "code"
	labelRevision = "revision"
	labelReason   = "reason"
)

// unknownCluster labels requests for clusters that are not served, so
// that a client asking for random names cannot grow the label set.
const unknownCluster = ""

type serverMetrics struct {
	size     *prometheus.GaugeVec
	requests *prometheus.CounterVec
	revision *prometheus.GaugeVec
	waiting  *prometheus.GaugeVec
	publish  prometheus.Histogram
}

func newServerMetrics(reg prometheus.Registerer, log *slog.Logger) *serverMetrics {
	m := &serverMetrics{
		size: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: metricBundleSize,
			Help: "Size in bytes of the bundle archive served for each cluster.",
		}, []string{labelCluster}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricRequests,
			Help: "Bundle requests by cluster (empty: not served) and HTTP status code.",
		}, []string{labelCluster, labelCode}),
		revision: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: metricActiveRevision,
			Help: "The revision served for each cluster (value 1).",
		}, []string{labelCluster, labelRevision}),
		waiting: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: metricWaiting,
			Help: "Bundle requests held in a long poll, by cluster.",
		}, []string{labelCluster}),
		publish: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    metricPublish,
			Help:    "Duration of publishing a set of bundles (hashing, signing, serialising).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
	}
	m.size = metrics.Register(reg, log, m.size)
	m.requests = metrics.Register(reg, log, m.requests)
	m.revision = metrics.Register(reg, log, m.revision)
	m.waiting = metrics.Register(reg, log, m.waiting)
	m.publish = metrics.Register(reg, log, m.publish)
	return m
}

type clientMetrics struct {
	errors     *prometheus.CounterVec
	revision   *prometheus.GaugeVec
	activation prometheus.Histogram
}

func newClientMetrics(reg prometheus.Registerer, log *slog.Logger) *clientMetrics {
	m := &clientMetrics{
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricClientErrors,
			Help: "Bundle client failures by reason: unreachable, status, oversized, unsigned, signature, malformed, compile, cache.",
		}, []string{labelReason}),
		revision: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: metricClientRevision,
			Help: "The revision of the bundle the client has active (value 1).",
		}, []string{labelRevision}),
		activation: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    metricClientActivation,
			Help:    "Duration of reading, verifying and compiling a bundle before it becomes active.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
	}
	m.errors = metrics.Register(reg, log, m.errors)
	m.revision = metrics.Register(reg, log, m.revision)
	m.activation = metrics.Register(reg, log, m.activation)
	return m
}
