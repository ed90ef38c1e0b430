package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"golang.org/x/sys/unix"

	"github.com/palisade-dev/palisade/bench/internal/cpustat"
	"github.com/palisade-dev/palisade/bundles"
)

// result is what the loader reports for one target and rate.
type result struct {
	Sent, Errors  int
	Wrong         int // answered, but not with the decision the engine makes in-process
	P50, P99, Max time.Duration
	// LagP99 is the loader's own imprecision: how late the 99th
	// percentile request left the dispatcher. It is part of the latency
	// above, never subtracted from it.
	LagP99   time.Duration
	Steal    float64 // % of CPU time the hypervisor took during the run (set by the parent)
	Reruns   int     // runs before this one that took more steal than -max-steal (set by the parent)
	Achieved float64 // successful responses per second
	// HandlerP50 and HandlerP99 are the server's handler time, and
	// ServerCPU the serving process's CPU time per request sent, all it
	// did (HTTP/2, TLS, JSON, the decision, garbage collection): set by
	// the parent for the targets it serves.
	HandlerP50, HandlerP99, ServerCPU time.Duration
	// GCCycles is how many collections the serving process ran during
	// the run, and GCCPU the collector's CPU time per request sent (the
	// runtime's estimate, /cpu/classes/gc/total): set by the parent.
	GCCycles int
	GCCPU    time.Duration
	// LoaderCPU is the loader's CPU time per request sent, from the
	// first request to the last answer (not its start-up): what it took
	// from the CPUs the server needed.
	LoaderCPU time.Duration
}

// expectation is the decision a review must get: what the bundle's
// engine decides in-process for the same request.
type expectation struct {
	allowed  bool
	warnings int
}

// answer is the part of a response the loader checks: an AdmissionReview
// (response) or OPA's data API (result).
type answer struct {
	Response *struct {
		Allowed  bool     `json:"allowed"`
		Warnings []string `json:"warnings"`
	} `json:"response"`
	Result *struct {
		Allowed  bool     `json:"allowed"`
		Warnings []string `json:"warnings"`
	} `json:"result"`
}

// check compares a response body with the expected decision.
func check(body []byte, want expectation) error {
	var a answer
	if err := json.Unmarshal(body, &a); err != nil {
		return fmt.Errorf("undecodable answer: %w", err)
	}
	allowed, warnings := false, 0
	switch {
	case a.Response != nil:
		allowed, warnings = a.Response.Allowed, len(a.Response.Warnings)
	case a.Result != nil:
		allowed, warnings = a.Result.Allowed, len(a.Result.Warnings)
	default:
		return errors.New("answer without a decision")
	}
	if allowed != want.allowed || warnings != want.warnings {
		return fmt.Errorf("allowed %v with %d warnings, want %v with %d", allowed, warnings, want.allowed, want.warnings)
	}
	return nil
}

// reqTimeout is how long the loader waits for answers after it sent the
// last request; what is unanswered then failed.
const reqTimeout = 5 * time.Second

// dispatch sends request i, by calling send(i), at start + i*interval.
//
// Go's timers fire on the runtime's network poller, whose sleeps have
// millisecond resolution, so a ticker-driven dispatcher sends most
// requests 0.5–1 ms late at 1,000 req/s and that lateness is counted as
// latency (it is measured from the scheduled time). The dispatcher
// therefore sleeps on its own OS thread with nanosleep, which the kernel
// wakes within tens of microseconds, and sends every request whose time
// has come itself (h2Conn.send writes it at once, or queues it behind
// the server's stream limit). Lateness that remains (the machine's CPUs
// are busy serving) still counts.
func dispatch(n int, start time.Time, interval time.Duration, send func(int)) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for next := 0; next < n; {
		if wait := time.Until(start.Add(time.Duration(next) * interval)); wait > 0 {
			ts := unix.NsecToTimespec(wait.Nanoseconds())
			for unix.Nanosleep(&ts, &ts) == unix.EINTR {
			}
		}
		now := time.Now()
		for ; next < n && !start.Add(time.Duration(next)*interval).After(now); next++ {
			send(next)
		}
	}
}

// sender sends the loader's requests to a target and reports each
// answer to the done function it was made with.
type sender interface {
	send(req int, body []byte)
	close()
}

