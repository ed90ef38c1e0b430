package admission_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/palisade-dev/palisade/admission"
	"github.com/palisade-dev/palisade/policy"
)

// FuzzHandler sends arbitrary bodies to the handler with a real engine:
// it never panics, answers 200 or 4xx, and a 200 is a review with the
// request's uid and, when denied, a reason.
func FuzzHandler(f *testing.F) {
	for _, r := range []request{
		{kind: "Pod", name: "busybox", object: privilegedBusybox()},
		{kind: "Pod", name: "web", object: pod("web", "payments", podSpec(webContainer()))},
		{kind: "PodExecOptions", namespace: "payments", name: "web", operation: admissionv1.Connect, subResource: "exec",
			object: map[string]any{"apiVersion": "v1", "kind": "PodExecOptions", "container": "web"}},
		{kind: "Pod", name: "busybox", operation: admissionv1.Delete, oldObject: privilegedBusybox()},
		{kind: "Deployment", group: "apps", name: "web", operation: admissionv1.Update,
			object:    map[string]any{"kind": "Deployment", "spec": map[string]any{"template": map[string]any{"spec": podSpec(webContainer())}}},
			oldObject: map[string]any{"kind": "Deployment"}},
	} {
		f.Add(reviewBody(f, r))
	}
	for _, s := range []string{
		``, `{}`, `null`, `[]`, `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`,
		`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","object":{"kind":"Pod","spec":{"containers":[{"image":7}]}}}}`,
		`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","operation":"CREATE","kind":{"kind":"Pod"},"object":{"kind":"Pod","spec":{"containers":"x"}}}}`,
		`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","object":{"kind":"Pod","spec":{"containers":[{"name":"a","securityContext":{"runAsUser":1e400}}]}}}}`,
	} {
		f.Add([]byte(s))
	}
	h := newHandler(f, admission.Options{Engines: source{engine(f, policy.ModeEnforce)}, MaxRequestBytes: 64 << 10})
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, admission.Path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch {
		case rec.Code == http.StatusOK:
		case rec.Code >= 400 && rec.Code < 500:
			return
		default:
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		var out admissionv1.AdmissionReview
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("200 with an undecodable body: %v", err)
		}
		// The uid as sent: field names match exactly, the last of
		// repeated keys wins.
		var in struct {
			Request map[string]any `json:"request"`
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if err := dec.Decode(&in); err != nil {
			t.Fatalf("200 for a body that does not decode: %v", err)
		}
		uid, _ := in.Request["uid"].(string)
		if out.Response == nil || string(out.Response.UID) != uid || uid == "" {
			t.Fatalf("response %+v does not echo uid %q", out.Response, uid)
		}
		if !out.Response.Allowed && (out.Response.Result == nil || out.Response.Result.Message == "") {
			t.Fatalf("denied without a message: %+v", out.Response)
		}
	})
}
