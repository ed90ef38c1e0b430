package bundles_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/palisade-dev/palisade/bundles"
)

// newService starts a Server on loopback with the given bundles
// published.
func newService(t testing.TB, o bundles.ServerOptions, set map[string]*bundle.Bundle) (*bundles.Server, *httptest.Server) {
	t.Helper()
	s := bundles.NewServer(o)
	if set != nil {
		if _, err := s.Publish(set); err != nil {
			t.Fatal(err)
		}
	}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		s.Close()
		hs.Close()
	})
	return s, hs
}

func TestServerETag(t *testing.T) {
	b := prodBundle(t, "r1", "")
	s, hs := newService(t, bundles.ServerOptions{}, map[string]*bundle.Bundle{"prod": b})
	url := hs.URL + "/bundles/prod.tar.gz"

	resp, body := get(t, nil, url, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %s", resp.Status)
	}
	want, _ := bundles.Bytes(b)
	if !bytes.Equal(body, want) {
		t.Error("served bytes differ from bundles.Bytes")
	}
	etag := resp.Header.Get("ETag")
	if !regexp.MustCompile(`^"[0-9a-f]{64}"$`).MatchString(etag) {
		t.Errorf("ETag %s is not a strong content hash", etag)
	}
	if ct := resp.Header.Get("Content-Type"); ct != bundles.ContentType {
		t.Errorf("Content-Type %q, want %q (OPA's long-polling signal)", ct, bundles.ContentType)
	}
	if rev, active, ok := s.Active("prod"); !ok || rev != "r1" || active != etag {
		t.Errorf("Active = %q %q %v", rev, active, ok)
	}

	for _, tc := range []struct {
		name        string
		ifNoneMatch string
		want        int
	}{
		{"current ETag is not modified", etag, http.StatusNotModified},
		{"current ETag among superseded ones is not modified", `"old1", ` + etag + `, "old2"`, http.StatusNotModified},
		{"weak form of the current ETag is not modified", "W/" + etag, http.StatusNotModified},
		{"star is not modified", "*", http.StatusNotModified},
		{"another ETag gets the bundle", `"0123"`, http.StatusOK},
		{"no ETag gets the bundle", "", http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := get(t, nil, url, map[string]string{"If-None-Match": tc.ifNoneMatch})
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
			}
			if got := resp.Header.Get("ETag"); got != etag {
				t.Errorf("ETag %s, want %s", got, etag)
			}
			if tc.want == http.StatusNotModified && len(body) != 0 {
				t.Errorf("304 with a %d-byte body", len(body))
			}
		})
	}
}

func TestServerLongPoll(t *testing.T) {
	s, hs := newService(t, bundles.ServerOptions{MaxWait: 2 * time.Second},
		map[string]*bundle.Bundle{"prod": tinyBundle("r1", 1), "dev": tinyBundle("d1", 1)})
	url := hs.URL + "/bundles/prod.tar.gz"
	_, etag, _ := s.Active("prod")
	poll := func(wait string) (*http.Response, time.Duration) {
		start := time.Now()
		resp, _ := get(t, nil, url, map[string]string{"If-None-Match": etag, "Prefer": "modes=snapshot,delta;wait=" + wait})
		return resp, time.Since(start)
	}

	t.Run("returns at once when the bundle changes during the wait", func(t *testing.T) {
		var published time.Time
		go func() {
			time.Sleep(300 * time.Millisecond)
			published = time.Now()
			if _, err := s.Publish(map[string]*bundle.Bundle{"prod": tinyBundle("r2", 2), "dev": tinyBundle("d1", 1)}); err != nil {
				t.Error(err)
			}
		}()
		resp, took := poll("10")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d, want 200", resp.StatusCode)
		}
		if took < 300*time.Millisecond {
			t.Errorf("answered after %v, before the publish", took)
		}
		if late := time.Since(published); late > time.Second {
			t.Errorf("answered %v after the publish", late)
		}
		if rev, newETag, _ := s.Active("prod"); rev != "r2" || resp.Header.Get("ETag") != newETag {
			t.Errorf("served ETag %s, active %s %s", resp.Header.Get("ETag"), rev, newETag)
		}
	})
	_, etag, _ = s.Active("prod")

	t.Run("a change to another cluster does not end the wait", func(t *testing.T) {
		go func() {
			time.Sleep(200 * time.Millisecond)
			if _, err := s.Publish(map[string]*bundle.Bundle{"prod": tinyBundle("r3", 2), "dev": tinyBundle("d2", 2)}); err != nil {
				t.Error(err)
			}
		}()
		resp, took := poll("1")
		if resp.StatusCode != http.StatusNotModified || took < 900*time.Millisecond {
			t.Errorf("status %d after %v, want 304 after 1s", resp.StatusCode, took)
		}
	})

	t.Run("not modified after the wait", func(t *testing.T) {
		resp, took := poll("1")
		if resp.StatusCode != http.StatusNotModified {
			t.Fatalf("status %d, want 304", resp.StatusCode)
		}
		if took < 900*time.Millisecond || took > 1900*time.Millisecond {
			t.Errorf("answered after %v, want about 1s", took)
		}
	})

	t.Run("the wait is capped by MaxWait", func(t *testing.T) {
		resp, took := poll("60")
		if resp.StatusCode != http.StatusNotModified || took > 2900*time.Millisecond {
			t.Errorf("status %d after %v, want 304 after MaxWait (2s)", resp.StatusCode, took)
		}
	})

	t.Run("without a wait preference the answer is immediate", func(t *testing.T) {
		start := time.Now()
		resp, _ := get(t, nil, url, map[string]string{"If-None-Match": etag})
		if resp.StatusCode != http.StatusNotModified || time.Since(start) > 500*time.Millisecond {
			t.Errorf("status %d after %v", resp.StatusCode, time.Since(start))
		}
	})

	t.Run("Close ends pending long polls", func(t *testing.T) {
		go func() {
			time.Sleep(200 * time.Millisecond)
			s.Close()
		}()
		resp, took := poll("10")
		if resp.StatusCode != http.StatusNotModified || took > time.Second {
			t.Errorf("status %d after %v, want 304 soon after Close", resp.StatusCode, took)
		}
	})
}

