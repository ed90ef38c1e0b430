package learning

import (
	"context"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// transportSender returns a Sender to url with fast retries.
func transportSender(t *testing.T, url, tokenFile string, edit func(*SenderOptions)) *Sender {
	t.Helper()
	opts := SenderOptions{
		URL: url, TokenFile: tokenFile,
		MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
		Timeout: 2 * time.Second, FinalTimeout: 2 * time.Second,
		Registerer: prometheus.NewRegistry(),
		Log:        slog.New(slog.DiscardHandler),
	}
	if edit != nil {
		edit(&opts)
	}
	s, err := NewSender(opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// transportRun runs s until the returned stop is called, which returns
// Run's error.
func transportRun(s *Sender, agg *Aggregator, interval time.Duration) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, agg, interval) }()
	return func() error { cancel(); return <-done }
}

func transportWaitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func transportAddN(agg *Aggregator, n int, path string) {
	for range n {
		agg.Add(Event{Rulesets: []string{"rs"}, Workload: transportWeb, Pod: "web-1", Key: transportExecKey(path), Time: transportT0})
	}
}

func TestSenderResendsUntilAcknowledged(t *testing.T) {
	h, store, tokenFile := transportServer(t)
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if requests.Add(1) <= 3 { // the controller is down for three attempts
			http.Error(w, "restarting", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	agg := NewAggregator("n1", AggregatorOptions{BootID: "b"})
	s := transportSender(t, srv.URL, tokenFile, nil)
	transportAddN(agg, 7, "/bin/a")
	stop := transportRun(s, agg, 10*time.Millisecond)
	transportWaitFor(t, "the batch to be stored", func() bool { _, ok := store.Profile("rs"); return ok && s.Pending() == 0 })
	transportAddN(agg, 2, "/bin/a")
	transportWaitFor(t, "the second batch", func() bool {
		return transportEvidence(t, store, "rs", "/bin/a").Count == 9 && transportMetricValue(t, s.mSent.WithLabelValues(sendResultAcked)) == 2
	})
	if got := transportMetricValue(t, s.mSent.WithLabelValues(sendResultFailed)); got != 3 {
		t.Errorf("failed sends metric %v, want 3", got)
	}
	if got := requests.Load(); got != 5 {
		t.Errorf("%d requests, want 3 failures and 2 acknowledged sends", got)
	}
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// A controller that stored a batch but whose answer was lost (it died
// between the fsync and the response): the sender resends, the store
// counts the batch once.
func TestSenderResendAfterALostAcknowledgementCountsOnce(t *testing.T) {
	h, store, tokenFile := transportServer(t)
	var lost atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if lost.CompareAndSwap(false, true) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r) // applied and durable...
			if rec.Code != http.StatusOK {
				t.Errorf("first delivery: %d %s", rec.Code, rec.Body)
			}
			// ...but the connection dies before the answer.
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	agg := NewAggregator("n1", AggregatorOptions{BootID: "b"})
	s := transportSender(t, srv.URL, tokenFile, nil)
	transportAddN(agg, 5, "/bin/a")
	b := agg.Flush()
	if err := s.Send(context.Background(), b); err == nil {
		t.Fatal("Send succeeded although the answer was lost")
	}
	if ev := transportEvidence(t, store, "rs", "/bin/a"); ev.Count != 5 {
		t.Fatalf("count %d after the first delivery, want 5", ev.Count)
	}
	if err := s.Send(context.Background(), b); err != nil {
		t.Fatalf("resend: %v", err)
	}
	if ev := transportEvidence(t, store, "rs", "/bin/a"); ev.Count != 5 {
		t.Errorf("count %d after the resend, want 5 (once)", ev.Count)
	}
}

// The same through Run, with a restarted controller in between: the
// store is reopened from its directory, the sensor resends.
func TestSenderAndRestartedControllerLoseNothing(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(transportToken), 0o600); err != nil {
		t.Fatal(err)
	}
	var (
		mu      sync.Mutex
		handler http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "starting", http.StatusServiceUnavailable)
		})
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		h := handler
		mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	start := func() *Store {
		store, err := OpenStore(filepath.Join(dir, "store"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		mu.Lock()
		handler = NewHandler(store, &TokenFileAuth{Path: tokenFile}, slog.New(slog.DiscardHandler))
		mu.Unlock()
		return store
	}
	agg := NewAggregator("n1", AggregatorOptions{BootID: "b"})
	s := transportSender(t, srv.URL, tokenFile, nil)
	stop := transportRun(s, agg, 5*time.Millisecond)

	transportAddN(agg, 3, "/bin/a")
	store := start()
	transportWaitFor(t, "the first batch", func() bool { _, ok := store.Profile("rs"); return ok })
	// The controller crashes (the store is dropped without Close) and
	// comes back while the sensor keeps observing.
	mu.Lock()
	handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", http.StatusBadGateway) })
	mu.Unlock()
	transportAddN(agg, 4, "/bin/a")
	transportWaitFor(t, "a failed send", func() bool { return s.Pending() > 0 })
	store2 := start()
	transportWaitFor(t, "every batch", func() bool { return s.Pending() == 0 && transportEvidence(t, store2, "rs", "/bin/a").Count == 7 })
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if ev := transportEvidence(t, store2, "rs", "/bin/a"); ev.Count != 7 {
		t.Errorf("count %d, want 7", ev.Count)
	}
}

func TestSenderDropsARejectedBatchAndGoesOn(t *testing.T) {
	h, store, tokenFile := transportServer(t)
	srv := httptest.NewServer(h)
	defer srv.Close()
	agg := NewAggregator("n1", AggregatorOptions{BootID: "b"})
	s := transportSender(t, srv.URL, tokenFile, nil)
	// A batch the controller cannot accept (an operation it does not know).
	agg.Add(Event{Rulesets: []string{"rs"}, Workload: transportWeb, Key: Key{Kind: KindFile, Operation: "chmod", Path: "/x"}, Time: transportT0})
	s.enqueue(agg.Flush())
	transportAddN(agg, 2, "/bin/a")
	s.enqueue(agg.Flush())
	if !s.drain(context.Background()) {
		t.Fatal("drain stopped at the rejected batch")
	}
	if ev := transportEvidence(t, store, "rs", "/bin/a"); ev.Count != 2 {
		t.Errorf("count %d, want 2", ev.Count)
	}
	if got := transportMetricValue(t, s.mDropped.WithLabelValues(dropRejected)); got != 1 {
		t.Errorf("rejected drops %v, want 1", got)
	}
}

func TestSenderQueueDropsTheOldestWhenFull(t *testing.T) {
	s := transportSender(t, "http://127.0.0.1:1", "", func(o *SenderOptions) { o.QueueSize = 2 })
	for _, id := range []string{"n/b/1", "n/b/2", "n/b/3"} {
		s.enqueue(&Batch{ID: id})
	}
	if s.Pending() != 2 || s.queue[0].ID != "n/b/2" {
		t.Errorf("queue %v, want the two newest", s.queue)
	}
	if got := transportMetricValue(t, s.mDropped.WithLabelValues(dropQueueFull)); got != 1 {
		t.Errorf("queue_full drops %v, want 1", got)
	}
	if got := transportMetricValue(t, s.mQueued); got != 2 {
		t.Errorf("queued gauge %v, want 2", got)
	}
}

func TestSenderFlushesOnceMoreWhenStopped(t *testing.T) {
	h, store, tokenFile := transportServer(t)
	srv := httptest.NewServer(h)
	defer srv.Close()
	agg := NewAggregator("n1", AggregatorOptions{BootID: "b"})
	s := transportSender(t, srv.URL, tokenFile, nil)
	stop := transportRun(s, agg, time.Hour) // no tick before the stop
	transportAddN(agg, 4, "/bin/a")
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if ev := transportEvidence(t, store, "rs", "/bin/a"); ev.Count != 4 {
		t.Errorf("count %d, want 4", ev.Count)
	}
}

func TestSenderStoppedWithTheControllerDownReportsTheLoss(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	agg := NewAggregator("n1", AggregatorOptions{BootID: "b"})
	s := transportSender(t, srv.URL, "", func(o *SenderOptions) { o.FinalTimeout = 100 * time.Millisecond })
	stop := transportRun(s, agg, time.Hour)
	transportAddN(agg, 1, "/bin/a")
	err := stop()
	if err == nil || !strings.Contains(err.Error(), "1 batches undelivered") {
		t.Errorf("Run: %v, want 1 batch undelivered", err)
	}
	if got := transportMetricValue(t, s.mDropped.WithLabelValues(dropShutdown)); got != 1 {
		t.Errorf("shutdown drops %v, want 1", got)
	}
}

func TestSenderReadsTheTokenFileForEveryRequest(t *testing.T) {
	h, store, serverToken := transportServer(t)
	srv := httptest.NewServer(h)
	defer srv.Close()
	clientToken := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(clientToken, []byte(transportToken), 0o600); err != nil {
		t.Fatal(err)
	}
	agg := NewAggregator("n1", AggregatorOptions{BootID: "b"})
	s := transportSender(t, srv.URL, clientToken, nil)
	transportAddN(agg, 1, "/bin/a")
	if err := s.Send(context.Background(), agg.Flush()); err != nil {
		t.Fatal(err)
	}
	// The kubelet rotates the projected token; the controller accepts only
	// the new one.
	for _, f := range []string{serverToken, clientToken} {
		if err := os.WriteFile(f, []byte("rotated-token"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	transportAddN(agg, 1, "/bin/a")
	if err := s.Send(context.Background(), agg.Flush()); err != nil {
		t.Fatalf("send after rotation: %v", err)
	}
	if ev := transportEvidence(t, store, "rs", "/bin/a"); ev.Count != 2 {
		t.Errorf("count %d, want 2", ev.Count)
	}
	if err := os.WriteFile(clientToken, []byte("stale"), 0o600); err != nil {
		t.Fatal(err)
	}
	transportAddN(agg, 1, "/bin/a")
	if err := s.Send(context.Background(), agg.Flush()); err == nil || !strings.Contains(err.Error(), "401") || errors.Is(err, ErrBatchRejected) {
		t.Errorf("send with a wrong token: %v, want a retryable 401", err)
	}
}

func TestSenderVerifiesTLSWithTheCAFile(t *testing.T) {
	h, store, tokenFile := transportServer(t)
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
	srv.StartTLS()
	defer srv.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	agg := NewAggregator("n1", AggregatorOptions{BootID: "b"})
	transportAddN(agg, 1, "/bin/a")
	b := agg.Flush()

	noCA := transportSender(t, srv.URL, tokenFile, nil)
	if err := noCA.Send(context.Background(), b); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("send without the CA: %v, want a certificate error", err)
	}
	withCA := transportSender(t, srv.URL, tokenFile, func(o *SenderOptions) { o.CAFile = caFile })
	if err := withCA.Send(context.Background(), b); err != nil {
		t.Fatalf("send with the CA: %v", err)
	}
	if _, ok := store.Profile("rs"); !ok {
		t.Error("batch not stored")
	}
	if _, err := NewSender(SenderOptions{URL: srv.URL, CAFile: filepath.Join(t.TempDir(), "missing")}); err == nil {
		t.Error("NewSender with a missing CA file succeeded")
	}
}
