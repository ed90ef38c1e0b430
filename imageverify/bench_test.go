package imageverify_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/palisade-dev/palisade/imageverify"
	ivt "github.com/palisade-dev/palisade/imageverify/imageverifytest"
)

// BenchmarkVerify measures the facts of a pod with three images, each
// signed by a key and carrying a vuln attestation, verified concurrently
// as admission does: cold (empty caches: tag resolution, .sig and .att
// fetched from a loopback registry) and warm (cache hits). One op is one
// pod; p50 and p99 are reported per pod.
func BenchmarkVerify(b *testing.B) {
	host := ivt.StartRegistry(b)
	key := ivt.NewKeySigner(b, ivt.ECDSAP256)
	scanner := ivt.NewKeySigner(b, ivt.ECDSAP256)
	var images []string
	for i := range 3 {
		ref, _ := ivt.PushRandomImage(b, host, fmt.Sprintf("bench/app%d", i), "v1")
		ivt.SignImage(b, ref, key)
		ivt.Attest(b, ref, scanner, ivt.VulnPredicateType, ivt.Vuln(time.Now(), ivt.Finding{ID: "CVE-2024-0001", Severity: "LOW"}))
		images = append(images, ref)
	}
	attestors := []*imageverify.Attestor{keyAttestor(b, "release", key), keyAttestor(b, "trivy", scanner)}

	pod := func(v *imageverify.Verifier) {
		var wg sync.WaitGroup
		for _, image := range images {
			wg.Go(func() {
				f := v.Verify(context.Background(), image, attestors, nil)
				if !f.Signatures["release"].Verified || len(f.Attestations["trivy"]) != 1 {
					b.Errorf("%s: %+v", image, f)
				}
			})
		}
		wg.Wait()
	}
	run := func(b *testing.B, verifier func() *imageverify.Verifier) {
		durations := make([]time.Duration, 0, b.N)
		for b.Loop() {
			v := verifier()
			start := time.Now()
			pod(v)
			durations = append(durations, time.Since(start))
		}
		slices.Sort(durations)
		b.ReportMetric(float64(durations[len(durations)/2].Nanoseconds()), "p50-ns/pod")
		b.ReportMetric(float64(durations[len(durations)*99/100].Nanoseconds()), "p99-ns/pod")
	}
	opts := imageverify.Options{Insecure: true}

	b.Run("cold", func(b *testing.B) {
		run(b, func() *imageverify.Verifier { return imageverify.New(opts) })
	})
	b.Run("warm", func(b *testing.B) {
		v := imageverify.New(opts)
		pod(v)
		run(b, func() *imageverify.Verifier { return v })
	})
}
