package bundles

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"maps"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultMaxWait caps a long poll. It stays under the idle timeouts of
// common load balancers and ingress controllers (60 s) and equals the
// client's DefaultInterval, so a Palisade client is always answered by the
// end of its wait.
const DefaultMaxWait = 30 * time.Second

// ContentType is the media type of a served bundle. OPA's downloader takes
// it as the server's promise to honour long polling ("Prefer: wait=N").
const ContentType = "application/vnd.openpolicyagent.bundles"

// writeTimeout bounds writing a bundle after a request's wait: 64 MiB at
// 10 Mbit/s takes under a minute.
const writeTimeout = time.Minute

// maxClusterName is the longest cluster name served: a DNS name's length.
const maxClusterName = 253

// ErrInvalidCluster is returned by Publish for a cluster name that is not
// made of letters, digits, '_', '.' and '-', or is "." or "..".
var ErrInvalidCluster = errors.New("invalid cluster name")

// ServerOptions configure a Server.
type ServerOptions struct {
	// Token, when set, is required as "Authorization: Bearer <token>".
	// The caller reads it from a file and trims it.
	Token string
	// ClientCAs, when set, requires a client certificate that verifies
	// against it (mTLS). TLSConfig enforces it in the handshake, and the
	// handler checks it again, so a listener configured by hand cannot
	// skip it. With both Token and ClientCAs set, a request needs both;
	// with neither, bundles are served to anyone who can connect.
	ClientCAs *x509.CertPool
	// Signer, when set, signs every published bundle (.signatures.json).
	Signer *Signer
	Logger *slog.Logger
	// Registerer receives the metrics (nil: no metrics).
	Registerer prometheus.Registerer
	// MaxWait caps the wait of a long poll (DefaultMaxWait if zero; a
	// negative value disables long polling).
	MaxWait time.Duration
}

// Server serves the bundles of a set of clusters over OPA's bundle service
// API: GET /bundles/{cluster}.tar.gz, with strong ETags, If-None-Match and
// long polling. Publish replaces the whole set at once; requests read one
// immutable snapshot of it.
type Server struct {
	opts      ServerOptions
	log       *slog.Logger
	metrics   *serverMetrics
	tokenHash *[sha256.Size]byte
	handler   http.Handler

	set     atomic.Pointer[servedSet]
	publish sync.Mutex // one Publish at a time

	closed    chan struct{}
	closeOnce sync.Once
}

// servedSet is an immutable snapshot of what is served.
type servedSet struct {
	clusters map[string]*served
	// replaced is closed when a Publish replaces this set: it wakes the
	// long polls waiting on it.
	replaced chan struct{}
}

// served is the bundle of one cluster, immutable once published.
type served struct {
	revision string
	etag     string // quoted
	raw      []byte
	content  [sha256.Size]byte // of everything but the manifest's revision
}

// NewServer returns a Server that serves nothing until the first Publish.
func NewServer(o ServerOptions) *Server {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxWait == 0 {
		o.MaxWait = DefaultMaxWait
	}
	s := &Server{
		opts:    o,
		log:     o.Logger,
		metrics: newServerMetrics(o.Registerer, o.Logger),
		closed:  make(chan struct{}),
	}
	if o.Token != "" {
		// Tokens are compared by digest, so the comparison takes the same
		// time whatever the length of the presented token.
		h := sha256.Sum256([]byte(o.Token))
		s.tokenHash = &h
	}
	if o.Token == "" && o.ClientCAs == nil {
		s.log.Warn("bundle service has no authentication")
	}
	s.set.Store(&servedSet{clusters: map[string]*served{}, replaced: make(chan struct{})})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /bundles/{file}", s.serveBundle)
	s.handler = mux
	return s
}

// Handler serves GET /bundles/{cluster}.tar.gz. It sets its own write
// deadline per request (the wait plus a minute), so a server's
// WriteTimeout does not cut long polls short.
func (s *Server) Handler() http.Handler { return s.handler }

// TLSConfig returns a TLS configuration for serving Handler: TLS 1.2 or
// later, the server certificate from getCertificate (called on each
// handshake, so a rotated certificate is picked up), and client
// certificates required and verified when ClientCAs is set.
func (s *Server) TLSConfig(getCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)) *tls.Config {
	c := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: getCertificate}
	if s.opts.ClientCAs != nil {
		c.ClientCAs = s.opts.ClientCAs
		c.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return c
}

// Close ends every pending long poll at once (304) and makes later
// requests answer without waiting. Call it before http.Server.Shutdown,
// which otherwise waits for long polls to end.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.closed) })
}

// Active returns the revision and ETag served for a cluster.
func (s *Server) Active(cluster string) (revision, etag string, ok bool) {
	e := s.set.Load().clusters[cluster]
	if e == nil {
		return "", "", false
	}
	return e.revision, e.etag, true
}

