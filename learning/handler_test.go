package learning

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

const transportToken = "s3cret-token"

// transportServer serves a real Handler over a real Store, authenticated
// by TokenFileAuth with transportToken; it returns the handler, the store
// and the token file.
func transportServer(t testing.TB) (http.Handler, *Store, string) {
	t.Helper()
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(transportToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	now := transportT0
	store := transportOpenStore(t, filepath.Join(dir, "store"), &now)
	return NewHandler(store, &TokenFileAuth{Path: tokenFile}, slog.New(slog.DiscardHandler)), store, tokenFile
}

func transportPost(h http.Handler, token string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, BatchesPath, bytes.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func transportJSON(t testing.TB, v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestHandlerAppliesAnAuthenticatedBatch(t *testing.T) {
	h, store, _ := transportServer(t)
	body := transportJSON(t, transportBatch("n1", "b", 1, "rs", 3, transportT0, "web-1", "/bin/a"))
	for _, wantApplied := range []bool{true, false} {
		rec := transportPost(h, transportToken, body)
		if rec.Code != http.StatusOK {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		var resp BatchResponse
		if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil || resp.ID != "n1/b/1" || resp.Applied != wantApplied {
			t.Errorf("response %s (%v), want id n1/b/1 applied %v", rec.Body, err, wantApplied)
		}
	}
	if ev := transportEvidence(t, store, "rs", "/bin/a"); ev.Count != 3 {
		t.Errorf("count %d, want 3", ev.Count)
	}

	req := httptest.NewRequest(http.MethodGet, StatusPath, nil)
	req.Header.Set("Authorization", "Bearer "+transportToken)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var st StatusResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &st); rec.Code != http.StatusOK || err != nil || len(st.Rulesets) != 1 || st.Rulesets[0].Behaviours != 1 || st.Rulesets[0].Workloads != 1 {
		t.Errorf("status %d %s (%v)", rec.Code, rec.Body, err)
	}
}

func TestHandlerRefusesUnauthenticatedRequests(t *testing.T) {
	h, store, _ := transportServer(t)
	body := transportJSON(t, transportBatch("n1", "b", 1, "rs", 1, transportT0, "", "/bin/a"))
	for _, tt := range []struct {
		name, header string
	}{
		{"no authorization header", ""},
		{"wrong token", "Bearer not-the-token"},
		{"token a prefix of the right one", "Bearer " + transportToken[:4]},
		{"basic auth", "Basic " + transportToken},
		{"empty bearer", "Bearer "},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, req := range []*http.Request{
				httptest.NewRequest(http.MethodPost, BatchesPath, bytes.NewReader(body)),
				httptest.NewRequest(http.MethodGet, StatusPath, nil),
			} {
				if tt.header != "" {
					req.Header.Set("Authorization", tt.header)
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusUnauthorized || rec.Header().Get("WWW-Authenticate") == "" {
					t.Errorf("%s %s: status %d, want 401 with WWW-Authenticate", req.Method, req.URL.Path, rec.Code)
				}
				if strings.Contains(rec.Body.String(), transportToken) {
					t.Error("the response echoes the token")
				}
			}
		})
	}
	if len(store.Rulesets()) != 0 {
		t.Error("an unauthenticated batch was stored")
	}
}

func TestHandlerRotatedTokenFileTakesEffect(t *testing.T) {
	h, _, tokenFile := transportServer(t)
	if err := os.WriteFile(tokenFile, []byte("rotated"), 0o600); err != nil {
		t.Fatal(err)
	}
	body := transportJSON(t, transportBatch("n1", "b", 1, "rs", 1, transportT0, "", "/bin/a"))
	if rec := transportPost(h, transportToken, body); rec.Code != http.StatusUnauthorized {
		t.Errorf("old token after rotation: %d, want 401", rec.Code)
	}
	if rec := transportPost(h, "rotated", body); rec.Code != http.StatusOK {
		t.Errorf("new token after rotation: %d %s, want 200", rec.Code, rec.Body)
	}
}

func TestHandlerBadInputIs4xxNotAPanic(t *testing.T) {
	valid := func(edit func(b *Batch)) []byte {
		b := transportBatch("n1", "b", 1, "rs", 1, transportT0, "p", "/bin/a")
		edit(b)
		return transportJSON(t, b)
	}
	for _, tt := range []struct {
		name string
		body []byte
		code int
		msg  string
	}{
		{"empty body", nil, 400, "malformed batch JSON"},
		{"not JSON", []byte("hello"), 400, "malformed batch JSON"},
		{"truncated JSON", []byte(`{"id":"n1/b/1","observations":[`), 400, "malformed batch JSON"},
		{"wrong type", []byte(`{"id":7}`), 400, "malformed batch JSON"},
		{"two objects", append(valid(func(*Batch) {}), []byte(`{}`)...), 400, "data after the batch"},
		{"JSON null", []byte("null"), 400, "id is empty"},
		{"empty id", valid(func(b *Batch) { b.ID = "" }), 400, "id is empty"},
		{"id without seq", valid(func(b *Batch) { b.ID = "n1/b" }), 400, "not <node>/<boot>/<seq>"},
		{"id with seq 0", valid(func(b *Batch) { b.ID = "n1/b/0" }), 400, "positive decimal"},
		{"id with a negative seq", valid(func(b *Batch) { b.ID = "n1/b/-3" }), 400, "positive decimal"},
		{"node differs from the id", valid(func(b *Batch) { b.Node = "n2" }), 400, "differs"},
		{"unknown kind", valid(func(b *Batch) { b.Observations[0].Key.Kind = "network" }), 400, "key.kind"},
		{"file operation on a process", valid(func(b *Batch) { b.Observations[0].Key.Operation = "createFile" }), 400, "key.operation"},
		{"empty path", valid(func(b *Batch) { b.Observations[0].Key.Path = "" }), 400, "key.path"},
		{"bad ruleset name", valid(func(b *Batch) { b.Observations[0].Ruleset = "../x y" }), 400, "ruleset"},
		{"no namespace", valid(func(b *Batch) { b.Observations[0].Workload.Namespace = "" }), 400, "workload.namespace"},
		{"zero count", valid(func(b *Batch) { b.Observations[0].Evidence.Count = 0 }), 400, "count"},
		{"no first seen", valid(func(b *Batch) { b.Observations[0].Evidence.FirstSeen = time.Time{} }), 400, "firstSeen"},
		{"last before first", valid(func(b *Batch) { b.Observations[0].Evidence.LastSeen = transportT0.Add(-time.Second) }), 400, "firstSeen"},
		{"too many pods", valid(func(b *Batch) { b.Observations[0].Evidence.Pods = []string{"a", "b", "c", "d"} }), 400, "pods"},
		{"too large", []byte(`{"id":"` + strings.Repeat("x", MaxBatchBytes) + `"}`), 413, "larger than"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h, store, _ := transportServer(t)
			rec := transportPost(h, transportToken, tt.body)
			if rec.Code != tt.code || !strings.Contains(rec.Body.String(), tt.msg) {
				t.Errorf("status %d %q, want %d containing %q", rec.Code, rec.Body, tt.code, tt.msg)
			}
			if len(store.Rulesets()) != 0 {
				t.Error("a refused batch left a profile")
			}
		})
	}
}

func TestHandlerRefusesALargeBodyWithoutContentLength(t *testing.T) {
	h, _, _ := transportServer(t)
	body := io.MultiReader(strings.NewReader(`{"id":"`), strings.NewReader(strings.Repeat("x", MaxBatchBytes+1)))
	req := httptest.NewRequest(http.MethodPost, BatchesPath, body)
	req.ContentLength = -1 // chunked
	req.Header.Set("Authorization", "Bearer "+transportToken)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("status %d, want 413", rec.Code)
	}
}

