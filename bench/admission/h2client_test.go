package main

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"
)

// answers collects what a sender reports, request by request.
type answers struct {
	mu     sync.Mutex
	status map[int]int
	body   map[int][]byte
	errs   map[int]error
	all    sync.WaitGroup
}

func newAnswers(n int) *answers {
	a := &answers{status: map[int]int{}, body: map[int][]byte{}, errs: map[int]error{}}
	a.all.Add(n)
	return a
}

func (a *answers) done(req, status int, body []byte, err error) {
	a.mu.Lock()
	a.status[req], a.body[req], a.errs[req] = status, body, err
	a.mu.Unlock()
	a.all.Done()
}

func (a *answers) wait(t *testing.T) {
	t.Helper()
	finished := make(chan struct{})
	go func() { a.all.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(30 * time.Second):
		t.Fatal("not every request was answered in 30 s")
	}
}

// echo answers each request with its index (the body's first line) and
// the length of its body; request 7 gets a 500.
func echo(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	first, _, _ := bytes.Cut(b, []byte("\n"))
	if string(first) == "7" {
		http.Error(w, "seven", http.StatusInternalServerError)
		return
	}
	fmt.Fprintf(w, "%s %d %s", first, len(b), r.Proto)
}

// run sends n requests of 20 KB each (more than one DATA frame) through
// a sender dialed to srv, all at once, and checks every answer.
func run(t *testing.T, srv *httptest.Server, n int, wantProto string) {
	t.Helper()
	a := newAnswers(n)
	cfg := &tls.Config{RootCAs: srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}
	s, err := dial(srv.URL+"/review", cfg, a.done)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	for i := range n {
		body := append([]byte(strconv.Itoa(i)+"\n"), bytes.Repeat([]byte("x"), 20<<10)...)
		s.send(i, body)
	}
	a.wait(t)
	for i := range n {
		if i == 7 {
			if a.status[i] != http.StatusInternalServerError {
				t.Errorf("request 7: status %d, want 500", a.status[i])
			}
			continue
		}
		want := fmt.Sprintf("%d %d %s", i, len(strconv.Itoa(i))+1+20<<10, wantProto)
		if a.errs[i] != nil || a.status[i] != http.StatusOK || string(a.body[i]) != want {
			t.Errorf("request %d: status %d, body %q, error %v; want 200 %q", i, a.status[i], a.body[i], a.errs[i], want)
		}
	}
}

// TestH2Client drives a real net/http HTTP/2 server that allows 4
// streams at a time: 300 requests of 20 KB, 6 MB in all, so that the
// client queues behind the stream limit, splits bodies into frames and
// waits for the server's window updates; every answer arrives, on its
// own request.
func TestH2Client(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(echo))
	srv.EnableHTTP2 = true
	srv.Config.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: 4}
	srv.StartTLS()
	defer srv.Close()
	run(t, srv, 300, "HTTP/2.0")
}

// TestHTTP1Fallback: a TLS server without HTTP/2 (as opa run's) is
// loaded through net/http's client.
func TestHTTP1Fallback(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(echo))
	defer srv.Close()
	run(t, srv, 50, "HTTP/1.1")
}

// TestH2ClientFailsRequestsOnClose: requests in flight when the
// connection ends are reported failed, each once.
func TestH2ClientFailsRequestsOnClose(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	defer close(block)
	a := newAnswers(3)
	cfg := &tls.Config{RootCAs: srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}
	c, err := dialH2(srv.URL, cfg, a.done)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		c.send(i, []byte("{}"))
	}
	c.close()
	a.wait(t)
	for i := range 3 {
		if a.errs[i] == nil {
			t.Errorf("request %d: no error after the connection closed", i)
		}
	}
}
