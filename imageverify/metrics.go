package imageverify

import (
	"log/slog"

	"github.com/palisade-dev/palisade/internal/metrics"
	"github.com/prometheus/client_golang/prometheus"
)

// Log keys.
const (
	keyImage    = "image"
	keyDigest   = "digest"
	keyAttestor = "attestor"
	keyReason   = "reason"
	keyError    = "error"
)

// Metric names, label keys and values.
const (
	metricDuration       = "palisade_imageverify_duration_seconds"
	metricCache          = "palisade_imageverify_cache_requests_total"
	metricRegistryErrors = "palisade_imageverify_registry_errors_total"

	labelResult    = "result"
	labelCache     = "cache"
	labelOperation = "operation"

	resultHit   = "hit"
	resultMiss  = "miss"
	resultError = "error"

	cacheFacts = "facts"
	cacheTags  = "tags"

	opResolve      = "resolve"
	opSignatures   = "signatures"
	opAttestations = "attestations"
)

type verifierMetrics struct {
	duration       *prometheus.HistogramVec
	cache          *prometheus.CounterVec
	registryErrors *prometheus.CounterVec
}

func newVerifierMetrics(reg prometheus.Registerer, log *slog.Logger) *verifierMetrics {
	m := &verifierMetrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: metricDuration,
			Help: "Duration of gathering one image's facts, by result: hit (served from the cache), miss (registry round trips), error (the registry could not be asked).",
			// From a warm cache hit (microseconds) to the 2 s default budget.
			Buckets: []float64{.0001, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{labelResult}),
		cache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricCache,
			Help: "Cache lookups by cache (facts: by digest and attestors; tags: tag to digest) and result (hit, miss).",
		}, []string{labelCache, labelResult}),
		registryErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricRegistryErrors,
			Help: "Registry failures by operation: resolve (tag to digest), signatures, attestations.",
		}, []string{labelOperation}),
	}
	m.duration = metrics.Register(reg, log, m.duration)
	m.cache = metrics.Register(reg, log, m.cache)
	m.registryErrors = metrics.Register(reg, log, m.registryErrors)
	return m
}
