package admission_test

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"

	"github.com/palisade-dev/palisade/admission"
	"github.com/palisade-dev/palisade/policy"
)

// BenchmarkHandler measures one review end to end through the handler
// (decode, facts, evaluation, response, decision log and metrics), without
// the network.
func BenchmarkHandler(b *testing.B) {
	h := newHandler(b, admission.Options{
		Engines:    source{engine(b, policy.ModeEnforce)},
		Registerer: prometheus.NewRegistry(),
		// The decision log is encoded as palisade admission encodes it.
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)),
	})
	for _, bc := range []struct {
		name string
		req  request
	}{
		{"denied privileged pod", request{kind: "Pod", name: "busybox", object: privilegedBusybox()}},
		{"allowed compliant pod", request{kind: "Pod", name: "web", object: pod("web", "default", podSpec(webContainer()))}},
		{"denied exec", request{kind: "PodExecOptions", name: "web", operation: admissionv1.Connect, subResource: "exec",
			object: map[string]any{"apiVersion": "v1", "kind": "PodExecOptions", "container": "web"}}},
		{"allowed delete", request{kind: "Pod", name: "busybox", operation: admissionv1.Delete, oldObject: privilegedBusybox()}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			body := reviewBody(b, bc.req)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			// Each review is served on a new goroutine, as net/http
			// serves each request: its stack starts small and grows.
			done := make(chan int)
			for b.Loop() {
				go func() {
					req := httptest.NewRequest(http.MethodPost, admission.Path, bytes.NewReader(body))
					req.Header.Set("Content-Type", "application/json")
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, req)
					done <- rec.Code
				}()
				if code := <-done; code != http.StatusOK {
					b.Fatalf("status %d", code)
				}
			}
		})
	}
}