// Publish atomically replaces the set of served bundles, one per cluster:
// every request sees either the old set or the new one. A cluster whose
// bundle content (data, modules and manifest apart from the revision) is
// unchanged keeps its old revision, bytes and ETag, so its consumers see
// no new revision. A cluster missing from the set is no longer served.
// Publish returns, sorted, the clusters whose served bundle is new,
// different or gone. On error (ErrInvalidCluster, a nil bundle, a
// signing or serialising failure) nothing changes. The bundles are not
// modified.
func (s *Server) Publish(set map[string]*bundle.Bundle) (changed []string, err error) {
	start := time.Now()
	s.publish.Lock()
	defer s.publish.Unlock()
	old := s.set.Load()

	names := slices.Sorted(maps.Keys(set))
	for _, cluster := range names {
		if err := checkCluster(cluster); err != nil {
			return nil, fmt.Errorf("publish: %w", err)
		}
		if set[cluster] == nil {
			return nil, fmt.Errorf("publish %s: no bundle", cluster)
		}
	}
	entries := make([]*served, len(names))
	errs := make([]error, len(names))
	parallel(len(names), func(i int) {
		cluster := names[i]
		entries[i], errs[i] = s.prepare(set[cluster], old.clusters[cluster])
		if errs[i] != nil {
			errs[i] = fmt.Errorf("publish %s: %w", cluster, errs[i])
		}
	})
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	next := &servedSet{clusters: make(map[string]*served, len(names)), replaced: make(chan struct{})}
	changed = []string{}
	for i, cluster := range names {
		next.clusters[cluster] = entries[i]
		if entries[i] != old.clusters[cluster] {
			changed = append(changed, cluster)
		}
	}
	for cluster := range old.clusters {
		if _, ok := next.clusters[cluster]; !ok {
			changed = append(changed, cluster)
		}
	}
	slices.Sort(changed)
	s.set.Store(next)
	close(old.replaced)

	for _, cluster := range changed {
		prev, e := old.clusters[cluster], next.clusters[cluster]
		if prev != nil {
			s.metrics.revision.DeleteLabelValues(cluster, prev.revision)
			s.metrics.size.DeleteLabelValues(cluster)
		}
		if e == nil {
			s.log.Info("bundle withdrawn", keyCluster, cluster, keyRevision, prev.revision)
			continue
		}
		s.metrics.revision.WithLabelValues(cluster, e.revision).Set(1)
		s.metrics.size.WithLabelValues(cluster).Set(float64(len(e.raw)))
		s.log.Info("bundle published", keyCluster, cluster, keyRevision, e.revision, keyETag, e.etag)
	}
	s.metrics.publish.Observe(time.Since(start).Seconds())
	s.log.Debug("bundle set published", keyClusters, len(names), keyChanged, len(changed))
	return changed, nil
}

// prepare returns what to serve for b: prev when the content is the same,
// else b signed (on a copy) and serialised.
func (s *Server) prepare(b *bundle.Bundle, prev *served) (*served, error) {
	content, err := contentHash(b)
	if err != nil {
		return nil, err
	}
	if prev != nil && prev.content == content {
		return prev, nil
	}
	out := *b // the caller's bundle keeps its signatures
	out.Signatures = bundle.SignaturesConfig{}
	if s.opts.Signer != nil {
		if err := s.opts.Signer.Sign(&out); err != nil {
			return nil, err
		}
	}
	raw, err := Bytes(&out)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(raw)
	return &served{
		revision: b.Manifest.Revision,
		etag:     `"` + hex.EncodeToString(sum[:]) + `"`,
		raw:      raw,
		content:  content,
	}, nil
}

// parallel runs f(0..n-1) on up to GOMAXPROCS goroutines: a controller
// with a thousand clusters signs and compresses a thousand bundles.
func parallel(n int, f func(i int)) {
	workers := min(n, runtime.GOMAXPROCS(0))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				f(i)
			}
		})
	}
	wg.Wait()
}

// contentHash digests what a bundle decides with: its manifest without
// the revision, its data and its files.
func contentHash(b *bundle.Bundle) ([sha256.Size]byte, error) {
	h := sha256.New()
	m := b.Manifest
	m.Revision = ""
	manifest, err := json.Marshal(m)
	if err != nil {
		return [sha256.Size]byte{}, fmt.Errorf("hash manifest: %w", err)
	}
	data, err := json.Marshal(b.Data)
	if err != nil {
		return [sha256.Size]byte{}, fmt.Errorf("hash data: %w", err)
	}
	part(h, "manifest", manifest)
	part(h, "data", data)
	modules := slices.Clone(b.Modules)
	slices.SortFunc(modules, func(a, b bundle.ModuleFile) int { return strings.Compare(a.URL, b.URL) })
	for _, mod := range modules {
		part(h, "module "+mod.URL, mod.Raw)
	}
	part(h, "wasm", b.Wasm)
	for _, w := range b.WasmModules {
		part(h, "wasm "+w.Path, w.Raw)
	}
	for _, p := range b.PlanModules {
		part(h, "plan "+p.Path, p.Raw)
	}
	return [sha256.Size]byte(h.Sum(nil)), nil
}

// part writes a named, length-prefixed part, so that no two different
// sequences of parts hash the same.
func part(h hash.Hash, name string, data []byte) {
	fmt.Fprintf(h, "%d:%s %d:", len(name), name, len(data))
	h.Write(data)
}

