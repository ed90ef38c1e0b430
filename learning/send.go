package learning

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/palisade-dev/palisade/internal/certpool"
	"github.com/palisade-dev/palisade/internal/metrics"
)

// Defaults of a Sender.
const (
	// DefaultQueueSize bounds the batches a sender keeps while the
	// controller is unreachable: at a 10-second interval, about ten
	// minutes of one node's behaviour, at most MaxBatchBytes each.
	DefaultQueueSize = 64
	// defaultSendTimeout bounds one POST.
	defaultSendTimeout = 10 * time.Second
	// defaultFinalTimeout bounds the last flush after the context ends,
	// so a sensor's shutdown is never held up long by its controller.
	defaultFinalTimeout = 5 * time.Second
	defaultMinBackoff   = 500 * time.Millisecond
	defaultMaxBackoff   = 30 * time.Second
)

// SenderOptions configure a Sender.
type SenderOptions struct {
	// URL is the controller's base URL, e.g.
	// "https://palisade-controller.palisade-system.svc:8443"; batches go
	// to URL + BatchesPath.
	URL string
	// TokenFile holds the bearer token, read before every request so a
	// rotated projected ServiceAccount token is used as soon as the
	// kubelet writes it. Empty sends no Authorization header.
	TokenFile string
	// CAFile, when set, holds the PEM certificates that verify the
	// controller's TLS certificate (instead of the system's roots).
	CAFile string
	// QueueSize bounds the unacknowledged batches kept for resending; when
	// full the oldest is dropped and counted. 0 means DefaultQueueSize.
	QueueSize int
	// Timeout bounds one request (0: 10s); FinalTimeout the last send
	// when Run's context ends (0: 5s).
	Timeout      time.Duration
	FinalTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait before resending after a
	// failure, doubled per failure (0: 500ms and 30s).
	MinBackoff, MaxBackoff time.Duration
	// Client, when set, is used as is (CAFile is then ignored).
	Client *http.Client
	// Registerer, when not nil, receives the sender's metrics.
	Registerer prometheus.Registerer
	// Log: nil means slog.Default().
	Log *slog.Logger
}

// Sender delivers an Aggregator's batches to the controller, resending
// each until the controller acknowledges it (a 2xx). The controller
// applies a batch id once, so resending after a lost acknowledgement is
// safe.
type Sender struct {
	opts   SenderOptions
	url    string
	client *http.Client
	log    *slog.Logger

	mu    sync.Mutex
	queue []*Batch

	mSent    *prometheus.CounterVec
	mDropped *prometheus.CounterVec
	mQueued  prometheus.Gauge
}

// Results and drop reasons in the sender's metrics.
const (
	sendResultAcked    = "acked"
	sendResultRejected = "rejected"
	sendResultFailed   = "failed"
	dropQueueFull      = "queue_full"
	dropRejected       = "rejected"
	dropShutdown       = "shutdown"
)

// ErrBatchRejected is wrapped by Send's error when the controller refused
// a batch for good (400, 413, 422): resending cannot help, Run drops it.
var ErrBatchRejected = errors.New("batch rejected by the controller")

// NewSender returns a Sender; it fails when the CA file cannot be read.
func NewSender(opts SenderOptions) (*Sender, error) {
	if opts.URL == "" {
		return nil, errors.New("learning sender: no controller URL")
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = DefaultQueueSize
	}
	if opts.Timeout <= 0 {
		opts.Timeout = defaultSendTimeout
	}
	if opts.FinalTimeout <= 0 {
		opts.FinalTimeout = defaultFinalTimeout
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = defaultMinBackoff
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(defaultMaxBackoff, opts.MinBackoff)
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	s := &Sender{
		opts:   opts,
		url:    strings.TrimRight(opts.URL, "/") + BatchesPath,
		client: opts.Client,
		log:    opts.Log,
		mSent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricBatchesSent,
			Help: "Learning batch sends by result (acked, rejected, failed).",
		}, []string{labelResult}),
		mDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricBatchesDropped,
			Help: "Learning batches given up by reason (queue_full, rejected, shutdown).",
		}, []string{labelReason}),
		mQueued: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: metricBatchesQueued,
			Help: "Learning batches waiting for the controller's acknowledgement.",
		}),
	}
	s.mSent = metrics.Register(opts.Registerer, opts.Log, s.mSent)
	s.mDropped = metrics.Register(opts.Registerer, opts.Log, s.mDropped)
	s.mQueued = metrics.Register(opts.Registerer, opts.Log, s.mQueued)
	if s.client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		// TLS 1.2 at least; verification always on.
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		if opts.CAFile != "" {
			pool, err := certpool.FromFile(opts.CAFile)
			if err != nil {
				return nil, fmt.Errorf("learning sender: CA file: %w", err)
			}
			tr.TLSClientConfig.RootCAs = pool
		}
		s.client = &http.Client{Transport: tr}
	}
	return s, nil
}