func TestPublishKeepsRevisionOfUnchangedContent(t *testing.T) {
	s := bundles.NewServer(bundles.ServerOptions{})
	publish := func(set map[string]*bundle.Bundle) []string {
		t.Helper()
		changed, err := s.Publish(set)
		if err != nil {
			t.Fatal(err)
		}
		return changed
	}
	if got := publish(map[string]*bundle.Bundle{"prod": prodBundle(t, "c1", ""), "dev": tinyBundle("c1", 1)}); !slices.Equal(got, []string{"dev", "prod"}) {
		t.Errorf("first publish changed %v", got)
	}
	_, etag1, _ := s.Active("prod")

	// A commit that does not touch prod's policy.
	if got := publish(map[string]*bundle.Bundle{"prod": prodBundle(t, "c2", ""), "dev": tinyBundle("c2", 2)}); !slices.Equal(got, []string{"dev"}) {
		t.Errorf("changed %v, want [dev]", got)
	}
	if rev, etag, _ := s.Active("prod"); rev != "c1" || etag != etag1 {
		t.Errorf("unchanged prod: revision %s ETag %s, want c1 %s", rev, etag, etag1)
	}
	if rev, _, _ := s.Active("dev"); rev != "c2" {
		t.Errorf("changed dev: revision %s, want c2", rev)
	}

	// A commit that does.
	if got := publish(map[string]*bundle.Bundle{"prod": prodBundle(t, "c3", "x"), "dev": tinyBundle("c3", 2)}); !slices.Equal(got, []string{"prod"}) {
		t.Errorf("changed %v, want [prod]", got)
	}
	if rev, etag, _ := s.Active("prod"); rev != "c3" || etag == etag1 {
		t.Errorf("changed prod: revision %s ETag %s", rev, etag)
	}

	// A cluster that leaves the set.
	if got := publish(map[string]*bundle.Bundle{"prod": prodBundle(t, "c4", "x")}); !slices.Equal(got, []string{"dev"}) {
		t.Errorf("changed %v, want [dev]", got)
	}
	if _, _, ok := s.Active("dev"); ok {
		t.Error("dev is still served")
	}
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()
	if resp, _ := get(t, nil, hs.URL+"/bundles/dev.tar.gz", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("removed cluster: status %d, want 404", resp.StatusCode)
	}
}

