package bundles_test

import (
	"context"
	"reflect"
	"sync"
	"testing"

	"github.com/palisade-dev/palisade/bundles"
	"github.com/palisade-dev/palisade/policy"
)

func webContainer(namespace string, labels map[string]string) *bundles.Container {
	return &bundles.Container{
		ImageFullName: "ghcr.io/acme/web", ImageName: "acme/web", ImageTag: "1.0",
		Namespace: namespace, PodName: "web-1", PodLabels: labels, ClusterName: "prod",
	}
}

func inWorkload(c *bundles.Container, workload, container string) *bundles.Container {
	c.Workload, c.ContainerName = workload, container
	return c
}

// TestRuntimeDecisions runs on the engine of every test (check mode,
// where topdown is prepared with the engine) and on one in IR mode, made
// as a serving process makes it from the bundle server's bytes, which
// drops topdown's queries and its modules' syntax trees and makes them
// again on the first runtime decision.
func TestRuntimeDecisions(t *testing.T) {
	check := mustEngine(t, prodEngine)
	t.Setenv(bundles.EvaluatorEnv, bundles.EvaluatorIR)
	ir := mustEngine(t, func() (*bundles.Engine, error) {
		repo, err := policy.LoadDir(examplesDir)
		if err != nil {
			return nil, err
		}
		built, err := bundles.Build(repo, "prod", "test")
		if err != nil {
			return nil, err
		}
		raw, err := bundles.Bytes(built)
		if err != nil {
			return nil, err
		}
		b, err := bundles.Read(raw, nil, 0)
		if err != nil {
			return nil, err
		}
		return bundles.NewEngine(context.Background(), b)
	})
	if ir.Evaluator() != bundles.EvaluatorIR {
		t.Fatalf("evaluator %s, want %s", ir.Evaluator(), bundles.EvaluatorIR)
	}
	for _, m := range ir.Bundle().Modules {
		if m.Parsed != nil || len(m.Raw) == 0 {
			t.Fatalf("module %s: parsed %v, %d bytes of source; want the source only", m.Path, m.Parsed != nil, len(m.Raw))
		}
	}
	payments := webContainer("payments", map[string]string{"app": "payments-api"})
	alertBlock := []string{"alert", "block"}
	tests := []struct {
		name      string
		event     bundles.RuntimeEvent
		container *bundles.Container
		want      bundles.RuntimeDecision
	}{
		{
			name:      "new executable outside /tmp is blocked (drift prevention)",
			event:     bundles.RuntimeEvent{Kind: bundles.EventFile, Operation: "createExecutable", Path: "/usr/local/bin/miner"},
			container: webContainer("shop", nil),
			want: bundles.RuntimeDecision{Actions: alertBlock, Matches: []bundles.RuntimeMatch{
				{Ruleset: "baseline_runtime", Response: 0, Mode: "enforce", Actions: alertBlock, Selectors: []string{"new_executables"}},
			}},
		},
		{
			name:      "new executable under /tmp is excluded",
			event:     bundles.RuntimeEvent{Kind: bundles.EventFile, Operation: "createExecutable", Path: "/tmp/build/a.out"},
			container: webContainer("shop", nil),
		},
		{
			name:      "write to a system binary is blocked",
			event:     bundles.RuntimeEvent{Kind: bundles.EventFile, Operation: "modifyFile", Path: "/usr/bin/ls"},
			container: webContainer("shop", nil),
			want: bundles.RuntimeDecision{Actions: alertBlock, Matches: []bundles.RuntimeMatch{
				{Ruleset: "baseline_runtime", Response: 1, Mode: "enforce", Actions: alertBlock, Selectors: []string{"system_binaries"}},
			}},
		},
		{
			name:      "interactive shell alerts",
			event:     bundles.RuntimeEvent{Kind: bundles.EventProcess, Operation: "exec", Path: "/bin/bash", ProcessExecutable: "/bin/bash", ProcessName: "bash", Interactive: true},
			container: webContainer("shop", nil),
			want: bundles.RuntimeDecision{Actions: []string{"alert"}, Matches: []bundles.RuntimeMatch{
				{Ruleset: "baseline_runtime", Response: 0, Mode: "enforce", Actions: []string{"alert"}, Selectors: []string{"interactive_shells"}},
			}},
		},
		{
			name:      "payments exec of another binary is observed in learning mode, not alerted",
			event:     bundles.RuntimeEvent{Kind: bundles.EventProcess, Operation: "exec", Path: "/bin/cat", ProcessExecutable: "/bin/cat", ProcessName: "cat"},
			container: payments,
			want: bundles.RuntimeDecision{Observe: true, Matches: []bundles.RuntimeMatch{
				{Ruleset: "payments_runtime", Response: 0, Mode: "learning", Selectors: []string{"payments_api"}},
			}},
		},
		{
			name:      "payments own binary is excluded",
			event:     bundles.RuntimeEvent{Kind: bundles.EventProcess, Operation: "exec", Path: "/app/payments-api", ProcessExecutable: "/app/payments-api", ProcessName: "payments-api"},
			container: payments,
		},
		{
			name:      "payments ruleset does not apply outside the payments definition",
			event:     bundles.RuntimeEvent{Kind: bundles.EventProcess, Operation: "exec", Path: "/bin/cat", ProcessExecutable: "/bin/cat", ProcessName: "cat"},
			container: webContainer("shop", map[string]string{"app": "payments-api"}),
		},
		{
			// policies-example/learned/baseline_runtime.yaml: the web
			// Deployment's app container may write its plugins.
			name:      "learned plugin of the web Deployment's app container is excluded",
			event:     bundles.RuntimeEvent{Kind: bundles.EventFile, Operation: "createExecutable", Path: "/app/plugins/gzip.so"},
			container: inWorkload(webContainer("shop", nil), "Deployment/web", "app"),
		},
		{
			name:      "learned plugin path in another workload is still blocked",
			event:     bundles.RuntimeEvent{Kind: bundles.EventFile, Operation: "createExecutable", Path: "/app/plugins/gzip.so"},
			container: inWorkload(webContainer("shop", nil), "Deployment/api", "app"),
			want: bundles.RuntimeDecision{Actions: alertBlock, Matches: []bundles.RuntimeMatch{
				{Ruleset: "baseline_runtime", Response: 0, Mode: "enforce", Actions: alertBlock, Selectors: []string{"new_executables"}},
			}},
		},
		{
			name:      "learned plugin path in another container of the workload is still blocked",
			event:     bundles.RuntimeEvent{Kind: bundles.EventFile, Operation: "createExecutable", Path: "/app/plugins/gzip.so"},
			container: inWorkload(webContainer("shop", nil), "Deployment/web", "sidecar"),
			want: bundles.RuntimeDecision{Actions: alertBlock, Matches: []bundles.RuntimeMatch{
				{Ruleset: "baseline_runtime", Response: 0, Mode: "enforce", Actions: alertBlock, Selectors: []string{"new_executables"}},
			}},
		},
		{
			name:  "host process is never matched",
			event: bundles.RuntimeEvent{Kind: bundles.EventFile, Operation: "modifyFile", Path: "/usr/bin/ls"},
		},
	}
	// The IR engine's first runtime decisions come at once: one
	// preparation serves them all (under -race, without a race).
	var wg sync.WaitGroup
	for _, tt := range tests {
		wg.Go(func() {
			if _, err := ir.Runtime(context.Background(), &tt.event, tt.container); err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
		})
	}
	wg.Wait()
	for _, e := range []struct {
		name string
		eng  *bundles.Engine
	}{{"check", check}, {"ir", ir}} {
		for _, tt := range tests {
			t.Run(e.name+"/"+tt.name, func(t *testing.T) {
				got, err := e.eng.Runtime(context.Background(), &tt.event, tt.container)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(*got, tt.want) {
					t.Errorf("got %+v, want %+v", *got, tt.want)
				}
			})
		}
	}
}

func BenchmarkRuntimeDecision(b *testing.B) {
	e, err := prodEngine()
	if err != nil {
		b.Fatal(err)
	}
	ev := &bundles.RuntimeEvent{Kind: bundles.EventFile, Operation: "modifyFile", Path: "/usr/bin/ls", ProcessExecutable: "/bin/sh", ProcessName: "sh"}
	c := webContainer("payments", map[string]string{"app": "payments-api"})
	ctx := context.Background()
	for b.Loop() {
		if _, err := e.Runtime(ctx, ev, c); err != nil {
			b.Fatal(err)
		}
	}
}
