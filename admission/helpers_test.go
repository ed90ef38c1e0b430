package admission_test

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/palisade-dev/palisade/internal/metrics/metricstest"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/palisade-dev/palisade/admission"
	"github.com/palisade-dev/palisade/bundles"
	"github.com/palisade-dev/palisade/policy"
)

// now is the evaluation time of the tests: the legacy_root exception of
// policies-example is still valid, old_debug_tools has expired.
var now = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// engines are built once per mode from policies-example, as production
// builds them.
var engines = map[string]func() (*bundles.Engine, error){
	policy.ModeEnforce: sync.OnceValues(func() (*bundles.Engine, error) { return buildEngine(policy.ModeEnforce) }),
	policy.ModeAudit:   sync.OnceValues(func() (*bundles.Engine, error) { return buildEngine(policy.ModeAudit) }),
}

// buildEngine builds the prod cluster's bundle, with the policy's mode
// changed to mode.
func buildEngine(mode string) (*bundles.Engine, error) {
	repo, err := policy.LoadDir("../policies-example")
	if err != nil {
		return nil, err
	}
	repo.PolicyFor("prod").Spec.Mode = mode
	b, err := bundles.Build(repo, "prod", "rev-"+mode)
	if err != nil {
		return nil, err
	}
	return bundles.NewEngine(context.Background(), b)
}

func engine(tb testing.TB, mode string) *bundles.Engine {
	tb.Helper()
	e, err := engines[mode]()
	if err != nil {
		tb.Fatalf("build %s engine: %v", mode, err)
	}
	return e
}

// source is an EngineSource with a fixed engine (nil: no bundle yet).
type source struct{ e *bundles.Engine }

func (s source) Engine() *bundles.Engine { return s.e }

// switchable is an EngineSource whose engine a test activates, as a
// bundle client does.
type switchable struct {
	e atomic.Pointer[bundles.Engine]
}

func (s *switchable) Engine() *bundles.Engine { return s.e.Load() }

func newHandler(tb testing.TB, o admission.Options) *admission.Handler {
	tb.Helper()
	if o.Now == nil {
		o.Now = func() time.Time { return now }
	}
	h, err := admission.NewHandler(o)
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

// request is the part of an AdmissionRequest a test case sets.
type request struct {
	uid         string
	kind        string // Pod, Deployment, PodExecOptions, ...
	group       string
	namespace   string
	name        string
	operation   admissionv1.Operation
	subResource string
	user        string
	groups      []string
	object      map[string]any
	oldObject   map[string]any
}

// reviewBody encodes an AdmissionReview as the API server sends it.
func reviewBody(tb testing.TB, r request) []byte {
	tb.Helper()
	if r.uid == "" {
		r.uid = "705ab4f5-6393-11e8-b7cc-42010a800002"
	}
	if r.namespace == "" {
		r.namespace = "default"
	}
	if r.operation == "" {
		r.operation = admissionv1.Create
	}
	if r.user == "" {
		r.user = "dev@acme.example"
	}
	raw := func(v map[string]any) runtime.RawExtension {
		if v == nil {
			return runtime.RawExtension{}
		}
		data, err := json.Marshal(v)
		if err != nil {
			tb.Fatal(err)
		}
		return runtime.RawExtension{Raw: data}
	}
	version := "v1"
	rv := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:         types.UID(r.uid),
			Kind:        metav1.GroupVersionKind{Group: r.group, Version: version, Kind: r.kind},
			Resource:    metav1.GroupVersionResource{Group: r.group, Version: version, Resource: strings.ToLower(r.kind) + "s"},
			SubResource: r.subResource,
			Namespace:   r.namespace,
			Name:        r.name,
			Operation:   r.operation,
			UserInfo:    authenticationv1.UserInfo{Username: r.user, Groups: r.groups},
			Object:      raw(r.object),
			OldObject:   raw(r.oldObject),
		},
	}
	data, err := json.Marshal(rv)
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

// post sends a body to the handler and decodes a 200 answer.
func post(tb testing.TB, h http.Handler, body []byte) (*httptest.ResponseRecorder, *admissionv1.AdmissionReview) {
	tb.Helper()
	req := httptest.NewRequest(http.MethodPost, admission.Path+"?timeout=5s", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		return rec, nil
	}
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		tb.Fatalf("decode response: %v\n%s", err, rec.Body)
	}
	if out.Response == nil {
		tb.Fatalf("response without response: %s", rec.Body)
	}
	return rec, &out
}

// A compliant container and pod spec (policies-example/samples/pods.yaml's
// web Deployment).
func webContainer() map[string]any {
	return map[string]any{
		"name":      "web",
		"image":     "ghcr.io/acme/web:1.4.2@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		"resources": map[string]any{"requests": map[string]any{"cpu": "100m"}, "limits": map[string]any{"memory": "128Mi"}},
		"securityContext": map[string]any{
			"allowPrivilegeEscalation": false,
			"readOnlyRootFilesystem":   true,
			"capabilities":             map[string]any{"drop": []any{"ALL"}},
		},
	}
}

func podSpec(containers ...map[string]any) map[string]any {
	cs := make([]any, len(containers))
	for i, c := range containers {
		cs[i] = c
	}
	return map[string]any{
		"automountServiceAccountToken": false,
		"securityContext": map[string]any{
			"runAsNonRoot": true, "runAsUser": 1000,
			"seccompProfile": map[string]any{"type": "RuntimeDefault"},
		},
		"containers": cs,
	}
}

func pod(name, namespace string, spec map[string]any) map[string]any {
	return map[string]any{
		"apiVersion": "v1",
		"kind":       "Pod",
		"metadata":   map[string]any{"name": name, "namespace": namespace},
		"spec":       spec,
	}
}

// privilegedBusybox is the privileged busybox pod of
// policies-example/samples/pods.yaml.
func privilegedBusybox() map[string]any {
	return pod("busybox", "default", map[string]any{"containers": []any{map[string]any{
		"name":            "busybox-container",
		"image":           "busybox:1.36",
		"securityContext": map[string]any{"privileged": true},
	}}})
}

// metricValue reads a metric back (metricstest.Value).
var metricValue = metricstest.Value
