package pods

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/palisade-dev/palisade/internal/metrics"
)

// Metric names and label keys.
const (
	metricContainers = "palisade_sensor_pod_containers"
	metricEvents     = "palisade_sensor_container_events_total"
	labelEvent       = "event"
)

type podMetrics struct {
	containers prometheus.Gauge
	events     *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, log *slog.Logger) *podMetrics {
	m := &podMetrics{
		containers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: metricContainers,
			Help: "Containers of this node's pods that have a container id, attributable by Lookup.",
		}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricEvents,
			Help: "Containers of this node seen to start or go, by event (started, gone).",
		}, []string{labelEvent}),
	}
	m.containers = metrics.Register(reg, log, m.containers)
	m.events = metrics.Register(reg, log, m.events)
	return m
}
