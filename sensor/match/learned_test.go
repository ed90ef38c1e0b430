package match_test

import (
	"slices"
	"testing"
	"testing/fstest"

	"github.com/palisade-dev/palisade/bundles"
	"github.com/palisade-dev/palisade/policy"
)

// learnedRepo is a repository whose ruleset alerts on every exec and
// fork and on writes outside /tmp, and whose learned rules allow the
// web Deployment's app container its own executables and its cache.
var learnedRepo = fstest.MapFS{
	"clusters/test.yaml": {Data: []byte(`apiVersion: palisade.dev/v1alpha1
kind: Policy
metadata: {name: test}
spec:
  clusters: [test]
  clusterWide:
    runtime: {rulesets: [shop_runtime]}
`)},
	"rulesets/shop_runtime.yaml": {Data: []byte(`apiVersion: palisade.dev/v1alpha1
kind: RuntimeRuleset
metadata: {name: shop_runtime}
spec:
  mode: enforce
  process:
    selectors:
      - {name: everything, kubernetesNamespace: [shop]}
    responses:
      - {match: [everything], actions: [alert]}
  file:
    selectors:
      - {name: writes, operation: [createFile, modifyFile, createExecutable], targetFilePath: [/**]}
      - {name: tmp, targetFilePath: [/tmp/**]}
    responses:
      - {match: [writes], exclude: [tmp], actions: [alert, block]}
`)},
	"learned/shop_runtime.yaml": {Data: []byte(`apiVersion: palisade.dev/v1alpha1
kind: LearnedRules
metadata: {name: shop_runtime}
spec:
  workloads:
    - namespace: shop
      workload: Deployment/web
      container: app
      process:
        - executable: /usr/sbin/nginx
          interactive: false
          evidence: {count: 10, firstSeen: 2026-12-01T10:00:00Z, lastSeen: 2026-12-02T09:00:00Z}
        - executable: /usr/local/bin/run[1]
          evidence: {count: 2, firstSeen: 2026-12-01T10:00:00Z, lastSeen: 2026-12-02T09:00:00Z}
      file:
        - operation: [createFile, modifyFile]
          path: /var/cache/nginx/**
          evidence: {count: 88, firstSeen: 2026-12-01T10:00:00Z, lastSeen: 2026-12-02T09:00:00Z, distinct: 41}
`)},
}

// A learned workload entry excludes exactly its workload's container's
// events: not another workload's, not another container's of the same
// pods, not another namespace's, not an interactive run of a
// non-interactive executable, not an operation or path it did not learn.
// Rego (the bundle's engine) and the native matcher agree on each.
func TestLearnedRulesExcludeOnlyTheirWorkload(t *testing.T) {
	repo, err := policy.Load(learnedRepo)
	if err != nil {
		t.Fatal(err)
	}
	p := compile(t, repo, "test")
	web := func(change func(c *bundles.Container)) *bundles.Container {
		c := &bundles.Container{ImageFullName: "docker.io/library/nginx", ImageName: "library/nginx", ImageTag: "1.27",
			Namespace: "shop", PodName: "web-7f9c6d5b4-abcde", Workload: "Deployment/web", ContainerName: "app"}
		if change != nil {
			change(c)
		}
		return c
	}
	proc := func(op, exe string, interactive bool) *bundles.RuntimeEvent {
		return &bundles.RuntimeEvent{Kind: bundles.EventProcess, Operation: op, Path: exe, ProcessExecutable: exe,
			ProcessName: exe[len(exe)-3:], Interactive: interactive}
	}
	write := func(op, path string) *bundles.RuntimeEvent {
		return &bundles.RuntimeEvent{Kind: bundles.EventFile, Operation: op, Path: path, ProcessExecutable: "/usr/sbin/nginx", ProcessName: "nginx"}
	}
	for _, tc := range []struct {
		name    string
		ev      *bundles.RuntimeEvent
		c       *bundles.Container
		actions []string // nil: excluded
	}{
		{"learned exec", proc("exec", "/usr/sbin/nginx", false), web(nil), nil},
		{"learned executable forks", proc("fork", "/usr/sbin/nginx", false), web(nil), nil},
		{"learned executable with glob characters, literally", proc("exec", "/usr/local/bin/run[1]", true), web(nil), nil},
		{"the glob it would be, not learned", proc("exec", "/usr/local/bin/run1", false), web(nil), []string{"alert"}},
		{"non-interactive executable run interactively", proc("exec", "/usr/sbin/nginx", true), web(nil), []string{"alert"}},
		{"executable not learned", proc("exec", "/bin/sh", false), web(nil), []string{"alert"}},
		{"another workload", proc("exec", "/usr/sbin/nginx", false), web(func(c *bundles.Container) { c.Workload = "Deployment/api" }), []string{"alert"}},
		{"a workload whose name extends it", proc("exec", "/usr/sbin/nginx", false), web(func(c *bundles.Container) { c.Workload = "Deployment/web-2" }), []string{"alert"}},
		{"same name, other kind", proc("exec", "/usr/sbin/nginx", false), web(func(c *bundles.Container) { c.Workload = "StatefulSet/web" }), []string{"alert"}},
		{"another container of the same pods", proc("exec", "/usr/sbin/nginx", false), web(func(c *bundles.Container) { c.ContainerName = "sidecar" }), []string{"alert"}},
		{"learned write", write("modifyFile", "/var/cache/nginx/a/b"), web(nil), nil},
		{"learned write, another workload", write("modifyFile", "/var/cache/nginx/a/b"), web(func(c *bundles.Container) { c.Workload = "Deployment/api" }), []string{"alert", "block"}},
		{"operation not learned on a learned path", write("createExecutable", "/var/cache/nginx/x"), web(nil), []string{"alert", "block"}},
		{"path not learned", write("createFile", "/etc/nginx/nginx.conf"), web(nil), []string{"alert", "block"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := p.same(t, tc.ev, tc.c)
			if !slices.Equal(d.Actions, tc.actions) {
				t.Errorf("actions %v, want %v (matches %+v)", d.Actions, tc.actions, d.Matches)
			}
		})
	}
	// Another namespace is not the learned workload either: the process
	// rules cover shop only, so a file rule shows it.
	d := p.same(t, write("modifyFile", "/var/cache/nginx/a"), web(func(c *bundles.Container) { c.Namespace = "other" }))
	if !slices.Equal(d.Actions, []string{"alert", "block"}) {
		t.Errorf("learned write in another namespace: actions %v, want [alert block]", d.Actions)
	}
}
