package bundles_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/palisade-dev/palisade/bundles"
	"github.com/palisade-dev/palisade/policy"
)

// The privileged busybox pod of policies-example/samples/pods.yaml, as
// the admission webhook sees it, against the prod cluster's bundle.
func ExampleEngine_Admission() {
	ctx := context.Background()
	repo, err := policy.LoadDir("../policies-example")
	if err != nil {
		log.Fatal(err)
	}
	b, err := bundles.Build(repo, "prod", "4f2a9c1")
	if err != nil {
		log.Fatal(err)
	}
	eng, err := bundles.NewEngine(ctx, b)
	if err != nil {
		log.Fatal(err)
	}
	req := &bundles.Request{
		Kind:      bundles.GroupVersionKind{Version: "v1", Kind: "Pod"},
		Namespace: "default",
		Name:      "busybox",
		Operation: "CREATE",
		UserInfo:  bundles.UserInfo{Username: "dev@acme.example"},
		Object: map[string]any{
			"apiVersion": "v1",
			"kind":       "Pod",
			"metadata":   map[string]any{"name": "busybox", "namespace": "default"},
			"spec": map[string]any{"containers": []any{map[string]any{
				"name":            "busybox-container",
				"image":           "busybox:1.36",
				"securityContext": map[string]any{"privileged": true},
			}}},
		},
	}
	// Rego never reads the clock: the time is a fact, for expiring exceptions.
	d, err := eng.Admission(ctx, req, bundles.Facts{Now: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("revision:", d.Revision)
	fmt.Println("allowed:", d.Allowed)
	for _, v := range d.Violations {
		if v.Action == policy.ActionBlock {
			fmt.Println("denied:", v.Message)
		}
	}
	for _, w := range d.Warnings {
		fmt.Println("warning:", w)
	}
	// Output:
	// revision: 4f2a9c1
	// allowed: false
	// denied: containerSecurityContext violates rule privileged "true" in container(s) "busybox-container" (block)
	// denied: pss.baseline violates rule podSecurityStandards "privileged: privileged=true" in container(s) "busybox-container" (block)
	// warning: containerSecurityContext violates rule allowPrivilegeEscalation "allowPrivilegeEscalation=unset" in container(s) "busybox-container" (log)
	// warning: containerSecurityContext violates rule readOnlyRootFilesystem "readOnlyRootFilesystem=unset" in container(s) "busybox-container" (log)
	// warning: containerSecurityContext violates rule runAsRoot "runAsNonRoot unset" in container(s) "busybox-container" (log)
	// warning: image violates rule digestPinning "busybox:1.36" in container(s) "busybox-container" (log)
	// warning: podSpec violates rule automountServiceAccountToken "automountServiceAccountToken=unset" (log)
	// warning: resources violates rule resources "limits.memory missing" in container(s) "busybox-container" (log)
	// warning: resources violates rule resources "requests.cpu missing" in container(s) "busybox-container" (log)
}
