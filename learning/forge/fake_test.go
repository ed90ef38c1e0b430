package forge_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// request is what a fake forge received.
type request struct {
	Method, Path, Query string
	Auth                string // Authorization or PRIVATE-TOKEN
	Body                map[string]any
}

// fakeForge is an httptest server answering from routes ("METHOD
// escaped-path" to a handler) and recording every request. Unit tests
// only: the Gitea client is tested against a real Gitea.
type fakeForge struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []request
}

func newFake(t *testing.T, routes map[string]func(w http.ResponseWriter, r *http.Request)) *fakeForge {
	t.Helper()
	f := &fakeForge{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := request{Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery, Auth: r.Header.Get("Authorization")}
		if tok := r.Header.Get("PRIVATE-TOKEN"); tok != "" {
			rec.Auth = "PRIVATE-TOKEN " + tok
		}
		if raw, _ := io.ReadAll(r.Body); len(raw) > 0 {
			if err := json.Unmarshal(raw, &rec.Body); err != nil {
				t.Errorf("%s %s: body is not JSON: %s", r.Method, rec.Path, raw)
			}
		}
		f.mu.Lock()
		f.reqs = append(f.reqs, rec)
		f.mu.Unlock()
		h, ok := routes[r.Method+" "+rec.Path]
		if !ok {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"message":"404 Not Found"}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		h(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeForge) requests() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]request(nil), f.reqs...)
}

// last returns the last request to METHOD path.
func (f *fakeForge) last(t *testing.T, method, path string) request {
	t.Helper()
	reqs := f.requests()
	for i := len(reqs) - 1; i >= 0; i-- {
		if reqs[i].Method == method && reqs[i].Path == path {
			return reqs[i]
		}
	}
	t.Fatalf("no %s %s among %+v", method, path, reqs)
	return request{}
}

func reply(body string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, body) }
}

func writeToken(t *testing.T, token string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// echoAuth fails with a message that quotes the credentials, as a badly
// behaved proxy might: the client's error must not.
func echoAuth(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusInternalServerError)
	msg := "bad credentials " + r.Header.Get("Authorization") + r.Header.Get("PRIVATE-TOKEN")
	raw, _ := json.Marshal(map[string]string{"message": msg})
	_, _ = w.Write(raw)
}

func mustNotContain(t *testing.T, err error, secret string) {
	t.Helper()
	if err == nil {
		t.Fatal("want an error")
	}
	if strings.Contains(err.Error(), secret) {
		t.Fatalf("error contains the token: %v", err)
	}
}
