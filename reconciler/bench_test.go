package reconciler_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"

	"github.com/open-policy-agent/opa/v1/bundle"

	"github.com/palisade-dev/palisade/bundles"
	"github.com/palisade-dev/palisade/reconciler"
)

// mapSource serves one in-memory commit per Sync, each a new SHA, so every
// pass does the whole job.
type mapSource struct {
	fs fstest.MapFS
	n  atomic.Int64
}

func (s *mapSource) Sync(context.Context) (*reconciler.Snapshot, error) {
	return &reconciler.Snapshot{Commit: fmt.Sprintf("%040d", s.n.Add(1)), FS: s.fs}, nil
}
func (s *mapSource) URL() string { return "memory" }

// serializer publishes like the bundle server does: it writes every bundle.
type serializer struct{ bytes atomic.Int64 }

func (p *serializer) Publish(set map[string]*bundle.Bundle) ([]string, error) {
	for _, b := range set {
		raw, err := bundles.Bytes(b)
		if err != nil {
			return nil, err
		}
		p.bytes.Add(int64(len(raw)))
	}
	return nil, nil
}
func (p *serializer) Active(string) (string, string, bool) { return "", "", false }

// thousandFiles is a repository of 1,000 policy files: 1,000 Policy files,
// one cluster each (the worst case: 1,000 bundles), or a mixed repository
// of 100 clusters, 600 rulesets, 100 attestors and 200 tests.
func thousandFiles(b *testing.B, mixed bool) fstest.MapFS {
	b.Helper()
	base, err := os.ReadFile("../policies-example/clusters/prod.yaml")
	if err != nil {
		b.Fatal(err)
	}
	ruleset, _ := os.ReadFile("../policies-example/rulesets/baseline_runtime.yaml")
	attestor, _ := os.ReadFile("../policies-example/attestors/acme_release.yaml")
	fsys := fstest.MapFS{
		"rulesets/baseline_runtime.yaml": {Data: ruleset},
		"rulesets/payments_runtime.yaml": {Data: mustRead(b, "../policies-example/rulesets/payments_runtime.yaml")},
	}
	policies := 998
	if mixed {
		policies = 100
		for i := range 598 {
			fsys[fmt.Sprintf("rulesets/r%03d.yaml", i)] = &fstest.MapFile{Data: []byte(strings.Replace(string(ruleset), "name: baseline_runtime", fmt.Sprintf("name: r%03d", i), 1))}
		}
		for i := range 100 {
			fsys[fmt.Sprintf("attestors/a%03d.yaml", i)] = &fstest.MapFile{Data: []byte(strings.Replace(string(attestor), "name: acme_release", fmt.Sprintf("name: a%03d", i), 1))}
		}
		for i := range 200 {
			fsys[fmt.Sprintf("tests/t%03d.yaml", i)] = &fstest.MapFile{Data: fmt.Appendf(nil, `apiVersion: palisade.dev/v1alpha1
kind: PolicyTest
metadata: {name: t%03d}
spec:
  cluster: c000
  cases:
    - name: privileged
      object: {apiVersion: v1, kind: Pod, metadata: {name: x}, spec: {containers: [{name: c, image: busybox, securityContext: {privileged: true}}]}}
      expect: {allowed: false}
`, i)}
		}
	}
	for i := range policies {
		doc := strings.Replace(string(base), "name: prod\n", fmt.Sprintf("name: p%03d\n", i), 1)
		doc = strings.Replace(doc, "clusters: [prod]", fmt.Sprintf("clusters: [c%03d]", i), 1)
		fsys[fmt.Sprintf("clusters/c%03d.yaml", i)] = &fstest.MapFile{Data: []byte(doc)}
	}
	if mixed && len(fsys) != 1000 || !mixed && len(fsys) != 1000 {
		b.Fatalf("repository has %d files", len(fsys))
	}
	return fsys
}

func mustRead(b *testing.B, name string) []byte {
	data, err := os.ReadFile(name)
	if err != nil {
		b.Fatal(err)
	}
	return data
}

// BenchmarkReconcileThousandFiles measures one reconcile pass over a
// repository of 1,000 policy files: load, validate, build every cluster's
// bundle, compile one, and serialise every bundle as publishing does.
func BenchmarkReconcileThousandFiles(b *testing.B) {
	for _, mixed := range []bool{false, true} {
		name := "1000-clusters"
		if mixed {
			name = "100-clusters-mixed"
		}
		b.Run(name, func(b *testing.B) {
			src := &mapSource{fs: thousandFiles(b, mixed)}
			pub := &serializer{}
			rec, err := reconciler.New(reconciler.Options{Source: src, Publisher: pub})
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				if err := rec.Reconcile(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(pub.bytes.Load())/float64(b.N), "bundle-bytes/op")
		})
	}
}
