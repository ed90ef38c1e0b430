// Package metrics holds how Palisade registers its Prometheus collectors:
// never fatally, and shared when a second instance in the same process
// registers the same metric.
package metrics

import (
	"errors"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers c with reg (nil: no metrics, c stays unregistered).
// A collector registered before under the same name (a second server,
// client or handler in one process) is shared; any other failure is
// logged and c stays unregistered, so metrics never stop a component
// from serving.
func Register[C prometheus.Collector](reg prometheus.Registerer, log *slog.Logger, c C) C {
	if reg == nil {
		return c
	}
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	if err != nil {
		log.Error("metric not registered", "error", err.Error())
	}
	return c
}