func TestPublishRefusesBadSets(t *testing.T) {
	s := bundles.NewServer(bundles.ServerOptions{})
	if _, err := s.Publish(map[string]*bundle.Bundle{"prod": tinyBundle("r1", 1)}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		set     map[string]*bundle.Bundle
		wantErr error
	}{
		{"path traversal name", map[string]*bundle.Bundle{"prod": tinyBundle("r2", 2), "../etc": tinyBundle("r2", 2)}, bundles.ErrInvalidCluster},
		{"dot-dot name", map[string]*bundle.Bundle{"..": tinyBundle("r2", 2)}, bundles.ErrInvalidCluster},
		{"name with a slash", map[string]*bundle.Bundle{"a/b": tinyBundle("r2", 2)}, bundles.ErrInvalidCluster},
		{"empty name", map[string]*bundle.Bundle{"": tinyBundle("r2", 2)}, bundles.ErrInvalidCluster},
		{"nil bundle", map[string]*bundle.Bundle{"prod": nil}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Publish(tc.set)
			if err == nil || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if rev, _, ok := s.Active("prod"); !ok || rev != "r1" {
				t.Errorf("after a refused set prod serves %q (%v), want r1", rev, ok)
			}
		})
	}
}

// TestPublishIsAtomic publishes sets of three clusters, each at one
// revision, while readers fetch the clusters in random orders. A reader
// must never see a revision older than one it saw before: with a publish
// that updated clusters one at a time, it would, whenever it read an
// updated cluster and then one not yet updated.
func TestPublishIsAtomic(t *testing.T) {
	clusters := []string{"east", "north", "west"}
	s := bundles.NewServer(bundles.ServerOptions{})
	publish := func(i int) {
		set := map[string]*bundle.Bundle{}
		for _, c := range clusters {
			set[c] = tinyBundle(fmt.Sprintf("r%05d", i), i)
		}
		if _, err := s.Publish(set); err != nil {
			t.Error(err)
		}
	}
	publish(0)
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var httpReads, activeReads atomic.Int64
	for r := range 2 {
		viaHTTP := r == 0 // one reader over HTTP, the others through Active
		wg.Go(func() {
			last := ""
			for {
				select {
				case <-stop:
					return
				default:
				}
				for _, i := range rand.Perm(len(clusters)) {
					var rev string
					if viaHTTP {
						resp, err := http.Get(hs.URL + "/bundles/" + clusters[i] + ".tar.gz")
						if err != nil {
							t.Error(err)
							return
						}
						raw := new(bytes.Buffer)
						_, _ = raw.ReadFrom(resp.Body)
						resp.Body.Close()
						b, err := bundles.Read(raw.Bytes(), nil, 0)
						if err != nil {
							t.Error(err)
							return
						}
						rev = b.Manifest.Revision
						httpReads.Add(1)
					} else {
						rev, _, _ = s.Active(clusters[i])
						activeReads.Add(1)
						runtime.Gosched() // leave the CPU to the HTTP reader
					}
					if rev < last {
						t.Errorf("reader saw %s after %s: a mix of two sets", rev, last)
						return
					}
					last = rev
				}
			}
		})
	}
	i := 1
	for ; i < 300 || httpReads.Load() < 200; i++ {
		publish(i)
	}
	close(stop)
	wg.Wait()
	t.Logf("%d publishes, %d reads over HTTP, %d through Active", i, httpReads.Load(), activeReads.Load())
}

func TestServerAuthentication(t *testing.T) {
	log, logs := newLogger(t)
	_, hs := newService(t, bundles.ServerOptions{Token: "s3cret-token", Logger: log},
		map[string]*bundle.Bundle{"prod": tinyBundle("r1", 1)})
	for _, tc := range []struct {
		name   string
		header string
		want   int
	}{
		{"no token is refused", "", http.StatusUnauthorized},
		{"wrong token is refused", "Bearer s3cret-tokem", http.StatusUnauthorized},
		{"token prefix is refused", "Bearer s3cret", http.StatusUnauthorized},
		{"basic auth is refused", "Basic czNjcmV0LXRva2Vu", http.StatusUnauthorized},
		{"token without a scheme is refused", "s3cret-token", http.StatusUnauthorized},
		{"right token is accepted", "Bearer s3cret-token", http.StatusOK},
		{"scheme is case-insensitive", "bearer s3cret-token", http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := map[string]string{}
			if tc.header != "" {
				h["Authorization"] = tc.header
			}
			resp, body := get(t, nil, hs.URL+"/bundles/prod.tar.gz", h)
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
			}
			if tc.want == http.StatusUnauthorized {
				if bytes.HasPrefix(body, []byte{0x1f, 0x8b}) || resp.Header.Get("ETag") != "" {
					t.Error("an unauthenticated request got the bundle or its ETag")
				}
				if resp.Header.Get("WWW-Authenticate") == "" {
					t.Error("401 without WWW-Authenticate")
				}
			}
		})
	}
	if n := strings.Count(logs.String(), "bundle request refused"); n != 5 {
		t.Errorf("%d log lines for 5 refused requests", n)
	}
	if strings.Contains(logs.String(), "s3cret") {
		t.Error("a token was logged")
	}
}