// Send posts b once. It returns nil when the controller acknowledged it,
// an error wrapping ErrBatchRejected when the controller refused it for
// good (400, 413, 422), another error otherwise.
func (s *Sender) Send(ctx context.Context, b *Batch) error {
	body, err := json.Marshal(b)
	if err != nil {
		return fmt.Errorf("%w: encode batch %s: %v", ErrBatchRejected, b.ID, err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("send batch %s: %w", b.ID, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if s.opts.TokenFile != "" {
		token, err := readTokenFile(s.opts.TokenFile)
		if err != nil {
			return fmt.Errorf("send batch %s: %w", b.ID, err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("send batch %s: %w", b.ID, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return nil
	case code == http.StatusBadRequest || code == http.StatusRequestEntityTooLarge || code == http.StatusUnprocessableEntity:
		return fmt.Errorf("%w: batch %s: %s: %s", ErrBatchRejected, b.ID, resp.Status, strings.TrimSpace(string(msg)))
	default:
		// 401 and 403 included: a rotated token or a fixed RBAC binding
		// makes the next attempt succeed.
		return fmt.Errorf("send batch %s: %s: %s", b.ID, resp.Status, strings.TrimSpace(string(msg)))
	}
}

// Pending is the number of batches waiting for acknowledgement.
func (s *Sender) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

func (s *Sender) enqueue(b *Batch) {
	if b == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) >= s.opts.QueueSize {
		old := s.queue[0]
		s.queue = s.queue[1:]
		s.mDropped.WithLabelValues(dropQueueFull).Inc()
		s.log.Warn("learning batch dropped, queue full", transportLogBatch, old.ID, "queueSize", s.opts.QueueSize)
	}
	s.queue = append(s.queue, b)
	s.mQueued.Set(float64(len(s.queue)))
}

// drain sends the queued batches in order until one fails for a reason
// that resending can fix; it reports whether the queue is empty.
func (s *Sender) drain(ctx context.Context) bool {
	for {
		s.mu.Lock()
		if len(s.queue) == 0 {
			s.mu.Unlock()
			return true
		}
		b := s.queue[0]
		s.mu.Unlock()

		err := s.Send(ctx, b)
		if err != nil && !errors.Is(err, ErrBatchRejected) {
			s.mSent.WithLabelValues(sendResultFailed).Inc()
			s.log.Warn("learning batch not delivered, will resend", transportLogBatch, b.ID, transportLogError, err.Error())
			return false
		}
		if err != nil {
			s.mSent.WithLabelValues(sendResultRejected).Inc()
			s.mDropped.WithLabelValues(dropRejected).Inc()
			s.log.Error("learning batch rejected, dropped", transportLogBatch, b.ID, transportLogError, err.Error())
		} else {
			s.mSent.WithLabelValues(sendResultAcked).Inc()
		}
		s.mu.Lock()
		if len(s.queue) > 0 && s.queue[0] == b {
			s.queue = s.queue[1:]
		}
		s.mQueued.Set(float64(len(s.queue)))
		s.mu.Unlock()
	}
}

// Run flushes agg every interval and delivers the batches, resending
// unacknowledged ones with exponential backoff (jittered) until the
// controller acknowledges them. When ctx ends it flushes once more and
// tries for at most FinalTimeout to deliver what is left; it returns an
// error when batches remain undelivered then.
func (s *Sender) Run(ctx context.Context, agg *Aggregator, interval time.Duration) error {
	if interval <= 0 {
		return fmt.Errorf("learning sender: interval %v is not positive", interval)
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	backoff := time.Duration(0)
	waiting := false // a retry timer is pending
	attempt := func() {
		if s.drain(ctx) {
			backoff = 0
			return
		}
		if ctx.Err() != nil {
			return
		}
		backoff = min(max(2*backoff, s.opts.MinBackoff), s.opts.MaxBackoff)
		retry.Reset(transportJitter(backoff))
		waiting = true
	}
	for {
		select {
		case <-ctx.Done():
			return s.finish(agg)
		case <-ticker.C:
			s.enqueue(agg.Flush())
			if !waiting {
				attempt()
			}
		case <-retry.C:
			waiting = false
			attempt()
		}
	}
}

func (s *Sender) finish(agg *Aggregator) error {
	s.enqueue(agg.Flush())
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.FinalTimeout)
	defer cancel()
	if s.drain(ctx) {
		return nil
	}
	s.mu.Lock()
	left := len(s.queue)
	s.queue = nil
	s.mQueued.Set(0)
	s.mu.Unlock()
	s.mDropped.WithLabelValues(dropShutdown).Add(float64(left))
	return fmt.Errorf("learning sender stopped with %d batches undelivered", left)
}

// transportJitter spreads d over [0.8d, 1.2d) so nodes that lost the controller
// together do not retry together.
func transportJitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}
