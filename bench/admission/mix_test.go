package main

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/palisade-dev/palisade/admission"
	"github.com/palisade-dev/palisade/bundles"
	"github.com/palisade-dev/palisade/internal/gctune"
)

// BenchmarkMix serves the load's review mix (body: 60% compliant, 30%
// log violations, 10% privileged), and each kind of review alone,
// in-process through Palisade's handler and through the floor's, one
// review per iteration, each on a new goroutine as net/http serves it.
// The garbage collector is set as palisade admission sets it, unless
// GOGC is set (GOGC=off counts the requests' own work). It is the
// per-request server work of the load benchmark without TLS, HTTP/2 and
// the loader: the difference between the two is what Palisade adds to
// the floor.
func BenchmarkMix(b *testing.B) {
	if os.Getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(gctune.Percent))
	}
	eng := mixEngine(b)
	h, err := admission.NewHandler(admission.Options{Engines: fixedEngine{eng}, Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	mix := make([][]byte, 10)
	for i := range mix {
		mix[i] = body(i, nil)
	}
	// Each kind of review alone: body(0) is compliant, body(6) has log
	// violations, body(9) is privileged.
	reviews := []struct {
		name   string
		bodies [][]byte
	}{{"mix", mix}, {"compliant", mix[0:1]}, {"log", mix[6:7]}, {"privileged", mix[9:10]}}
	for _, t := range []struct {
		name string
		h    http.Handler
	}{{"palisade", h}, {"noop", http.HandlerFunc(noopHandler)}} {
		for _, r := range reviews {
			b.Run(t.name+"/"+r.name, func(b *testing.B) {
				b.ReportAllocs()
				done := make(chan int)
				i := 0
				for b.Loop() {
					body := r.bodies[i%len(r.bodies)]
					i++
					go func() {
						req := httptest.NewRequest(http.MethodPost, admission.Path, bytes.NewReader(body))
						req.Header.Set("Content-Type", "application/json")
						rec := httptest.NewRecorder()
						t.h.ServeHTTP(rec, req)
						done <- rec.Code
					}()
					if code := <-done; code != http.StatusOK {
						b.Fatalf("status %d", code)
					}
				}
			})
		}
	}
}

// mixEngine is the engine of the load benchmark: policies-example's prod
// cluster.
func mixEngine(b *testing.B) *bundles.Engine {
	_, file, _, _ := runtime.Caller(0)
	_, eng, err := buildEngine(filepath.Join(filepath.Dir(file), "..", "..", "policies-example"), "prod")
	if err != nil {
		b.Fatal(err)
	}
	return eng
}