func TestServerUnknownAndInvalidNames(t *testing.T) {
	s := bundles.NewServer(bundles.ServerOptions{})
	if _, err := s.Publish(map[string]*bundle.Bundle{"prod": tinyBundle("r1", 1)}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		method string
		path   string
		want   int
	}{
		{"served cluster", http.MethodGet, "/bundles/prod.tar.gz", http.StatusOK},
		{"unknown cluster", http.MethodGet, "/bundles/staging.tar.gz", http.StatusNotFound},
		{"encoded traversal", http.MethodGet, "/bundles/..%2F..%2Fetc%2Fpasswd.tar.gz", http.StatusBadRequest},
		{"encoded dot-dot", http.MethodGet, "/bundles/%2E%2E.tar.gz", http.StatusBadRequest},
		{"dot", http.MethodGet, "/bundles/..tar.gz", http.StatusBadRequest},
		{"encoded NUL", http.MethodGet, "/bundles/prod%00.tar.gz", http.StatusBadRequest},
		{"nested path", http.MethodGet, "/bundles/x/prod.tar.gz", http.StatusNotFound},
		{"not a tarball", http.MethodGet, "/bundles/prod", http.StatusNotFound},
		{"dot-dot segment is redirected to the clean path", http.MethodGet, "/bundles/x/../../etc/prod.tar.gz", http.StatusTemporaryRedirect},
		{"other method", http.MethodPost, "/bundles/prod.tar.gz", http.StatusMethodNotAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			s.Handler().ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
			if rec.Code != tc.want && !(tc.want == http.StatusTemporaryRedirect && rec.Code == http.StatusMovedPermanently) {
				t.Fatalf("status %d, want %d", rec.Code, tc.want)
			}
			if tc.want == http.StatusTemporaryRedirect {
				if loc := rec.Header().Get("Location"); loc != "/etc/prod.tar.gz" {
					t.Errorf("redirected to %q", loc)
				}
			}
		})
	}
}

func TestServerMutualTLS(t *testing.T) {
	ca, other := newCA(t, "palisade test CA"), newCA(t, "someone else")
	serverCert := ca.issue(t, "controller", x509.ExtKeyUsageServerAuth)
	good := ca.issue(t, "admission", x509.ExtKeyUsageClientAuth)
	foreign := other.issue(t, "admission", x509.ExtKeyUsageClientAuth)
	serverOnly := ca.issue(t, "not a client", x509.ExtKeyUsageServerAuth)
	client := func(certs ...tls.Certificate) *http.Client {
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs: ca.pool, Certificates: certs, MinVersion: tls.VersionTLS12,
		}}}
	}
	getCert := func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &serverCert, nil }
	start := func(h http.Handler, c *tls.Config) *httptest.Server {
		hs := httptest.NewUnstartedServer(h)
		hs.TLS = c
		// httptest adds its own certificate, which takes precedence over
		// GetCertificate for clients that send no server name.
		hs.TLS.Certificates = []tls.Certificate{serverCert}
		hs.Config.ErrorLog = stdlog.New(io.Discard, "", 0) // refused handshakes
		hs.StartTLS()
		t.Cleanup(hs.Close)
		return hs
	}

	t.Run("TLSConfig", func(t *testing.T) {
		s := bundles.NewServer(bundles.ServerOptions{ClientCAs: ca.pool})
		if _, err := s.Publish(map[string]*bundle.Bundle{"prod": tinyBundle("r1", 1)}); err != nil {
			t.Fatal(err)
		}
		hs := start(s.Handler(), s.TLSConfig(getCert))
		for _, tc := range []struct {
			name   string
			client *http.Client
			ok     bool
		}{
			{"certificate from the CA is accepted", client(good), true},
			{"no certificate is refused", client(), false},
			{"certificate from another CA is refused", client(foreign), false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				resp, err := tc.client.Get(hs.URL + "/bundles/prod.tar.gz")
				if tc.ok {
					if err != nil {
						t.Fatal(err)
					}
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						t.Fatalf("status %d", resp.StatusCode)
					}
					return
				}
				if err == nil {
					resp.Body.Close()
					t.Fatalf("status %d, want a refused handshake", resp.StatusCode)
				}
			})
		}
	})

	// A listener whose TLS configuration does not ask for client
	// certificates: the handler still refuses.
	t.Run("handler checks without TLSConfig", func(t *testing.T) {
		s := bundles.NewServer(bundles.ServerOptions{ClientCAs: ca.pool})
		if _, err := s.Publish(map[string]*bundle.Bundle{"prod": tinyBundle("r1", 1)}); err != nil {
			t.Fatal(err)
		}
		hs := start(s.Handler(), &tls.Config{ClientAuth: tls.RequestClientCert})
		for _, tc := range []struct {
			name   string
			client *http.Client
			want   int
		}{
			{"certificate from the CA is accepted", client(good), http.StatusOK},
			{"no certificate is refused", client(), http.StatusUnauthorized},
			{"certificate from another CA is refused", client(foreign), http.StatusUnauthorized},
			{"server certificate is refused", client(serverOnly), http.StatusUnauthorized},
		} {
			t.Run(tc.name, func(t *testing.T) {
				resp, _ := get(t, tc.client, hs.URL+"/bundles/prod.tar.gz", nil)
				if resp.StatusCode != tc.want {
					t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
				}
			})
		}
	})
}

func TestServerMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	s, hs := newService(t, bundles.ServerOptions{Registerer: reg, Token: "t"},
		map[string]*bundle.Bundle{"prod": tinyBundle("r1", 1)})
	get(t, nil, hs.URL+"/bundles/prod.tar.gz", map[string]string{"Authorization": "Bearer t"})
	get(t, nil, hs.URL+"/bundles/prod.tar.gz", nil)
	get(t, nil, hs.URL+"/bundles/random-name.tar.gz", map[string]string{"Authorization": "Bearer t"})
	if _, err := s.Publish(map[string]*bundle.Bundle{"prod": tinyBundle("r2", 2)}); err != nil {
		t.Fatal(err)
	}
	raw := len(mustGet(t, hs.URL+"/bundles/prod.tar.gz", "t"))
	for _, tc := range []struct {
		name   string
		metric string
		labels map[string]string
		want   float64
	}{
		{"bundle size", "palisade_bundle_size_bytes", map[string]string{"cluster": "prod"}, float64(raw)},
		{"active revision", "palisade_active_revision_info", map[string]string{"cluster": "prod", "revision": "r2"}, 1},
		{"replaced revision is gone", "palisade_active_revision_info", map[string]string{"cluster": "prod", "revision": "r1"}, 0},
		{"served requests", "palisade_bundle_requests_total", map[string]string{"cluster": "prod", "code": "200"}, 2},
		{"refused requests", "palisade_bundle_requests_total", map[string]string{"cluster": "prod", "code": "401"}, 1},
		{"unknown clusters share one label", "palisade_bundle_requests_total", map[string]string{"cluster": "", "code": "404"}, 1},
		{"publishes", "palisade_bundle_publish_duration_seconds", nil, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := metricValue(t, reg, tc.metric, tc.labels); got != tc.want {
				t.Errorf("%s%v = %v, want %v", tc.metric, tc.labels, got, tc.want)
			}
		})
	}
}

func mustGet(t testing.TB, url, token string) []byte {
	t.Helper()
	resp, body := get(t, nil, url, map[string]string{"Authorization": "Bearer " + token})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	return body
}

// BenchmarkPublish publishes a thousand changed cluster bundles per
// operation: what a controller does for a commit touching every cluster.
func BenchmarkPublish(b *testing.B) {
	for _, signed := range []bool{false, true} {
		b.Run(fmt.Sprintf("1000 clusters signed=%v", signed), func(b *testing.B) {
			o := bundles.ServerOptions{}
			if signed {
				o.Signer = mustSigner(b, "ES256")
			}
			s := bundles.NewServer(o)
			sets := [2]map[string]*bundle.Bundle{{}, {}}
			for i := range 1000 {
				name := fmt.Sprintf("cluster-%04d", i)
				sets[0][name] = prodBundle(b, "a", "a")
				sets[1][name] = prodBundle(b, "b", "b")
			}
			for i := 0; b.Loop(); i++ {
				changed, err := s.Publish(sets[i%2])
				if err != nil || len(changed) != 1000 {
					b.Fatalf("changed %d: %v", len(changed), err)
				}
			}
		})
	}
}