// dial connects to the target: over HTTP/2 with h2Conn, or, when the
// server does not negotiate it (opa run's TLS listener speaks
// HTTP/1.1 only), with net/http's client.
func dial(rawURL string, cfg *tls.Config, done func(req, status int, body []byte, err error)) (sender, error) {
	c, err := dialH2(rawURL, cfg, done)
	if errors.Is(err, errNotH2) {
		return newHTTP1Sender(rawURL, cfg, done), nil
	}
	return c, err
}

// http1Sender sends each request from one of http1Workers goroutines
// with net/http's client, over keep-alive HTTP/1.1 connections.
type http1Sender struct {
	jobs chan h2Request
	wg   sync.WaitGroup
}

// http1Workers bounds the HTTP/1.1 requests in flight.
const http1Workers = 512

func newHTTP1Sender(rawURL string, cfg *tls.Config, done func(req, status int, body []byte, err error)) *http1Sender {
	client := &http.Client{Timeout: reqTimeout, Transport: &http.Transport{TLSClientConfig: cfg, MaxIdleConnsPerHost: http1Workers}}
	s := &http1Sender{jobs: make(chan h2Request, 1<<16)}
	for range http1Workers {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			for r := range s.jobs {
				resp, err := client.Post(rawURL, "application/json", bytes.NewReader(r.body))
				if err != nil {
					done(r.req, 0, nil, err)
					continue
				}
				answer, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				done(r.req, resp.StatusCode, answer, err)
			}
		}()
	}
	return s
}

func (s *http1Sender) send(req int, body []byte) { s.jobs <- h2Request{req, body} }

func (s *http1Sender) close() {
	close(s.jobs)
	s.wg.Wait()
}

