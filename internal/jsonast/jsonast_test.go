package jsonast

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

// reference is what Decode must equal: encoding/json with UseNumber,
// then ast.InterfaceToValue.
func reference(data []byte) (ast.Value, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("trailing data")
	}
	return ast.InterfaceToValue(x)
}

// same reports whether two values are equal, numbers by their literal
// (ast.Compare finds 1 and 1.0 equal; json.Number keeps them apart).
func same(a, b ast.Value) bool {
	switch x := a.(type) {
	case ast.Number:
		y, ok := b.(ast.Number)
		return ok && string(x) == string(y)
	case *ast.Array:
		y, ok := b.(*ast.Array)
		if !ok || x.Len() != y.Len() {
			return false
		}
		for i := range x.Len() {
			if !same(x.Elem(i).Value, y.Elem(i).Value) {
				return false
			}
		}
		return true
	case ast.Object:
		y, ok := b.(ast.Object)
		if !ok || x.Len() != y.Len() {
			return false
		}
		eq := true
		x.Foreach(func(k, v *ast.Term) {
			w := y.Get(k)
			eq = eq && w != nil && same(v.Value, w.Value)
		})
		return eq
	}
	return ast.Compare(a, b) == 0
}

// check decodes data both ways and fails the test if they differ: both
// must succeed with the same value, or both fail.
func check(t testing.TB, data []byte) {
	t.Helper()
	want, wantErr := reference(data)
	got, err := Decode(data)
	switch {
	case (err == nil) != (wantErr == nil):
		t.Fatalf("Decode(%q): error %v, reference error %v", data, err, wantErr)
	case err == nil && !same(got, want):
		t.Fatalf("Decode(%q) = %v, reference %v", data, got, want)
	}
}

var cases = []string{
	`{}`, `[]`, `null`, `true`, `false`, `0`, `-0`, `1.0`, `1e400`, `-1.5E-7`, `12345678901234567890123`,
	`""`, `"a"`, ` {"a" : [1, 2.50, {"b": null}], "c": "d"} `,
	`{"esc": "\" \\ \/ \b \f \n \r \t \u0041 \u00e9 \u2028 \u003c"}`,
	`{"emoji": "\ud83d\ude00", "raw": "😀 é"}`,
	`{"lone": "\ud800"}`, `{"lone2": "x\udc00y"}`, `{"pair-then-letter": "\ud800\u0041"}`,
	`{"escaped backslash": "\\ud800"}`,
	"{\"bad utf8\": \"a\xffb\xc3\"}", "{\"bad\xfekey\": 1}",
	`{"dup": 1, "dup": 2}`, `{"a": {"dup": [1], "dup": {"x": true}}, "b": 3}`,
	`{"a": 1}{"b": 2}`, `{"a": 1,}`, `{"a": 01}`, `{"a": .5}`, `{"a": nan}`, `{"a": 1-2}`, `{"a": "\x"}`,
	"{\"ctl\": \"a\x01b\"}", "{\"ctl\x1f\": 1}", "{\"tab\": \"a\tb\"}", "[\"del\x7f\"]", "\xef\xbb\xbf{}",
	"[\"\x1a\\b\"]", "{\"a\x01\\n\": 1}", // a control character before an escape
	`[1.]`, `[-]`, `[1e]`, `[1e+]`, `[-01]`, `[+1]`, `[0x10]`, `["\u12"]`, `["\u12g4"]`, `["\u+123"]`, `["\U0041"]`, `[1,]`, `[,1]`, `{,}`,
	`{"a" 1}`, `{"a":}`, `{1: 2}`, `[true false]`, `[nul]`, `[Infinity]`, `[NaN]`, "[1]\x00", "[1]\v", `{"a"}`, ``, ` `, `[1, 2`, `"abc`, `{"a": tru}`,
	`{"kind": "Pod", "metadata": {"name": "web", "labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx:1.27", "securityContext": {"privileged": true, "runAsUser": 0}}]}}`,
}

func TestDecodeMatchesReference(t *testing.T) {
	for _, c := range cases {
		check(t, []byte(c))
	}
	deep := strings.Repeat("[", 300) + strings.Repeat("]", 300)
	check(t, []byte(deep))
}

func TestDecodeErrors(t *testing.T) {
	_, err := Decode([]byte(`{"a": 1,}`))
	if err == nil || !strings.Contains(err.Error(), "invalid character '}'") {
		t.Errorf("trailing comma: error %v, want encoding/json's", err)
	}
	// fastjson nests at most 300 deep; encoding/json 10,000.
	deep := strings.Repeat("[", 301) + strings.Repeat("]", 301)
	if _, err := Decode([]byte(deep)); err == nil || !strings.Contains(err.Error(), "depth") {
		t.Errorf("301 deep: error %v, want a depth error", err)
	}
}

func TestDocumentValues(t *testing.T) {
	d, err := Parse([]byte(`{"request": {"uid": "u1", "object": {"b": [1, "x"]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	obj := d.Root().Get("request", "object")
	v, err := d.Value(obj)
	d.Release()
	if err != nil {
		t.Fatal(err)
	}
	// The value must not share memory with the released parser.
	if _, err := Parse([]byte(`{"zzzzzzzzzz": [9, "yyyyyyyy"]}`)); err != nil {
		t.Fatal(err)
	}
	if want := ast.MustParseTerm(`{"b": [1, "x"]}`).Value; !same(v, want) {
		t.Errorf("object = %v, want %v", v, want)
	}
}

func FuzzDecode(f *testing.F) {
	for _, c := range cases {
		f.Add([]byte(c))
	}
	data, err := os.ReadFile("testdata/review.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Fuzz(func(t *testing.T, data []byte) {
		// Larger documents add nothing; deeper ones meet fastjson's
		// depth limit of 300 (TestDecodeErrors), which encoding/json
		// does not have.
		if len(data) > 1<<16 || bytes.Count(data, []byte("["))+bytes.Count(data, []byte("{")) > 250 {
			return
		}
		check(t, data)
	})
}

func BenchmarkDecode(b *testing.B) {
	data, err := os.ReadFile("testdata/review.json")
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name   string
		decode func([]byte) (ast.Value, error)
	}{{"jsonast", Decode}, {"encoding-json+InterfaceToValue", reference}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bc.decode(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
