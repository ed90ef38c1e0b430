package bundles_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/palisade-dev/palisade/bundles"
)

// startClient runs a client until the test ends.
func startClient(t testing.TB, o bundles.ClientOptions) (c *bundles.Client, stop func()) {
	t.Helper()
	c, err := bundles.NewClient(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Error("Run did not return after its context was cancelled")
			}
		})
	}
	t.Cleanup(stop)
	return c, stop
}

// rawHandler serves fixed archive bytes with ETags, without long polling,
// as a server that could send anything.
type rawHandler struct {
	mu   sync.Mutex
	raw  []byte
	etag string
}

func (h *rawHandler) serve(raw []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	sum := sha256.Sum256(raw)
	h.raw, h.etag = raw, `"`+hex.EncodeToString(sum[:])+`"`
}

func (h *rawHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	raw, etag := h.raw, h.etag
	h.mu.Unlock()
	w.Header().Set("ETag", etag)
	if strings.Contains(r.Header.Get("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Type", "application/gzip")
	_, _ = w.Write(raw)
}

// privilegedPod asks for a privileged pod, which the example policy
// blocks in prod.
var privilegedPod = &bundles.Request{
	Kind: bundles.GroupVersionKind{Version: "v1", Kind: "Pod"}, Namespace: "default", Operation: "CREATE",
	UserInfo: bundles.UserInfo{Username: "alice"},
	Object: map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": "busybox", "namespace": "default"},
		"spec": map[string]any{"containers": []any{map[string]any{
			"name": "busybox-container", "image": "busybox:1.36",
			"securityContext": map[string]any{"privileged": true},
		}}},
	},
}

