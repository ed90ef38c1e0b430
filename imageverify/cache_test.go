package imageverify_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/palisade-dev/palisade/imageverify"
	ivt "github.com/palisade-dev/palisade/imageverify/imageverifytest"
	"github.com/palisade-dev/palisade/internal/metrics/metricstest"
	"github.com/prometheus/client_golang/prometheus"
)

func TestCacheHitDoesNoRegistryRoundTrip(t *testing.T) {
	host := ivt.StartRegistry(t)
	ref, digest := ivt.PushRandomImage(t, host, "cached/app", "v1")
	key := ivt.NewKeySigner(t, ivt.ECDSAP256)
	ivt.SignImage(t, ref, key)
	reg := prometheus.NewPedanticRegistry()
	fx := newFixture(t, func(o *imageverify.Options) { o.Registerer = reg })
	att := keyAttestor(t, "release", key)

	wantVerified(t, fx.verify(t, ref, att), "release")
	cold := fx.transport.n.Load()
	if cold == 0 {
		t.Fatal("no registry request on a cold cache")
	}
	for _, image := range []string{ref, host + "/cached/app@" + digest} {
		wantVerified(t, fx.verify(t, image, att), "release")
	}
	if n := fx.transport.n.Load(); n != cold {
		t.Fatalf("%d registry requests after warm lookups, want none", n-cold)
	}
	if hits := metricstest.Value(t, reg, "palisade_imageverify_cache_requests_total", map[string]string{"cache": "facts", "result": "hit"}); hits != 2 {
		t.Errorf("facts cache hits %v, want 2", hits)
	}
	if n := metricstest.Value(t, reg, "palisade_imageverify_duration_seconds", map[string]string{"result": "hit"}); n != 2 {
		t.Errorf("duration samples for hits %v, want 2", n)
	}

	// Past CacheTTL (and TagTTL) the registry is asked again.
	fx.clock.Add(11 * time.Minute)
	wantVerified(t, fx.verify(t, ref, att), "release")
	if n := fx.transport.n.Load(); n == cold {
		t.Fatal("no registry request after CacheTTL")
	}
}

func TestConcurrentVerifiesShareOneFetch(t *testing.T) {
	host := ivt.StartRegistry(t)
	ref, _ := ivt.PushRandomImage(t, host, "shared/app", "v1")
	key := ivt.NewKeySigner(t, ivt.ECDSAP256)
	ivt.SignImage(t, ref, key)
	att := keyAttestor(t, "release", key)

	single := newFixture(t)
	wantVerified(t, single.verify(t, ref, att), "release")
	one := single.transport.n.Load()

	fx := newFixture(t)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			if f := fx.verify(t, ref, att); !f.Signatures["release"].Verified {
				t.Errorf("not verified: %+v", f)
			}
		})
	}
	wg.Wait()
	// One fetch: a caller that missed the cache just before the fetch
	// stored its result finds it in its own flight. The signature flight
	// may run in another caller's session than the tag's, whose registry
	// handshake (GET /v2/, once for each of the concurrent .sig and .att
	// fetches) the single call did not repeat.
	if n := fx.transport.n.Load(); n > one+2 {
		t.Fatalf("%d registry requests for 16 concurrent calls, one call makes %d", n, one)
	}
}

func TestRegistryDownIsAFactQuicklyAndNotCachedLong(t *testing.T) {
	// A listener that accepted and closed: connection refused.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host := l.Addr().String()
	l.Close()
	key := ivt.NewKeySigner(t, ivt.ECDSAP256)
	reg := prometheus.NewPedanticRegistry()
	fx := newFixture(t, func(o *imageverify.Options) { o.Registerer = reg })
	att := keyAttestor(t, "release", key)

	start := time.Now()
	f := fx.verify(t, host+"/down/app:v1", att)
	if elapsed := time.Since(start); elapsed > 500*time.Millisecond {
		t.Errorf("took %v to report a refused connection, budget 2s", elapsed)
	}
	if f.Error == "" || f.Digest != "" {
		t.Fatalf("facts %+v, want an error and no digest", f)
	}
	if s := f.Signatures["release"]; s.Verified || s.Reason != imageverify.ReasonRegistryError {
		t.Fatalf("signature facts %+v, want a registry error", s)
	}
	if n := metricstest.Value(t, reg, "palisade_imageverify_registry_errors_total", map[string]string{"operation": "resolve"}); n != 1 {
		t.Errorf("resolve errors %v, want 1", n)
	}

	// Kept briefly: an outage is not hammered ...
	n := fx.transport.n.Load()
	fx.verify(t, host+"/down/app:v1", att)
	if fx.transport.n.Load() != n {
		t.Error("a registry error was retried at once")
	}
	// ... and retried soon.
	fx.clock.Add(6 * time.Second)
	fx.verify(t, host+"/down/app:v1", att)
	if fx.transport.n.Load() == n {
		t.Error("a registry error was still cached after ErrorTTL")
	}
}

