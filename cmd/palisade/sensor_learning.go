package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"

	"github.com/palisade-dev/palisade/learning"
	"github.com/palisade-dev/palisade/sensor/agent"
)

// sensorLearningFlags send learning observations to the controller.
type sensorLearningFlags struct {
	url, tokenFile, caFile string
	interval               time.Duration
}

func (f *sensorLearningFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&f.url, "learning-url", "", "controller URL that learning observations are sent to (empty: observations only go to --observations-file)")
	fl.StringVar(&f.tokenFile, "learning-token-file", "/var/run/secrets/tokens/palisade-learning", "file holding the token presented to the controller (a projected ServiceAccount token, re-read on every send)")
	fl.StringVar(&f.caFile, "learning-ca-file", "", "CA (PEM) of the controller's certificate")
	fl.DurationVar(&f.interval, "learning-interval", 30*time.Second, "how often observations are summarised and sent")
}

// learningSender is the sensor's learning pipeline: an aggregator fed by
// the agent's observer and a sender running until ctx ends (then one
// last flush, so a clean restart loses nothing).
type learningSender struct {
	agg    *learning.Aggregator
	sender *learning.Sender
	every  time.Duration
}

func newLearningSender(f sensorLearningFlags, node string, log *slog.Logger, reg prometheus.Registerer) (*learningSender, error) {
	if f.url == "" {
		return nil, nil
	}
	s, err := learning.NewSender(learning.SenderOptions{URL: f.url, TokenFile: f.tokenFile, CAFile: f.caFile, Registerer: reg, Log: log})
	if err != nil {
		return nil, err
	}
	agg := learning.NewAggregator(node, learning.AggregatorOptions{Registerer: reg, Log: log})
	return &learningSender{agg: agg, sender: s, every: f.interval}, nil
}

func (l *learningSender) run(ctx context.Context) error { return l.sender.Run(ctx, l.agg, l.every) }

// observer turns the agent's observations into the aggregator's events:
// the workload (not the pod) is the identity, the pod is evidence.
func (l *learningSender) observer() agent.Observer {
	return agent.ObserverFunc(func(o agent.Observation) {
		if len(o.Rulesets) == 0 || o.Container == nil {
			return
		}
		l.agg.Add(learning.Event{
			Rulesets: o.Rulesets,
			Workload: learning.WorkloadID{
				Namespace: o.Namespace, Workload: o.Container.Workload, Container: o.ContainerName,
				Image: o.Container.ImageFullName, Digest: o.ImageDigest,
			},
			Pod:  o.Pod,
			Key:  learning.Key{Kind: o.Kind, Operation: o.Operation, Path: o.Path, ProcessName: o.ProcessName, Interactive: o.Interactive},
			Time: o.Time,
		})
	})
}