// checkDecides checks that an engine is usable and blocks the privileged
// pod.
func checkDecides(t testing.TB, e *bundles.Engine) {
	t.Helper()
	if e == nil {
		t.Fatal("no active engine")
	}
	d, err := e.Admission(context.Background(), privilegedPod, bundles.Facts{Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if d.Allowed {
		t.Errorf("revision %s allowed a privileged pod", e.Revision())
	}
}

func TestClientActivatesNewRevisions(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	s, hs := newService(t, bundles.ServerOptions{Token: "tok"}, map[string]*bundle.Bundle{"prod": prodBundle(t, "r1", "")})
	var mu sync.Mutex
	var activated []string
	cache := t.TempDir()
	log, _ := newLogger(t)
	c, _ := startClient(t, bundles.ClientOptions{
		URL: hs.URL + "/bundles/prod.tar.gz", Token: "tok", CacheDir: cache,
		Interval: 30 * time.Second, // long polls: a new revision must not wait for the interval
		Logger:   log, Registerer: reg,
		OnActivate: func(e *bundles.Engine) {
			mu.Lock()
			defer mu.Unlock()
			activated = append(activated, e.Revision())
		},
	})
	eventually(t, 10*time.Second, "client activates r1", func() bool { return c.Revision() == "r1" })
	if !c.Ready() {
		t.Error("not ready with an active bundle")
	}
	checkDecides(t, c.Engine())

	time.Sleep(200 * time.Millisecond) // the client is now in a long poll
	if _, err := s.Publish(map[string]*bundle.Bundle{"prod": prodBundle(t, "r2", "changed")}); err != nil {
		t.Fatal(err)
	}
	published := time.Now()
	// Activation compiles and plans the bundle (about 0.3 s here, a few
	// seconds on a loaded CI machine); without a long poll it would wait
	// for the 30 s interval.
	eventually(t, 15*time.Second, "client activates r2", func() bool { return c.Revision() == "r2" })
	took := time.Since(published)
	t.Logf("r2 active %v after the publish", took)
	if took > 10*time.Second {
		t.Errorf("r2 became active %v after the publish: no long poll?", took)
	}
	checkDecides(t, c.Engine())

	// Same content, new commit: the server keeps r2, the client too.
	if _, err := s.Publish(map[string]*bundle.Bundle{"prod": prodBundle(t, "r3", "changed")}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	mu.Lock()
	if !slices.Equal(activated, []string{"r1", "r2"}) {
		t.Errorf("OnActivate saw %v, want [r1 r2]", activated)
	}
	mu.Unlock()
	if got := metricValue(t, reg, "palisade_bundle_client_active_revision_info", map[string]string{"revision": "r2"}); got != 1 {
		t.Errorf("active revision info r2 = %v", got)
	}
	if got := metricValue(t, reg, "palisade_bundle_client_active_revision_info", map[string]string{"revision": "r1"}); got != 0 {
		t.Errorf("active revision info r1 = %v after r2", got)
	}
	cached, err := os.ReadFile(filepath.Join(cache, "bundle.tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	if b, err := bundles.Read(cached, nil, 0); err != nil || b.Manifest.Revision != "r2" {
		t.Errorf("cache holds %v (%v), want r2", b, err)
	}
}

// TestClientKeepsLastGood serves a good signed bundle, then a bad one,
// then a good one again: the bad one is refused, logged and counted, the
// last good stays active (and cached), and the next good one is taken.
func TestClientKeepsLastGood(t *testing.T) {
	priv, pub := keyPair(t, "RS256")
	signer, err := bundles.NewSigner(priv, "RS256", "palisade")
	if err != nil {
		t.Fatal(err)
	}
	key, err := bundles.LoadVerificationKey(pub, "RS256", "palisade")
	if err != nil {
		t.Fatal(err)
	}
	good := signedBytes(t, signer, prodBundle(t, "good", ""))
	broken := prodBundle(t, "broken", "")
	broken.Modules = append(slices.Clone(broken.Modules), bundle.ModuleFile{
		URL: "/palisade/broken.rego", Path: "/palisade/broken.rego",
		Raw: []byte("package palisade.broken\n\nx := no_such_function(1)\n"),
	})
	unsigned, _ := bundles.Bytes(prodBundle(t, "unsigned", ""))
	const maxBytes = 4 << 20
	for _, tc := range []struct {
		name   string
		bad    []byte
		reason string
	}{
		{"module that does not compile", signedBytes(t, signer, broken), "compile"},
		{"tampered signed bundle", tamper(t, signedBytes(t, signer, prodBundle(t, "tampered", ""))), "signature"},
		{"unsigned bundle", unsigned, "unsigned"},
		{"bundle signed with another key", signedBytes(t, mustSigner(t, "RS256"), prodBundle(t, "other-key", "")), "signature"},
		{"oversized bundle", signedBytes(t, signer, prodBundle(t, "big", strings.Repeat("x", maxBytes))), "oversized"},
		{"not a bundle", []byte("<html>bad gateway</html>"), "malformed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			reg := prometheus.NewPedanticRegistry()
			log, logs := newLogger(t)
			h := &rawHandler{}
			h.serve(good)
			hs := httptest.NewServer(h)
			t.Cleanup(hs.Close)
			cache := t.TempDir()
			c, _ := startClient(t, bundles.ClientOptions{
				URL: hs.URL + "/bundles/prod.tar.gz", Verify: key, CacheDir: cache, MaxBytes: maxBytes,
				Interval: 200 * time.Millisecond, Logger: log, Registerer: reg,
			})
			eventually(t, 10*time.Second, "client activates the good bundle", func() bool { return c.Revision() == "good" })

			h.serve(tc.bad)
			errors := func() float64 {
				return metricValue(t, reg, "palisade_bundle_client_errors_total", map[string]string{"reason": tc.reason})
			}
			eventually(t, 10*time.Second, "client counts the bad bundle as "+tc.reason, func() bool { return errors() >= 1 })
			if c.Revision() != "good" {
				t.Fatalf("revision %q after a bad bundle, want good", c.Revision())
			}
			checkDecides(t, c.Engine())
			if !strings.Contains(logs.String(), "bundle refused") || !strings.Contains(logs.String(), "reason="+tc.reason) {
				t.Errorf("no log line for the refused bundle")
			}
			cached, _ := os.ReadFile(filepath.Join(cache, "bundle.tar.gz"))
			if sha256.Sum256(cached) != sha256.Sum256(good) {
				t.Error("the refused bundle replaced the cached one")
			}
			// The same bad bundle is not downloaded again and again.
			time.Sleep(600 * time.Millisecond)
			if n := errors(); n > 2 {
				t.Errorf("the same bad bundle was refused %v times", n)
			}

			next := signedBytes(t, signer, prodBundle(t, "fixed", "fixed"))
			h.serve(next)
			eventually(t, 10*time.Second, "client activates the fixed bundle", func() bool { return c.Revision() == "fixed" })
		})
	}
}

func mustSigner(t testing.TB, alg string) *bundles.Signer {
	t.Helper()
	priv, _ := keyPair(t, alg)
	s, err := bundles.NewSigner(priv, alg, "palisade")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// listenOn starts a bundle service on a given address (":0" style
// addresses pick one).
func listenOn(t testing.TB, addr string, s *bundles.Server) *httptest.Server {
	t.Helper()
	var ln net.Listener
	var err error
	eventually(t, 5*time.Second, "listen on "+addr, func() bool {
		ln, err = net.Listen("tcp", addr)
		return err == nil
	})
	hs := httptest.NewUnstartedServer(s.Handler())
	hs.Listener.Close()
	hs.Listener = ln
	hs.Start()
	t.Cleanup(func() {
		s.Close()
		hs.Close()
	})
	return hs
}

func TestClientSurvivesServerRestart(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	s1 := bundles.NewServer(bundles.ServerOptions{})
	if _, err := s1.Publish(map[string]*bundle.Bundle{"prod": prodBundle(t, "r1", "")}); err != nil {
		t.Fatal(err)
	}
	hs1 := listenOn(t, "127.0.0.1:0", s1)
	addr := hs1.Listener.Addr().String()
	log, _ := newLogger(t)
	c, _ := startClient(t, bundles.ClientOptions{
		URL: "http://" + addr + "/bundles/prod.tar.gz", CacheDir: t.TempDir(),
		Interval: time.Second, Logger: log, Registerer: reg,
	})
	eventually(t, 10*time.Second, "client activates r1", func() bool { return c.Revision() == "r1" })

	s1.Close()
	hs1.Close()
	eventually(t, 5*time.Second, "client notices the server is gone", func() bool {
		return metricValue(t, reg, "palisade_bundle_client_errors_total", map[string]string{"reason": "unreachable"}) >= 2
	})
	if c.Revision() != "r1" || !c.Ready() {
		t.Fatalf("revision %q, ready %v while the server is down", c.Revision(), c.Ready())
	}
	checkDecides(t, c.Engine())

	s2 := bundles.NewServer(bundles.ServerOptions{})
	if _, err := s2.Publish(map[string]*bundle.Bundle{"prod": prodBundle(t, "r2", "restarted")}); err != nil {
		t.Fatal(err)
	}
	listenOn(t, addr, s2)
	eventually(t, 10*time.Second, "client activates r2 from the restarted server", func() bool { return c.Revision() == "r2" })
}

// cachedClient runs a client against a signing server until it has r1
// cached, and returns the options to start another client with the same
// cache (the server is stopped by then).
func cachedClient(t testing.TB) bundles.ClientOptions {
	t.Helper()
	priv, pub := keyPair(t, "ES256")
	signer, err := bundles.NewSigner(priv, "ES256", "palisade")
	if err != nil {
		t.Fatal(err)
	}
	key, err := bundles.LoadVerificationKey(pub, "ES256", "palisade")
	if err != nil {
		t.Fatal(err)
	}
	s := bundles.NewServer(bundles.ServerOptions{Signer: signer, Token: "tok"})
	if _, err := s.Publish(map[string]*bundle.Bundle{"prod": prodBundle(t, "r1", "")}); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	o := bundles.ClientOptions{
		URL: hs.URL + "/bundles/prod.tar.gz", Token: "tok", Verify: key, CacheDir: t.TempDir(), Interval: time.Second,
	}
	c, stop := startClient(t, o)
	eventually(t, 10*time.Second, "first client activates r1", func() bool { return c.Revision() == "r1" })
	stop()
	s.Close()
	hs.Close()
	return o
}

func TestClientStartsFromCacheWhenServerIsDown(t *testing.T) {
	o := cachedClient(t)
	reg := prometheus.NewPedanticRegistry()
	log, logs := newLogger(t)
	o.Logger, o.Registerer = log, reg
	activated := make(chan string, 2)
	o.OnActivate = func(e *bundles.Engine) { activated <- e.Revision() }
	start := time.Now()
	c, _ := startClient(t, o)
	select {
	case rev := <-activated:
		if rev != "r1" {
			t.Fatalf("activated %s from the cache, want r1", rev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no activation from the cache")
	}
	t.Logf("ready from the cache after %v", time.Since(start))
	checkDecides(t, c.Engine())
	if !strings.Contains(logs.String(), "source=cache") {
		t.Error("activation from the cache not logged")
	}
	eventually(t, 5*time.Second, "client counts the unreachable server", func() bool {
		return metricValue(t, reg, "palisade_bundle_client_errors_total", map[string]string{"reason": "unreachable"}) >= 1
	})
	if c.Revision() != "r1" {
		t.Errorf("revision %q, want r1", c.Revision())
	}
}

func TestClientIgnoresBadCache(t *testing.T) {
	o := cachedClient(t)
	archive := filepath.Join(o.CacheDir, "bundle.tar.gz")
	meta := filepath.Join(o.CacheDir, "bundle.json")
	good, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	goodMeta, err := os.ReadFile(meta)
	if err != nil {
		t.Fatal(err)
	}
	// rewriteDigest makes the metadata match an archive, as someone who
	// can write the cache directory could.
	rewriteDigest := func(raw []byte) {
		sum := sha256.Sum256(raw)
		old := sha256.Sum256(good)
		if err := os.WriteFile(meta, []byte(strings.Replace(string(goodMeta), hex.EncodeToString(old[:]), hex.EncodeToString(sum[:]), -1)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name    string
		want    string
		corrupt func()
	}{
		{"flipped byte in the archive", "does not match its digest", func() {
			bad := slices.Clone(good)
			bad[len(bad)/2] ^= 0xff
			_ = os.WriteFile(archive, bad, 0o600)
		}},
		{"truncated archive", "does not match its digest", func() { _ = os.WriteFile(archive, good[:len(good)/2], 0o600) }},
		{"garbage metadata", "bundle.json", func() { _ = os.WriteFile(meta, []byte("{not json"), 0o600) }},
		{"tampered archive with a matching digest", "data.json: digest mismatch", func() {
			bad := tamper(t, good)
			_ = os.WriteFile(archive, bad, 0o600)
			rewriteDigest(bad)
		}},
		{"unsigned archive with a matching digest", "not signed", func() {
			bad, _ := bundles.Bytes(prodBundle(t, "r1", ""))
			_ = os.WriteFile(archive, bad, 0o600)
			rewriteDigest(bad)
		}},
		{"cache of another bundle URL", "dev.tar.gz, not", func() {
			_ = os.WriteFile(meta, []byte(strings.Replace(string(goodMeta), "prod.tar.gz", "dev.tar.gz", 1)), 0o600)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(archive, good, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(meta, goodMeta, 0o600); err != nil {
				t.Fatal(err)
			}
			tc.corrupt()
			co := o
			log, logs := newLogger(t)
			co.Logger = log
			c, stop := startClient(t, co)
			eventually(t, 10*time.Second, "bad cache is logged", func() bool {
				return strings.Contains(logs.String(), "bundle cache ignored")
			})
			stop()
			if !strings.Contains(logs.String(), tc.want) {
				t.Errorf("the log does not say %q", tc.want)
			}
			if c.Ready() {
				t.Errorf("activated revision %s from a bad cache", c.Revision())
			}
		})
	}
}

func TestNewClientRefusesBadOptions(t *testing.T) {
	_, pub := keyPair(t, "RS256")
	key, err := bundles.LoadVerificationKey(pub, "RS256", "k")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		o    bundles.ClientOptions
		want string
	}{
		{"no URL", bundles.ClientOptions{}, "not an http(s) URL"},
		{"file URL", bundles.ClientOptions{URL: "file:///etc/passwd"}, "not an http(s) URL"},
		{"URL without host", bundles.ClientOptions{URL: "https:///bundles/prod.tar.gz"}, "not an http(s) URL"},
		{"key without id", bundles.ClientOptions{URL: "https://c/b.tar.gz", Verify: &bundles.VerificationKey{Algorithm: "RS256", Key: key.Key}}, "key id"},
		{"key that is not PEM", bundles.ClientOptions{URL: "https://c/b.tar.gz", Verify: &bundles.VerificationKey{KeyID: "k", Key: "x"}}, "PEM"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := bundles.NewClient(tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}
