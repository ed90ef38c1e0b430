package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/palisade-dev/palisade/bundles"
	"github.com/palisade-dev/palisade/policy"
	"github.com/palisade-dev/palisade/sensor"
	"github.com/palisade-dev/palisade/sensor/match"
)

// ruleCount is the "sensor with 100 rules": half file responses,
// half process responses, each with its own selector. Every selector
// holds for every event of its kind (a target path or executable of
// /**), so each event is matched by all 50 rules of its kind: the
// matcher's worst case, not a first-rule-wins shortcut.
const ruleCount = 100

// benchCluster is the cluster the generated policy applies to.
const benchCluster = "bench"

// rulesRepo writes a policy repository with one Policy for benchCluster
// and one RuntimeRuleset of ruleCount log responses into dir, and loads
// it the way the controller does.
func rulesRepo(dir string) (*policy.Repo, error) {
	var fileSel, fileResp, procSel, procResp strings.Builder
	for i := range ruleCount / 2 {
		fmt.Fprintf(&fileSel, "      - name: f%d\n        operation: [createFile, modifyFile, deleteFile, createExecutable, modifyExecutable]\n        targetFilePath: [\"/**\", \"/bench/f%d/**\"]\n", i, i)
		fmt.Fprintf(&fileResp, "      - match: [f%d]\n        actions: [log]\n", i)
		fmt.Fprintf(&procSel, "      - name: p%d\n        operation: [fork, exec]\n        processExecutable: [\"/**\", \"/bench/p%d\"]\n", i, i)
		fmt.Fprintf(&procResp, "      - match: [p%d]\n        actions: [log]\n", i)
	}
	rs := "apiVersion: palisade.dev/v1alpha1\nkind: RuntimeRuleset\nmetadata:\n  name: bench_rules\nspec:\n  mode: enforce\n" +
		"  file:\n    selectors:\n" + fileSel.String() + "    responses:\n" + fileResp.String() +
		"  process:\n    selectors:\n" + procSel.String() + "    responses:\n" + procResp.String()
	return oneRulesetRepo(dir, "bench_rules", rs)
}

// logAllRepo writes a policy repository for benchCluster whose one
// ruleset logs every event, file and process, with one rule each: every
// event the pipeline decides becomes one line of the event stream.
func logAllRepo(dir string) (*policy.Repo, error) {
	const rs = `apiVersion: palisade.dev/v1alpha1
kind: RuntimeRuleset
metadata:
  name: log_all
spec:
  mode: enforce
  file:
    selectors:
      - name: files
        operation: [createFile, modifyFile, deleteFile, createExecutable, modifyExecutable]
        targetFilePath: ["/**"]
    responses:
      - match: [files]
        actions: [log]
  process:
    selectors:
      - name: procs
        operation: [fork, exec]
        processExecutable: ["/**"]
    responses:
      - match: [procs]
        actions: [log]
`
	return oneRulesetRepo(dir, "log_all", rs)
}

// oneRulesetRepo writes a policy repository into dir whose one Policy
// applies the RuntimeRuleset name (its YAML in ruleset) cluster-wide in
// benchCluster, and loads it the way the controller does.
func oneRulesetRepo(dir, name, ruleset string) (*policy.Repo, error) {
	pol := "apiVersion: palisade.dev/v1alpha1\nkind: Policy\nmetadata:\n  name: bench\nspec:\n  clusters: [" + benchCluster +
		"]\n  clusterWide:\n    runtime:\n      rulesets: [" + name + "]\n"
	for file, body := range map[string]string{"clusters/bench.yaml": pol, "rulesets/" + name + ".yaml": ruleset} {
		p := filepath.Join(dir, file)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			return nil, err
		}
	}
	return policy.LoadDir(dir)
}

// deciders are the native matcher and the Rego engine of one bundle,
// built exactly as the sensor and the bundle service build them.
type deciders struct {
	matcher *match.Matcher
	engine  *bundles.Engine
}

func newDeciders(repo *policy.Repo, cluster string) (deciders, error) {
	b, err := bundles.Build(repo, cluster, "bench")
	if err != nil {
		return deciders{}, fmt.Errorf("build bundle: %w", err)
	}
	m, err := match.FromBundle(b)
	if err != nil {
		return deciders{}, fmt.Errorf("compile matcher: %w", err)
	}
	e, err := bundles.NewEngine(context.Background(), b)
	if err != nil {
		return deciders{}, fmt.Errorf("compile engine: %w", err)
	}
	return deciders{matcher: m, engine: e}, nil
}

// benchContainer is the selector facts of the bench container: the
// pod informer is not part of what is measured here.
var benchContainer = &bundles.Container{
	ImageFullName: "docker.io/library/busybox",
	ImageName:     "busybox",
	ImageTag:      "1.36",
	Namespace:     "bench",
	PodName:       "bench-0",
	PodLabels:     map[string]string{"app": "bench"},
	ClusterName:   benchCluster,
}

// runtimeEvent turns a kernel event into the matcher's input. A file
// event does not carry the acting process's executable, only its name.
func runtimeEvent(ev *sensor.Event) bundles.RuntimeEvent {
	re := bundles.RuntimeEvent{
		Kind:        bundles.EventFile,
		Operation:   ev.Op.String(),
		Path:        ev.Path,
		ProcessName: ev.Comm,
		Interactive: ev.Interactive,
	}
	if ev.Op == sensor.OpExec || ev.Op == sensor.OpFork {
		re.Kind = bundles.EventProcess
		re.ProcessExecutable = ev.Path
	}
	return re
}

// matchResult is native against Rego on the same events.
type matchResult struct {
	Events           int
	NativeNs, RegoNs float64
}

// compareMatch decides events with both deciders for about d each, after
// checking that they agree on every one: a fast matcher that decided
// differently would make the ratio meaningless.
func compareMatch(ds deciders, events []bundles.RuntimeEvent, d time.Duration) (matchResult, error) {
	if len(events) == 0 {
		return matchResult{}, fmt.Errorf("no events to decide")
	}
	ctx := context.Background()
	for i := range events {
		want, err := ds.engine.Runtime(ctx, &events[i], benchContainer)
		if err != nil {
			return matchResult{}, fmt.Errorf("rego decision: %w", err)
		}
		if got := ds.matcher.Match(&events[i], benchContainer); !reflect.DeepEqual(got, *want) {
			return matchResult{}, fmt.Errorf("native and Rego differ on %+v", events[i])
		}
	}
	// Timed as the agent decides: into one decision it reuses.
	var nd bundles.RuntimeDecision
	native := perCall(d, 1024, func(i int) error {
		ds.matcher.MatchInto(&nd, &events[i%len(events)], benchContainer)
		return nil
	})
	rego := perCall(d, 8, func(i int) error {
		_, err := ds.engine.Runtime(ctx, &events[i%len(events)], benchContainer)
		return err
	})
	if rego < 0 {
		return matchResult{}, fmt.Errorf("rego decision failed while timing")
	}
	return matchResult{Events: len(events), NativeNs: native, RegoNs: rego}, nil
}

// perCall calls f in batches of batch until d has passed and returns
// nanoseconds per call; the clock is read once per batch so that it does
// not weigh on a call of a few hundred nanoseconds. It stops at f's first
// error and returns -1.
func perCall(d time.Duration, batch int, f func(int) error) float64 {
	start := time.Now()
	n := 0
	for time.Since(start) < d {
		for range batch {
			if f(n) != nil {
				return -1
			}
			n++
		}
	}
	return float64(time.Since(start).Nanoseconds()) / float64(n)
}