// runLoad is the loader process: open-loop constant arrival rate, latency
// measured from each request's scheduled send time.
func runLoad(args []string) {
	fs := flag.NewFlagSet("load", flag.ExitOnError)
	url := fs.String("url", "", "target URL")
	caFile := fs.String("ca", "", "CA bundle")
	rate := fs.Int("rate", 200, "requests/s")
	dur := fs.Duration("duration", 10*time.Second, "duration")
	opa := fs.Bool("opa", false, "send OPA data API input instead of reviews")
	decides := fs.Bool("check", true, "check every decision against the engine's (off for the no-op floor, which allows everything)")
	bundleFile := fs.String("bundle", "", "bundle the target decides with: the engine builds OPA's input and the expected decisions")
	_ = fs.Parse(args)
	// The loader's own collections are not what is measured: a load tool
	// in C (wrk) has none. It keeps little live data, so a high GOGC costs
	// a few tens of megabytes.
	debug.SetGCPercent(1000)
	eng, err := inputEngine(*bundleFile)
	if err != nil {
		log.Fatal(err)
	}
	caPEM, err := os.ReadFile(*caFile)
	if err != nil {
		log.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	bodies := make([][]byte, 100)
	want := make([]expectation, len(bodies))
	for i := range bodies {
		var input *bundles.Engine
		if *opa {
			input = eng
		}
		bodies[i] = body(i, input)
		want[i] = expected(i, eng)
	}
	n := int(float64(*rate) * dur.Seconds())
	lat, lag := make([]time.Duration, n), make([]time.Duration, n)
	failed := make([]bool, n)
	// Answers are checked after the run: the loader shares the machine's
	// CPUs with the target, and decoding 1,000 answers a second would take
	// CPU time from the target while it is measured.
	answers := make([][]byte, n)
	var start time.Time
	interval := time.Second / time.Duration(*rate)
	sched := func(i int) time.Time { return start.Add(time.Duration(i) * interval) }
	var outstanding sync.WaitGroup
	outstanding.Add(n)
	once := make([]sync.Once, n)
	done := func(i, status int, answer []byte, err error) {
		once[i].Do(func() {
			if err == nil && status/100 != 2 {
				err = fmt.Errorf("status %d", status)
			}
			lat[i], failed[i] = time.Since(sched(i)), err != nil
			if err == nil {
				answers[i] = answer
			}
			outstanding.Done()
		})
	}
	conn, err := dial(*url, &tls.Config{RootCAs: pool}, done)
	if err != nil {
		log.Fatal(err)
	}
	cpu0, cpuErr := cpustat.Self()
	start = time.Now()
	dispatch(n, start, interval, func(i int) {
		lag[i] = time.Since(sched(i))
		conn.send(i, bodies[i%len(bodies)])
	})
	// Requests unanswered reqTimeout after the last was sent fail, with
	// the time they waited as their latency.
	finished := make(chan struct{})
	go func() { outstanding.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(reqTimeout):
		for i := range n {
			done(i, 0, nil, errors.New("no answer in time"))
		}
	}
	conn.close()
	cpu1, cpuErr1 := cpustat.Self()
	elapsed := time.Since(start)
	r := result{Sent: n}
	if cpuErr == nil && cpuErr1 == nil {
		r.LoaderCPU = (cpu1 - cpu0) / time.Duration(n)
	}
	var ok []time.Duration
	for i := range n {
		if failed[i] {
			r.Errors++
		}
		if !failed[i] && *decides {
			if err := check(answers[i], want[i%len(bodies)]); err != nil {
				r.Wrong++
				log.Printf("request %d: %v", i, err)
			}
		}
		ok = append(ok, lat[i]) // errors count too: their latency is what a caller waited
	}
	slices.Sort(ok)
	slices.Sort(lag)
	r.LagP99 = lag[n*99/100]
	r.P50, r.P99, r.Max = ok[len(ok)/2], ok[len(ok)*99/100], ok[len(ok)-1]
	r.Achieved = float64(n-r.Errors) / elapsed.Seconds()
	_ = json.NewEncoder(os.Stdout).Encode(r)
}

// body returns review i of the mix: 60% compliant, 30% with log
// violations, 10% privileged.
// With eng set, the body is OPA's data API request with the input eng
// builds, so that plain OPA decides on exactly what Palisade does.
func body(i int, eng *bundles.Engine) []byte {
	c := map[string]any{
		"name": "app", "image": "ghcr.io/acme/app:1.4.2",
		"resources":       map[string]any{"limits": map[string]any{"memory": "256Mi"}, "requests": map[string]any{"cpu": "100m"}},
		"securityContext": map[string]any{"runAsNonRoot": true, "allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "capabilities": map[string]any{"drop": []any{"ALL"}}},
	}
	switch k := i % 10; {
	case k == 9:
		c["securityContext"] = map[string]any{"privileged": true}
	case k >= 6:
		c["image"] = "docker.io/library/nginx:1.27"
		delete(c, "resources")
		c["securityContext"] = map[string]any{}
	}
	uid := fmt.Sprintf("00000000-0000-0000-0000-%012d", i)
	pod := map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": fmt.Sprintf("web-%d", i), "namespace": "shop", "labels": map[string]any{"app": "web"}},
		"spec":     map[string]any{"automountServiceAccountToken": false, "containers": []any{c}},
	}
	req := map[string]any{
		"uid": uid, "kind": map[string]any{"group": "", "version": "v1", "kind": "Pod"},
		"namespace": "shop", "name": fmt.Sprintf("web-%d", i), "operation": "CREATE", "subResource": "",
		"userInfo": map[string]any{"username": "system:serviceaccount:kube-system:replicaset-controller", "groups": []any{"system:serviceaccounts"}},
		"object":   pod,
	}
	var v any = map[string]any{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req}
	if eng != nil {
		input, err := eng.AdmissionInput(&bundles.Request{
			UID: uid, Kind: bundles.GroupVersionKind{Version: "v1", Kind: "Pod"}, Namespace: "shop",
			Name: fmt.Sprintf("web-%d", i), Operation: "CREATE",
			UserInfo: bundles.UserInfo{Username: "system:serviceaccount:kube-system:replicaset-controller", Groups: []string{"system:serviceaccounts"}},
			Object:   pod,
		}, bundles.Facts{Now: time.Now()})
		if err != nil {
			log.Fatal(err)
		}
		plain, err := ast.JSON(input)
		if err != nil {
			log.Fatal(err)
		}
		v = map[string]any{"input": plain}
	}
	b, _ := json.Marshal(v)
	return b
}

// expected is the decision the engine makes in-process for review i.
func expected(i int, eng *bundles.Engine) expectation {
	var rv struct {
		Request bundles.Request `json:"request"`
	}
	if err := json.Unmarshal(body(i, nil), &rv); err != nil {
		log.Fatal(err)
	}
	d, err := eng.Admission(context.Background(), &rv.Request, bundles.Facts{Now: time.Now()})
	if err != nil {
		log.Fatal(err)
	}
	return expectation{allowed: d.Allowed, warnings: len(d.Warnings)}
}

// inputEngine compiles the bundle the targets serve, for its input builder.
func inputEngine(file string) (*bundles.Engine, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	b, err := bundles.Read(raw, nil, 0)
	if err != nil {
		return nil, err
	}
	return bundles.NewEngine(context.Background(), b)
}
