package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/bundle"

	"github.com/palisade-dev/palisade/admission"
	"github.com/palisade-dev/palisade/bundles"
	"github.com/palisade-dev/palisade/internal/logbuf"
	"github.com/palisade-dev/palisade/policy"
)

type target struct {
	name  string
	url   string
	opa   bool          // body is {"input": ...} rather than an AdmissionReview
	times *handlerTimes // served in this process: handler time per request
}

// handlerTimes records how long a handler took for each request, from
// its call to its return: the server's own work, without the network,
// TLS and the wait for a goroutine and a CPU that the loader's latency
// includes.
type handlerTimes struct {
	mu sync.Mutex
	d  []time.Duration
}

func (t *handlerTimes) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		h.ServeHTTP(w, r)
		d := time.Since(start)
		t.mu.Lock()
		t.d = append(t.d, d)
		t.mu.Unlock()
	})
}

// take returns the median and 99th percentile of the times recorded since
// the last take, and forgets them.
func (t *handlerTimes) take() (p50, p99 time.Duration) {
	t.mu.Lock()
	d := t.d
	t.d = nil
	t.mu.Unlock()
	if len(d) == 0 {
		return 0, 0
	}
	slices.Sort(d)
	return d[len(d)/2], d[len(d)*99/100]
}

type targets struct {
	list   []target
	caFile string
	// bundleFile is the bundle every target decides with; the loader
	// builds OPA's input from it exactly as Palisade builds its own.
	bundleFile string
	stops      []func()
}

func (t *targets) stop() {
	for _, f := range t.stops {
		f()
	}
}

type fixedEngine struct{ e *bundles.Engine }

func (f fixedEngine) Engine() *bundles.Engine { return f.e }

// startTargets builds the bundle and starts Palisade, the no-op webhook
// and opa run --server on loopback over TLS.
func startTargets(dir, cluster, tmp string) (*targets, error) {
	b, eng, err := buildEngine(dir, cluster)
	if err != nil {
		return nil, err
	}
	raw, err := bundles.Bytes(b)
	if err != nil {
		return nil, err
	}
	certPEM, keyPEM, caPEM, err := admission.LocalCertificatePEM([]string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	ts := &targets{caFile: filepath.Join(tmp, "ca.pem"), bundleFile: filepath.Join(tmp, "bundle.tar.gz")}
	certFile, keyFile, bundleFile := filepath.Join(tmp, "tls.crt"), filepath.Join(tmp, "tls.key"), ts.bundleFile
	for f, data := range map[string][]byte{ts.caFile: caPEM, certFile: certPEM, keyFile: keyPEM, bundleFile: raw} {
		if err := os.WriteFile(f, data, 0o600); err != nil {
			return nil, err
		}
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	getCert := func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil }

	// Palisade logs every decision as palisade admission does: a JSON
	// line per review, buffered and written out every
	// logbuf.FlushInterval (to a file here, to stderr there).
	decisions, err := os.Create(filepath.Join(tmp, "decisions.log"))
	if err != nil {
		return nil, err
	}
	decisionLog := logbuf.New(decisions)
	ts.stops = append(ts.stops, func() { _ = decisionLog.Stop(); _ = decisions.Close() })
	h, err := admission.NewHandler(admission.Options{Engines: fixedEngine{eng}, Logger: slog.New(slog.NewJSONHandler(decisionLog, nil))})
	if err != nil {
		return nil, err
	}
	serve := func(name string, srv *http.Server) error {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		// The loader's connections that close before their handshake
		// completes (at the end of a run) are not server errors.
		srv.ErrorLog = log.New(handshakeEOFFilter{os.Stderr}, "", log.LstdFlags)
		times := &handlerTimes{}
		srv.Handler = times.wrap(srv.Handler)
		go func() { _ = srv.ServeTLS(ln, "", "") }()
		ts.stops = append(ts.stops, func() { _ = srv.Close() })
		ts.list = append(ts.list, target{name: name, url: "https://" + ln.Addr().String() + admission.Path, times: times})
		return nil
	}
	if err := serve("palisade", admission.NewServer("", h, getCert)); err != nil {
		return nil, err
	}
	noop := admission.NewServer("", h, getCert)
	mux := http.NewServeMux()
	mux.HandleFunc(admission.Path, noopHandler)
	noop.Handler = mux
	if err := serve("noop", noop); err != nil {
		return nil, err
	}
	if err := startOPA(ts, certFile, keyFile, bundleFile); err != nil {
		ts.stop()
		return nil, err
	}
	return ts, nil
}

// buildEngine builds the bundle of a cluster of a policy repository, and
// its engine.
func buildEngine(dir, cluster string) (*bundle.Bundle, *bundles.Engine, error) {
	repo, err := policy.LoadDir(dir)
	if err != nil {
		return nil, nil, err
	}
	b, err := bundles.Build(repo, cluster, "bench")
	if err != nil {
		return nil, nil, err
	}
	eng, err := bundles.NewEngine(context.Background(), b)
	if err != nil {
		return nil, nil, err
	}
	return b, eng, nil
}

// noopHandler decodes the review and allows it: the floor.
func noopHandler(w http.ResponseWriter, r *http.Request) {
	var rv struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Request    struct {
			UID string `json:"uid"`
		} `json:"request"`
		Object map[string]any `json:"-"`
	}
	var full map[string]any
	body, err := io.ReadAll(r.Body)
	if err == nil {
		err = errors.Join(json.Unmarshal(body, &rv), json.Unmarshal(body, &full))
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"apiVersion": rv.APIVersion, "kind": rv.Kind,
		"response": map[string]any{"uid": rv.Request.UID, "allowed": true},
	})
}

// startOPA runs opa run --server with the bundle and waits for health.
func startOPA(ts *targets, certFile, keyFile, bundleFile string) error {
	out, err := exec.Command("go", "tool", "-n", "opa").Output()
	if err != nil {
		return fmt.Errorf("go tool -n opa: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(strings.TrimSpace(string(out)), "run", "--server", "--addr", addr,
		"--tls-cert-file", certFile, "--tls-private-key-file", keyFile,
		"--log-level", "error", "--bundle", bundleFile)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	ts.stops = append(ts.stops, func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	for i := 0; i < 100; i++ {
		if resp, err := client.Get("https://" + addr + "/health?bundles"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				ts.list = append(ts.list, target{name: "opa", url: "https://" + addr + "/v1/data/palisade/admission/decision", opa: true})
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("opa did not become healthy")
}

// handshakeEOFFilter drops net/http's "TLS handshake error ...: EOF"
// lines and passes every other server error through.
type handshakeEOFFilter struct{ w io.Writer }

func (f handshakeEOFFilter) Write(p []byte) (int, error) {
	if line := string(p); strings.Contains(line, "TLS handshake error") && strings.HasSuffix(strings.TrimSpace(line), "EOF") {
		return len(p), nil
	}
	return f.w.Write(p)
}
