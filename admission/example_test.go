package admission_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/palisade-dev/palisade/admission"
	"github.com/palisade-dev/palisade/bundles"
	"github.com/palisade-dev/palisade/policy"
)

// staticEngine is an EngineSource with one engine; in production it is
// the *bundles.Client that follows the bundle service.
type staticEngine struct{ e *bundles.Engine }

func (s staticEngine) Engine() *bundles.Engine { return s.e }

// The API server sends the privileged busybox pod of
// policies-example/samples/pods.yaml; the webhook denies it with every
// blocking rule, which kubectl prints after
// `admission webhook "validate.palisade.dev" denied the request: `.
func ExampleHandler() {
	repo, err := policy.LoadDir("../policies-example")
	if err != nil {
		log.Fatal(err)
	}
	b, err := bundles.Build(repo, "prod", "4f2a9c1")
	if err != nil {
		log.Fatal(err)
	}
	eng, err := bundles.NewEngine(context.Background(), b)
	if err != nil {
		log.Fatal(err)
	}
	h, err := admission.NewHandler(admission.Options{
		Engines: staticEngine{eng},
		Now:     func() time.Time { return time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC) },
	})
	if err != nil {
		log.Fatal(err)
	}

	review := `{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
	  "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
	  "kind": {"group": "", "version": "v1", "kind": "Pod"},
	  "resource": {"group": "", "version": "v1", "resource": "pods"},
	  "namespace": "default", "name": "busybox", "operation": "CREATE",
	  "userInfo": {"username": "dev@acme.example"},
	  "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "busybox", "namespace": "default"},
	    "spec": {"containers": [{"name": "busybox-container", "image": "busybox:1.36",
	      "securityContext": {"privileged": true}}]}}}}`
	req := httptest.NewRequest(http.MethodPost, admission.Path, bytes.NewBufferString(review))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)

	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		log.Fatal(err)
	}
	fmt.Println("uid:", out.Response.UID)
	fmt.Println("allowed:", out.Response.Allowed)
	fmt.Println("code:", out.Response.Result.Code)
	fmt.Println("message:", out.Response.Result.Message)
	fmt.Println("warnings:", len(out.Response.Warnings))
	// Output:
	// uid: 705ab4f5-6393-11e8-b7cc-42010a800002
	// allowed: false
	// code: 403
	// message: containerSecurityContext violates rule privileged "true" in container(s) "busybox-container" (block); pss.baseline violates rule podSecurityStandards "privileged: privileged=true" in container(s) "busybox-container" (block)
	// warnings: 7
}
