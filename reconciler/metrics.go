package reconciler

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Log keys.
const (
	keyStage    = "stage"
	keyCommit   = "commit"
	keyError    = "error"
	keyClusters = "clusters"
	keyChanged  = "changed"
	keyRef      = "ref"
	keyEvent    = "event"
	keyRemote   = "remote"
)

// Metric names and label keys.
const (
	metricDuration   = "palisade_reconcile_duration_seconds"
	metricErrors     = "palisade_reconcile_errors_total"
	metricRevision   = "palisade_reconcile_revision_info"
	metricWebhooks   = "palisade_reconcile_webhooks_total"
	labelOutcome     = "outcome"
	labelStage       = "stage"
	labelCluster     = "cluster"
	labelRevision    = "revision"
	labelWebhookCode = "code"
)

type metrics struct {
	duration *prometheus.HistogramVec
	errors   *prometheus.CounterVec
	revision *prometheus.GaugeVec
	webhooks *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    metricDuration,
			Help:    "Duration of reconcile passes (fetch to publish), by outcome (success or the failed stage).",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{labelOutcome}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricErrors,
			Help: "Failed reconcile passes, by stage (fetch, verify, validate, build, publish).",
		}, []string{labelStage}),
		revision: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: metricRevision,
			Help: "The revision served for each cluster (value 1).",
		}, []string{labelCluster, labelRevision}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricWebhooks,
			Help: "Push webhook requests, by HTTP status code.",
		}, []string{labelWebhookCode}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.duration, m.errors, m.revision, m.webhooks} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register reconciler metrics: %w", err)
			}
		}
	}
	return m, nil
}

func (m *metrics) setActive(clusters map[string]ClusterStatus) {
	m.revision.Reset()
	for cluster, cs := range clusters {
		m.revision.WithLabelValues(cluster, cs.Revision).Set(1)
	}
}
