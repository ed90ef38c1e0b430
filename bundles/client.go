package bundles

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultInterval is the client's long-poll wait, and its polling period
// against a server that does not hold requests. It equals DefaultMaxWait.
// With long polling a new revision arrives at once whatever the interval;
// the interval only bounds how long a request stays open.
const DefaultInterval = 30 * time.Second

// Client timeouts. A request may take its long-poll wait plus
// requestTimeout: enough to download DefaultMaxBytes on a slow link.
const (
	dialTimeout      = 10 * time.Second
	handshakeTimeout = 10 * time.Second
	headerTimeout    = 15 * time.Second // after the wait
	requestTimeout   = time.Minute      // after the wait
	// minPollGap separates the starts of two requests to a long-polling
	// server that answered 304 without waiting.
	minPollGap = time.Second
)

// ErrRunning is returned by Run when the client is already running.
var ErrRunning = errors.New("bundle client is already running")

// Reasons a bundle is not activated (label of palisade_bundle_client_errors_total).
const (
	reasonUnreachable = "unreachable" // no HTTP response
	reasonStatus      = "status"      // a status other than 200 or 304
	reasonOversized   = "oversized"
	reasonUnsigned    = "unsigned"
	reasonSignature   = "signature"
	reasonMalformed   = "malformed" // not a readable bundle
	reasonCompile     = "compile"
	reasonCache       = "cache" // the cache could not be read or written
)

// ClientOptions configure a Client.
type ClientOptions struct {
	// URL of the bundle, e.g. https://controller:8443/bundles/prod.tar.gz.
	URL string
	// Token, when set, is sent as "Authorization: Bearer <token>".
	Token string
	// TLS configures HTTPS (nil: system roots, no client certificate).
	TLS *tls.Config
	// Verify, when set, requires bundles signed with this key; nil: no
	// signature check.
	Verify *VerificationKey
	// CacheDir, when set, holds the last good bundle: written after each
	// activation, loaded (and verified and compiled again) by Run before
	// it contacts the server, so the client serves the last good policy
	// while the server is unreachable. One client per directory.
	CacheDir string
	// Interval is the long-poll wait, and the polling period if the
	// server does not hold requests (DefaultInterval if zero). Keep it at
	// or below the server's MaxWait. Errors back off exponentially from a
	// tenth of it (at least 100 ms, at most 2 s) to twice it, with jitter.
	Interval time.Duration
	// MaxBytes bounds a bundle, compressed and uncompressed
	// (DefaultMaxBytes if zero).
	MaxBytes int64
	Logger   *slog.Logger
	// Registerer receives the metrics (nil: no metrics).
	Registerer prometheus.Registerer
	// OnActivate, when set, is called from Run after a new bundle compiled
	// and became active. It should return quickly.
	OnActivate func(*Engine)
}

// Client keeps the active bundle of one cluster up to date: it long-polls
// the bundle service with If-None-Match, verifies and compiles each new
// bundle, and activates it only when both succeed. A bundle that fails is
// logged and counted, and the last good one stays active.
type Client struct {
	opts    ClientOptions
	url     string // for logs and the cache: no credentials
	http    *http.Client
	wait    time.Duration // long-poll wait, whole seconds
	log     *slog.Logger
	metrics *clientMetrics
	engine  atomic.Pointer[Engine]
	running atomic.Bool

	// Owned by Run.
	etag     string            // of the active bundle
	sum      [sha256.Size]byte // of the active archive
	refused  string            // ETag of the last refused bundle
	longPoll bool              // the server promised long polling
}

