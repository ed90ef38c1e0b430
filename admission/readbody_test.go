package admission

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

func TestReadBody(t *testing.T) {
	body := strings.Repeat("x", 5000)
	for _, tc := range []struct {
		name          string
		contentLength int64
		limit         int64
		wantErr       bool
	}{
		{"exact length", int64(len(body)), 1 << 20, false},
		{"unknown length", -1, 1 << 20, false},
		{"length too small", 100, 1 << 20, false},
		{"length too large", 1 << 30, 1 << 20, false},
		{"over the limit", int64(len(body)), 4096, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			var buf bytes.Buffer
			got, err := readBody(&buf, http.MaxBytesReader(w, io.NopCloser(strings.NewReader(body)), tc.limit), tc.contentLength, tc.limit)
			var tooLarge *http.MaxBytesError
			if tc.wantErr {
				if !errors.As(err, &tooLarge) {
					t.Fatalf("err %v, want a MaxBytesError", err)
				}
				return
			}
			if err != nil || string(got) != body {
				t.Fatalf("read %d bytes, err %v; want the body", len(got), err)
			}
			// Sized from the header, the buffer is allocated once.
			var once bytes.Buffer
			once.Grow(len(body) + bytes.MinRead)
			if tc.contentLength == int64(len(body)) && buf.Cap() != once.Cap() {
				t.Errorf("buffer capacity %d, want %d: it grew while reading", buf.Cap(), once.Cap())
			}
		})
	}
}

// TestFieldNamesInterned: the field names of Kubernetes objects that a
// review carries are interned (intern.go), so decoding shares their
// terms.
func TestFieldNamesInterned(t *testing.T) {
	for _, name := range []string{"securityContext", "allowPrivilegeEscalation", "containers", "ephemeralContainers", "dryRun", "userInfo", "jobTemplate", "hostPID"} {
		if !interned(name) {
			t.Errorf("%q is not interned", name)
		}
	}
	if interned("no-such-field") {
		t.Error("an unknown name is interned: the test proves nothing")
	}
}

// interned says whether ast.InternedTerm shares one term for s.
func interned(s string) bool {
	first := ast.InternedTerm(s)
	return ast.InternedTerm(s) == first
}