func checkCluster(name string) error {
	if name == "" || name == "." || name == ".." || len(name) > maxClusterName {
		return fmt.Errorf("%w %q", ErrInvalidCluster, name)
	}
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '.', r == '-':
		default:
			return fmt.Errorf("%w %q", ErrInvalidCluster, name)
		}
	}
	return nil
}

func (s *Server) serveBundle(w http.ResponseWriter, r *http.Request) {
	cluster, ok := strings.CutSuffix(r.PathValue("file"), ".tar.gz")
	label := unknownCluster
	if ok && s.set.Load().clusters[cluster] != nil {
		label = cluster
	}
	code := s.respond(w, r, cluster, ok)
	s.metrics.requests.WithLabelValues(label, strconv.Itoa(code)).Inc()
}

// respond answers a bundle request and returns the status code.
func (s *Server) respond(w http.ResponseWriter, r *http.Request, cluster string, tarball bool) int {
	if reason := s.authenticate(r); reason != "" {
		s.log.Warn("bundle request refused", keyReason, reason, keyRemote, r.RemoteAddr, keyPath, r.URL.EscapedPath())
		if s.tokenHash != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="palisade"`)
		}
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return http.StatusUnauthorized
	}
	if !tarball {
		http.NotFound(w, r)
		return http.StatusNotFound
	}
	if err := checkCluster(cluster); err != nil {
		http.Error(w, "invalid cluster name", http.StatusBadRequest)
		return http.StatusBadRequest
	}
	wait := s.wait(r)
	// The wait is ours to bound, not the listener's WriteTimeout's.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(wait + writeTimeout))
	var timeout <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timeout = t.C
	}
	inm := r.Header.Get("If-None-Match")
	waiting := false
	defer func() {
		if waiting {
			s.metrics.waiting.WithLabelValues(cluster).Dec()
		}
	}()
	for {
		set := s.set.Load()
		e := set.clusters[cluster]
		if e == nil {
			http.NotFound(w, r)
			return http.StatusNotFound
		}
		if !etagMatch(inm, e.etag) {
			h := w.Header()
			h.Set("ETag", e.etag)
			h.Set("Content-Type", ContentType)
			h.Set("Content-Length", strconv.Itoa(len(e.raw)))
			h.Set("Cache-Control", "no-cache")
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(e.raw) // a consumer that hangs up retries
			return http.StatusOK
		}
		if timeout == nil {
			w.Header().Set("ETag", e.etag)
			w.WriteHeader(http.StatusNotModified)
			return http.StatusNotModified
		}
		if !waiting {
			waiting = true
			s.metrics.waiting.WithLabelValues(cluster).Inc()
		}
		select {
		case <-set.replaced:
		case <-timeout:
			timeout = nil
		case <-s.closed:
			timeout = nil
		case <-r.Context().Done():
			timeout = nil
		}
	}
}

// authenticate returns why a request is refused, or "".
func (s *Server) authenticate(r *http.Request) string {
	if s.opts.ClientCAs != nil {
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			return "no client certificate"
		}
		intermediates := x509.NewCertPool()
		for _, c := range r.TLS.PeerCertificates[1:] {
			intermediates.AddCert(c)
		}
		_, err := r.TLS.PeerCertificates[0].Verify(x509.VerifyOptions{
			Roots: s.opts.ClientCAs, Intermediates: intermediates,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		})
		if err != nil {
			return "client certificate does not verify"
		}
	}
	if s.tokenHash != nil {
		scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return "no bearer token"
		}
		h := sha256.Sum256([]byte(strings.TrimSpace(token)))
		if subtle.ConstantTimeCompare(h[:], s.tokenHash[:]) != 1 {
			return "wrong bearer token"
		}
	}
	return ""
}

// wait returns how long a request may be held: the "wait" preference in
// seconds, as OPA sends it ("Prefer: modes=snapshot,delta;wait=30"),
// capped by MaxWait; zero once the server is closing.
func (s *Server) wait(r *http.Request) time.Duration {
	select {
	case <-s.closed:
		return 0
	default:
	}
	if s.opts.MaxWait <= 0 {
		return 0
	}
	for _, line := range r.Header.Values("Prefer") {
		for pref := range strings.FieldsFuncSeq(line, func(c rune) bool { return c == ';' || c == ',' }) {
			k, v, ok := strings.Cut(strings.TrimSpace(pref), "=")
			if !ok || !strings.EqualFold(strings.TrimSpace(k), "wait") {
				continue
			}
			secs, err := strconv.Atoi(strings.Trim(strings.TrimSpace(v), `"`))
			if err != nil || secs <= 0 {
				return 0
			}
			return min(time.Duration(secs)*time.Second, s.opts.MaxWait)
		}
	}
	return 0
}

// etagMatch reports whether an If-None-Match header matches etag, with
// the weak comparison RFC 9110 prescribes for it. OPA sends its current
// ETag followed by recently replaced ones, comma-separated.
func etagMatch(header, etag string) bool {
	if header == "" {
		return false
	}
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}