func TestSlowRegistryTimesOutInsideTheBudget(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	fx := newFixture(t, func(o *imageverify.Options) { o.Timeout = 300 * time.Millisecond })
	start := time.Now()
	f := fx.verify(t, strings.TrimPrefix(srv.URL, "http://")+"/slow/app:v1", keyAttestor(t, "release", ivt.NewKeySigner(t, ivt.ECDSAP256)))
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("took %v with a 300ms budget", elapsed)
	}
	if !strings.Contains(f.Error, "timeout") && !strings.Contains(f.Error, "deadline") {
		t.Fatalf("error %q, want a timeout", f.Error)
	}
}

func TestMissingImageIsAnErrorFactNotCached(t *testing.T) {
	host := ivt.StartRegistry(t)
	fx := newFixture(t)
	att := keyAttestor(t, "release", ivt.NewKeySigner(t, ivt.ECDSAP256))
	f := fx.verify(t, host+"/missing/app:v1", att)
	if f.Error == "" {
		t.Fatalf("facts %+v, want an error for a missing image", f)
	}
	// Pushed a moment later (or asked with credentials that can see it):
	// the next request must not get the stale failure.
	ref, _ := ivt.PushRandomImage(t, host, "missing/app", "v1")
	if f := fx.verify(t, ref, att); f.Error != "" {
		t.Fatalf("error %q after the image was pushed: a not-found was cached", f.Error)
	}
}

func TestPlainHTTPIsRefusedUnlessInsecure(t *testing.T) {
	host := ivt.StartRegistry(t)
	ref, _ := ivt.PushRandomImage(t, host, "plain/app", "v1")
	fx := newFixture(t, func(o *imageverify.Options) { o.Insecure = false })
	f := fx.verify(t, ref)
	if !strings.Contains(f.Error, "plain HTTP") {
		t.Fatalf("error %q, want plain HTTP refused", f.Error)
	}
}

func TestInvalidReferenceIsAFact(t *testing.T) {
	fx := newFixture(t)
	f := fx.v.Verify(context.Background(), "UPPER/Case::bad", nil, nil)
	if !strings.HasPrefix(f.Error, "invalid image reference") {
		t.Fatalf("error %q", f.Error)
	}
	if fx.transport.n.Load() != 0 {
		t.Error("an invalid reference reached the registry")
	}
}

// Cached answers from the caches only: nothing before a Verify, the same
// facts after it (by tag and by digest), nothing once the tag's
// resolution expired, and never a registry request.
func TestCachedAnswersFromTheCachesOnly(t *testing.T) {
	f := newFixture(t)
	host := ivt.StartRegistry(t)
	ref, digest := ivt.PushRandomImage(t, host, "app", "v1")
	digestRef := host + "/app@" + digest
	signer := ivt.NewKeySigner(t, ivt.ECDSAP256)
	ivt.SignImage(t, ref, signer)
	a := keyAttestor(t, "release", signer)

	if _, ok := f.v.Cached(ref, []*imageverify.Attestor{a}); ok {
		t.Fatal("cached before any verification")
	}
	want := f.verify(t, ref, a)
	requests := f.transport.n.Load()
	for _, image := range []string{ref, digestRef} {
		got, ok := f.v.Cached(image, []*imageverify.Attestor{a})
		if !ok || got != want {
			t.Errorf("Cached(%s) after Verify: %v, %v; want the verified facts", image, got, ok)
		}
	}
	if _, ok := f.v.Cached(host+"/app:v2", []*imageverify.Attestor{a}); ok {
		t.Error("a tag never resolved is cached")
	}
	f.clock.Add(time.Hour)
	if _, ok := f.v.Cached(ref, []*imageverify.Attestor{a}); ok {
		t.Error("cached after the tag's resolution expired")
	}
	if n := f.transport.n.Load(); n != requests {
		t.Errorf("Cached made %d registry requests", n-requests)
	}
}
