package admission_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/palisade-dev/palisade/admission"
	"github.com/palisade-dev/palisade/bundles"
	"github.com/palisade-dev/palisade/imageverify"
	ivt "github.com/palisade-dev/palisade/imageverify/imageverifytest"
	"github.com/palisade-dev/palisade/policy"
	"github.com/palisade-dev/palisade/policytest"
)

// BenchmarkAdmissionVerifiedPod measures a whole review of a pod with
// three images that an imageSignature and a scanResults rule select:
// what the rules want (Wanted), the registry facts (signatures and vuln
// attestations from a loopback registry), and the decision. Cold starts
// every review with empty caches (tag resolution, .sig and .att round
// trips); warm reuses them. p50 and p99 are per review.
func BenchmarkAdmissionVerifiedPod(b *testing.B) {
	host := ivt.StartRegistry(b)
	release := ivt.NewKeySigner(b, ivt.ECDSAP256)
	scanner := ivt.NewKeySigner(b, ivt.ECDSAP256)
	containers := make([]map[string]any, 3)
	for i := range containers {
		ref, _ := ivt.PushRandomImage(b, host, fmt.Sprintf("acme/app%d", i), "v1")
		ivt.SignImage(b, ref, release)
		ivt.Attest(b, ref, scanner, ivt.VulnPredicateType, ivt.Vuln(time.Now(), ivt.Finding{ID: "CVE-2024-0001", Severity: "LOW"}))
		c := webContainer()
		c["name"], c["image"] = fmt.Sprintf("app%d", i), ref
		containers[i] = c
	}
	eng := verifyingEngine(b, host, release, scanner)
	body := reviewBody(b, request{kind: "Pod", name: "app", object: pod("app", "default", podSpec(containers...))})

	review := func(b *testing.B, h http.Handler) {
		req := httptest.NewRequest(http.MethodPost, admission.Path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"allowed":true`) {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
	handler := func() http.Handler {
		v := imageverify.New(imageverify.Options{Insecure: true})
		return newHandler(b, admission.Options{Engines: source{eng}, Images: imageverify.NewGatherer(v, imageverify.GathererOptions{})})
	}
	run := func(b *testing.B, next func() http.Handler) {
		durations := make([]time.Duration, 0, 1024)
		b.ReportAllocs()
		for b.Loop() {
			h := next()
			start := time.Now()
			review(b, h)
			durations = append(durations, time.Since(start))
		}
		slices.Sort(durations)
		b.ReportMetric(float64(durations[len(durations)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(durations[len(durations)*99/100].Microseconds()), "p99-µs")
	}
	b.Run("cold", func(b *testing.B) { run(b, handler) })
	b.Run("warm", func(b *testing.B) {
		h := handler()
		review(b, h)
		run(b, func() http.Handler { return h })
	})
}

// verifyingEngine is a policy whose images under host/acme/ must be signed
// by release and scanned by scanner.
func verifyingEngine(tb testing.TB, host string, release, scanner *ivt.KeySigner) *bundles.Engine {
	tb.Helper()
	fsys := fstest.MapFS{
		"clusters/c.yaml": {Data: []byte(`apiVersion: palisade.dev/v1alpha1
kind: Policy
metadata: {name: c}
spec:
  clusters: [c]
  clusterWide:
    deployment:
      privileged: {action: block}
      imageSignature:
        - {name: signed, action: block, images: [{prefix: "` + host + `/acme/"}], attestors: [release]}
      scanResults:
        - {name: scanned, action: block, images: [{prefix: "` + host + `/acme/"}], attestor: scanner, severity: high}
`)},
		"attestors/release.yaml": {Data: []byte(ivt.AttestorYAML("release", release))},
		"attestors/scanner.yaml": {Data: []byte(ivt.AttestorYAML("scanner", scanner))},
	}
	repo, err := policy.Load(fsys)
	if err != nil {
		tb.Fatal(err)
	}
	eng, err := policytest.NewEngines(repo).For(context.Background(), "c")
	if err != nil {
		tb.Fatal(err)
	}
	return eng
}