func TestHandlerMethodsAndPaths(t *testing.T) {
	h, _, _ := transportServer(t)
	for _, tt := range []struct {
		method, path string
		code         int
	}{
		{http.MethodGet, BatchesPath, http.StatusMethodNotAllowed},
		{http.MethodPost, StatusPath, http.StatusMethodNotAllowed},
		{http.MethodGet, "/learning/v1/other", http.StatusNotFound},
	} {
		req := httptest.NewRequest(tt.method, tt.path, nil)
		req.Header.Set("Authorization", "Bearer "+transportToken)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tt.code {
			t.Errorf("%s %s: %d, want %d", tt.method, tt.path, rec.Code, tt.code)
		}
	}
}

// FuzzHandlerBatches: whatever the body, the handler answers 200, 400 or
// 413 — never a panic or a 500 — and what it accepts is valid.
func FuzzHandlerBatches(f *testing.F) {
	f.Add(transportJSON(f, transportBatch("n1", "b", 1, "rs", 1, transportT0, "p", "/bin/a")))
	f.Add([]byte(`{"id":"n/b/1","node":"n","observations":[{"ruleset":"r","workload":{"namespace":"a","workload":"Pod/x","container":"c"},"key":{"kind":"file","operation":"deleteFile","path":"/x"},"evidence":{"count":18446744073709551615,"firstSeen":"2026-01-01T00:00:00Z","lastSeen":"2026-01-01T00:00:00Z"}}]}`))
	f.Add([]byte(`{"id":"n/b/1","node":"n","observations":null}`))
	f.Add([]byte(`{"id":"n/b/99999999999999999999"}`))
	f.Add([]byte(`[]`))
	f.Add([]byte("\x00"))
	h, store, _ := transportServer(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := transportPost(h, transportToken, body)
		switch rec.Code {
		case http.StatusOK:
			var b Batch
			if err := json.Unmarshal(body, &b); err != nil {
				t.Fatalf("accepted a body that does not decode: %v", err)
			}
			if err := validateBatch(&b); err != nil {
				t.Fatalf("accepted an invalid batch: %v", err)
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("status %d %s", rec.Code, rec.Body)
		}
		_ = store.Status()
	})
}

func TestHandlerCountsBatchesByResult(t *testing.T) {
	_, store, tokenFile := transportServer(t)
	reg := prometheus.NewRegistry()
	h := NewHandler(store, &TokenFileAuth{Path: tokenFile}, slog.New(slog.DiscardHandler), HandlerRegisterer(reg))
	body := transportJSON(t, transportBatch("n1", "b", 1, "rs", 1, transportT0, "", "/bin/a"))
	transportPost(h, transportToken, body)
	transportPost(h, transportToken, body)
	transportPost(h, "wrong", body)
	transportPost(h, transportToken, []byte("{"))
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		if f.GetName() != metricBatchesReceived {
			continue
		}
		for _, m := range f.GetMetric() {
			got[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
	}
	want := map[string]float64{receivedApplied: 1, receivedDuplicate: 1, receivedDenied: 1, receivedInvalid: 1}
	if !maps.Equal(got, want) {
		t.Errorf("%s = %v, want %v", metricBatchesReceived, got, want)
	}
}
