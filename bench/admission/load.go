package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/palisade-dev/palisade/policy"
)

// result is what the loader reports for one target and rate.
type result struct {
	Sent, Errors  int
	P50, P99, Max time.Duration
	Achieved      float64 // successful responses per second
}

const (
	reqTimeout = 5 * time.Second
	workers    = 512 // bound on requests in flight
)

// runLoad is the loader process: open-loop constant arrival rate, latency
// measured from each request's scheduled send time.
func runLoad(args []string) {
	fs := flag.NewFlagSet("load", flag.ExitOnError)
	url := fs.String("url", "", "target URL")
	caFile := fs.String("ca", "", "CA bundle")
	rate := fs.Int("rate", 200, "requests/s")
	dur := fs.Duration("duration", 10*time.Second, "duration")
	opa := fs.Bool("opa", false, "send OPA data API input instead of reviews")
	_ = fs.Parse(args)
	caPEM, err := os.ReadFile(*caFile)
	if err != nil {
		log.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	client := &http.Client{Timeout: reqTimeout, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true,
		MaxIdleConnsPerHost: workers,
	}}
	bodies := make([][]byte, 100)
	for i := range bodies {
		bodies[i] = body(i, *opa)
	}
	n := int(float64(*rate) * dur.Seconds())
	lat := make([]time.Duration, n)
	failed := make([]bool, n)
	jobs := make(chan int, n)
	start := time.Now()
	interval := time.Second / time.Duration(*rate)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				sched := start.Add(time.Duration(i) * interval)
				resp, err := client.Post(*url, "application/json", bytes.NewReader(bodies[i%len(bodies)]))
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode/100 != 2 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				lat[i], failed[i] = time.Since(sched), err != nil
			}
		}()
	}
	// Dispatcher: every tick, release the requests whose time has come.
	tick := time.NewTicker(time.Millisecond)
	for next := 0; next < n; {
		now := <-tick.C
		for ; next < n && !start.Add(time.Duration(next)*interval).After(now); next++ {
			jobs <- next
		}
	}
	tick.Stop()
	close(jobs)
	wg.Wait()
	elapsed := time.Since(start)
	r := result{Sent: n}
	var ok []time.Duration
	for i := range n {
		if failed[i] {
			r.Errors++
		}
		ok = append(ok, lat[i]) // errors count too: their latency is what a caller waited
	}
	slices.Sort(ok)
	r.P50, r.P99, r.Max = ok[len(ok)/2], ok[len(ok)*99/100], ok[len(ok)-1]
	r.Achieved = float64(n-r.Errors) / elapsed.Seconds()
	_ = json.NewEncoder(os.Stdout).Encode(r)
}

// body returns review i of the mix: 60% compliant, 30% with log
// violations, 10% privileged.
func body(i int, opa bool) []byte {
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
	if opa {
		// The input Palisade builds (bundles/engine.go): request and facts.
		images := map[string]any{}
		ref := c["image"].(string)
		if img, err := policy.ParseImage(ref); err == nil {
			images[ref] = map[string]any{"registry": img.Registry, "repository": img.Repository, "name": img.Name,
				"tag": img.Tag, "digest": img.Digest, "reference": img.Reference, "valid": true}
		}
		facts := map[string]any{"namespaceLabels": map[string]any{}, "images": images, "now": time.Now().UTC().Format(time.RFC3339Nano)}
		v = map[string]any{"input": map[string]any{"request": req, "facts": facts}}
	}
	b, _ := json.Marshal(v)
	return b
}