// NewClient checks the options and returns a client; Run starts it.
func NewClient(o ClientOptions) (*Client, error) {
	u, err := url.Parse(o.URL)
	if err != nil {
		return nil, fmt.Errorf("new bundle client: %w", err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("new bundle client: URL %q is not an http(s) URL", u.Redacted())
	}
	if o.Verify != nil {
		if err := o.Verify.validate(); err != nil {
			return nil, fmt.Errorf("new bundle client: verification key: %w", err)
		}
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	// OPA's Prefer: wait takes whole seconds.
	wait := max(time.Second, o.Interval.Round(time.Second))
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.DialContext = (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext
	transport.TLSHandshakeTimeout = handshakeTimeout
	transport.ResponseHeaderTimeout = wait + headerTimeout
	if o.TLS != nil {
		transport.TLSClientConfig = o.TLS.Clone()
	}
	c := &Client{
		opts:    o,
		url:     u.Redacted(),
		http:    &http.Client{Transport: transport, Timeout: wait + requestTimeout},
		wait:    wait,
		log:     o.Logger,
		metrics: newClientMetrics(o.Registerer, o.Logger),
	}
	if o.Token != "" && u.Scheme == "http" {
		c.log.Warn("bundle token sent without TLS", keyURL, c.url)
	}
	return c, nil
}

// Engine returns the active engine, nil before the first activation.
func (c *Client) Engine() *Engine { return c.engine.Load() }

// Revision returns the revision of the active bundle, "" before the first
// activation.
func (c *Client) Revision() string {
	if e := c.engine.Load(); e != nil {
		return e.Revision()
	}
	return ""
}

// Ready reports whether a bundle is active.
func (c *Client) Ready() bool { return c.engine.Load() != nil }

// Run loads the cached bundle, then polls the server until ctx is done,
// and returns nil then. It returns ErrRunning if called while running.
func (c *Client) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer c.running.Store(false)
	if c.opts.CacheDir != "" {
		c.loadCache(ctx)
	}
	failures := 0
	for {
		start := time.Now()
		code, err := c.poll(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var delay time.Duration
		switch {
		case err != nil:
			delay = c.backoff(failures)
			failures++
			c.fail(err, delay)
		case !c.longPoll:
			failures = 0
			delay = jitter(c.opts.Interval - time.Since(start))
		case code == http.StatusNotModified:
			// A long poll that ended without news; one that ends at once
			// (a server shutting down) is not repeated in a tight loop.
			failures = 0
			delay = minPollGap - time.Since(start)
		default:
			failures = 0 // a new bundle: poll again at once
		}
		if delay > 0 {
			t := time.NewTimer(delay)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
		}
	}
}

// refusal is an error with the reason it is counted under.
type refusal struct {
	reason string
	err    error
}

func (r *refusal) Error() string { return r.err.Error() }
func (r *refusal) Unwrap() error { return r.err }

func refuse(reason string, err error) error { return &refusal{reason: reason, err: err} }

func (c *Client) fail(err error, retryIn time.Duration) {
	reason := reasonUnreachable
	var r *refusal
	if errors.As(err, &r) {
		reason = r.reason
	}
	c.metrics.errors.WithLabelValues(reason).Inc()
	if reason == reasonUnreachable || reason == reasonStatus {
		c.log.Warn("bundle fetch failed", keyURL, c.url, keyReason, reason, keyError, err.Error(), keyRetryIn, retryIn)
		return
	}
	c.log.Error("bundle refused", keyURL, c.url, keyReason, reason, keyError, err.Error(),
		keyRevision, c.Revision(), keyRetryIn, retryIn)
}

// poll makes one request, activates what it returns, and returns the
// status code.
func (c *Client) poll(ctx context.Context) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.opts.URL, nil)
	if err != nil {
		return 0, refuse(reasonUnreachable, fmt.Errorf("fetch %s: %w", c.url, err))
	}
	req.Header.Set("Accept", ContentType+", application/gzip")
	req.Header.Set("User-Agent", "palisade-bundle-client")
	if c.opts.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.opts.Token)
	}
	// The active ETag and the refused one: neither is worth downloading
	// again, so the server holds the request until there is a third.
	var known []string
	for _, e := range []string{c.etag, c.refused} {
		if e != "" {
			known = append(known, e)
		}
	}
	if len(known) > 0 {
		req.Header.Set("If-None-Match", strings.Join(known, ", "))
		req.Header.Set("Prefer", "modes=snapshot;wait="+strconv.Itoa(int(c.wait/time.Second)))
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, refuse(reasonUnreachable, fmt.Errorf("fetch %s: %w", c.url, err))
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotModified:
		return resp.StatusCode, nil
	case http.StatusOK:
	default:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10)) // reuse the connection
		return 0, refuse(reasonStatus, fmt.Errorf("fetch %s: %s", c.url, resp.Status))
	}
	c.longPoll = resp.Header.Get("Content-Type") == ContentType
	etag := resp.Header.Get("ETag")
	if resp.ContentLength > c.opts.MaxBytes {
		c.refused = etag
		return 0, refuse(reasonOversized, fmt.Errorf("fetch %s: %w: %d bytes", c.url, ErrTooLarge, resp.ContentLength))
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, c.opts.MaxBytes+1))
	if err != nil {
		return 0, refuse(reasonUnreachable, fmt.Errorf("fetch %s: %w", c.url, err))
	}
	if int64(len(raw)) > c.opts.MaxBytes {
		c.refused = etag
		return 0, refuse(reasonOversized, fmt.Errorf("fetch %s: %w: more than %d bytes", c.url, ErrTooLarge, c.opts.MaxBytes))
	}
	if sha256.Sum256(raw) == c.sum {
		// The same archive again (a server without ETags): nothing to do.
		c.etag = etag
		return resp.StatusCode, nil
	}
	if err := c.activate(ctx, raw, etag, "server"); err != nil {
		c.refused = etag
		return 0, err
	}
	c.refused = ""
	c.persist(raw)
	return resp.StatusCode, nil
}

// activate reads, verifies and compiles an archive and makes it the
// active bundle.
func (c *Client) activate(ctx context.Context, raw []byte, etag, source string) error {
	start := time.Now()
	b, err := Read(raw, c.opts.Verify, c.opts.MaxBytes)
	switch {
	case errors.Is(err, ErrTooLarge):
		return refuse(reasonOversized, err)
	case errors.Is(err, ErrUnsigned):
		return refuse(reasonUnsigned, err)
	case errors.Is(err, ErrSignature):
		return refuse(reasonSignature, err)
	case err != nil:
		return refuse(reasonMalformed, err)
	}
	e, err := NewEngine(ctx, b)
	if err != nil {
		return refuse(reasonCompile, err)
	}
	c.metrics.activation.Observe(time.Since(start).Seconds())
	prev := c.engine.Swap(e)
	c.etag, c.sum = etag, sha256.Sum256(raw)
	if prev != nil {
		c.metrics.revision.DeleteLabelValues(prev.Revision())
	}
	c.metrics.revision.WithLabelValues(e.Revision()).Set(1)
	c.log.Info("bundle activated", keyRevision, e.Revision(), keyETag, etag, keySource, source, keyURL, c.url, "evaluator", e.Evaluator())
	if c.opts.OnActivate != nil {
		c.opts.OnActivate(e)
	}
	return nil
}

// backoff returns the delay after n consecutive failures: exponential
// from a tenth of the interval to twice it, with equal jitter so that the
// consumers of a restarted server do not return in step.
func (c *Client) backoff(n int) time.Duration {
	base := min(max(c.opts.Interval/10, 100*time.Millisecond), 2*time.Second)
	ceiling := max(2*c.opts.Interval, base)
	d := ceiling
	if n < 30 && base<<n < ceiling {
		d = base << n
	}
	return d/2 + rand.N(d/2+1)
}

// jitter spreads a polling delay by ±10 %.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d - d/10 + rand.N(d/5+1)
}
