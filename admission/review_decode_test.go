package admission

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/palisade-dev/palisade/bundles"
	"github.com/palisade-dev/palisade/policy"
)

// testEngine is the prod bundle of policies-example: what AdmissionInput
// adds to a request (image facts) depends on the bundle.
var testEngine = func() func(testing.TB) *bundles.Engine {
	build := sync.OnceValues(func() (*bundles.Engine, error) {
		repo, err := policy.LoadDir("../policies-example")
		if err != nil {
			return nil, err
		}
		b, err := bundles.Build(repo, "prod", "decode")
		if err != nil {
			return nil, err
		}
		return bundles.NewEngine(context.Background(), b)
	})
	return func(tb testing.TB) *bundles.Engine {
		e, err := build()
		if err != nil {
			tb.Fatal(err)
		}
		return e
	}
}()

// referenceRequest decodes a review the plain way, into maps with
// encoding/json (field names exact, numbers as written), for the
// differential test of decodeReview. It checks less; only reviews
// decodeReview accepts are compared.
func referenceRequest(body []byte) (*bundles.Request, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	req, _ := m["request"].(map[string]any)
	str := func(m map[string]any, k string) string { s, _ := m[k].(string); return s }
	kind, _ := req["kind"].(map[string]any)
	user, _ := req["userInfo"].(map[string]any)
	var groups []string
	if gs, ok := user["groups"].([]any); ok {
		groups = make([]string, len(gs))
		for i, g := range gs {
			groups[i], _ = g.(string)
		}
	}
	obj, _ := req["object"].(map[string]any)
	old, _ := req["oldObject"].(map[string]any)
	if req == nil {
		return nil, errors.New("no request")
	}
	return &bundles.Request{
		UID:         str(req, "uid"),
		Kind:        bundles.GroupVersionKind{Group: str(kind, "group"), Version: str(kind, "version"), Kind: str(kind, "kind")},
		Namespace:   str(req, "namespace"),
		Name:        str(req, "name"),
		Operation:   str(req, "operation"),
		SubResource: str(req, "subResource"),
		UserInfo:    bundles.UserInfo{Username: str(user, "username"), Groups: groups},
		Object:      obj,
		OldObject:   old,
	}, nil
}

// checkDecode fails if decodeReview accepts body and its request's input
// differs from the plain decoding's.
func checkDecode(t testing.TB, eng *bundles.Engine, body []byte) {
	t.Helper()
	rv, err := decodeReview(body)
	if err != nil {
		return
	}
	want, err := referenceRequest(body)
	if err != nil {
		t.Fatalf("decodeReview accepted %q, encoding/json: %v", body, err)
	}
	facts := bundles.Facts{}
	a, err := eng.AdmissionInput(rv.req, facts)
	if err != nil {
		t.Fatal(err)
	}
	b, err := eng.AdmissionInput(want, facts)
	if err != nil {
		t.Fatal(err)
	}
	// String shows numbers as written (ast.Compare finds 1 and 1.0
	// equal); objects print in key order.
	if ast.Compare(a, b) != 0 || a.String() != b.String() {
		t.Fatalf("input of %q:\n%v\nplain decoding:\n%v", body, a, b)
	}
}

var decodeSeeds = []string{
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","operation":"CREATE","kind":{"group":"","version":"v1","kind":"Pod"},"namespace":"ns","name":"p","userInfo":{"username":"alice","groups":["g1","g2"]},"object":{"kind":"Pod","spec":{"containers":[{"name":"a","image":"busybox","securityContext":{"privileged":true,"runAsUser":1.0}}]}},"oldObject":null,"dryRun":true}}`,
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","uid":"v","object":{"a":"\ud800","a":"x\u00e9"}}}`,
	"{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":{\"uid\":\"u\",\"name\":\"a\xffb\",\"oldObject\":{\"n\":1e400}}}",
}

func TestDecodeReviewMatchesPlainDecoding(t *testing.T) {
	eng := testEngine(t)
	for _, s := range decodeSeeds {
		if _, err := decodeReview([]byte(s)); err != nil {
			t.Errorf("decodeReview(%q): %v", s, err)
		}
		checkDecode(t, eng, []byte(s))
	}
	body, err := os.ReadFile("../internal/jsonast/testdata/review.json")
	if err != nil {
		t.Fatal(err)
	}
	checkDecode(t, eng, body)
	rv, err := decodeReview(body)
	if err != nil {
		t.Fatal(err)
	}
	if got := PullSecrets(rv.req.ObjectValue); len(got) != 1 || got[0] != "regcred" {
		t.Errorf("pull secrets %v, want [regcred]", got)
	}
}

func TestDecodeReviewFieldErrors(t *testing.T) {
	const head = `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":`
	for body, want := range map[string]string{
		head + `{"uid":5}}`:                                 "request.uid must be a string, not number",
		head + `{"uid":"u","userInfo":{"groups":"g"}}}`:     "request.userInfo.groups must be an array of strings, not string",
		head + `{"uid":"u","userInfo":{"groups":["a",1]}}}`: "request.userInfo.groups[1] must be a string, not number",
		head + `{"uid":"u","kind":[]}}`:                     "request.kind must be an object, not array",
		head + `{"uid":"u","dryRun":"yes"}}`:                "request.dryRun must be a boolean, not string",
		head + `"x"}`:                                       "request must be an object, not string",
		`{"apiVersion":1}`:                                  "apiVersion must be a string, not number",
		`[1]`:                                               "AdmissionReview must be an object, not array",
	} {
		_, err := decodeReview([]byte(body))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("decodeReview(%s): error %v, want %q", body, err, want)
		}
	}
}

func FuzzDecodeReview(f *testing.F) {
	for _, s := range decodeSeeds {
		f.Add([]byte(s))
	}
	eng := testEngine(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		checkDecode(t, eng, body)
	})
}

// BenchmarkDecodeReview compares decoding a review into the decision's
// input (a Deployment with two containers, as the API server sends it)
// with the plain path of the reference decoder: encoding/json into maps,
// then ast.InterfaceToValue.
func BenchmarkDecodeReview(b *testing.B) {
	body, err := os.ReadFile("../internal/jsonast/testdata/review.json")
	if err != nil {
		b.Fatal(err)
	}
	eng := testEngine(b)
	for _, bc := range []struct {
		name   string
		decode func([]byte) (*bundles.Request, error)
	}{
		{"jsonast", func(body []byte) (*bundles.Request, error) {
			rv, err := decodeReview(body)
			if err != nil {
				return nil, err
			}
			return rv.req, nil
		}},
		{"maps", referenceRequest},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				req, err := bc.decode(body)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := eng.AdmissionInput(req, bundles.Facts{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
