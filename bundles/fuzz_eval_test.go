package bundles_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/palisade-dev/palisade/bundles"
)

// FuzzEvaluators builds admission requests and pods from the fuzzer's
// bytes, each byte choosing a change from a menu of what the example
// policy's rules, exceptions and definitions look at, and decides them
// with both evaluators (the engines run in EvaluatorCheck mode, which
// fails on any difference between irvm and topdown). make fuzz runs it.
func FuzzEvaluators(f *testing.F) {
	for _, seed := range []string{"", "\x00", "\x01\x02\x03", "\x10\x22\x35\x47\x59", "abcdefghijklmnopqrstuvwxyz", "\xff\xfe\xfd\xfc"} {
		f.Add([]byte(seed))
	}
	f.Setenv(bundles.EvaluatorEnv, bundles.EvaluatorCheck)
	engines := []*bundles.Engine{mustEngine(f, prodEngine), mustEngine(f, auditEngine)}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, in []byte) {
		req, podObj, facts := fuzzSubject(in)
		// An error both evaluators return alike is agreement: two
		// containers with one name, for one, make container_images a
		// conflict (the API server refuses such pods before admission).
		for _, eng := range engines {
			if _, err := eng.Admission(ctx, req, facts); err != nil && strings.Contains(err.Error(), "evaluators disagree") {
				t.Fatalf("admission of %v: %v", req.Object, err)
			}
			if _, err := eng.Continuous(ctx, podObj, facts); err != nil && strings.Contains(err.Error(), "evaluators disagree") {
				t.Fatalf("continuous of %v: %v", podObj, err)
			}
		}
	})
}

var (
	fuzzNamespaces = []string{"default", "payments", "monitoring", "ci", "palisade-system", "kube-system", ""}
	fuzzImages     = []string{
		webImage, sidecarImage, paymentsImage, nodeExporterImage, systemImage,
		"busybox:1.36", "ubuntu", "docker.io/library/nginx:latest", "ghcr.io/acme-evil/web:1",
		"myregistry.io.evil.com/x:1", "evil.com/myregistry.io/x", "GHCR.IO/acme/web:1", "", "::bad::",
		"registry.k8s.io/prometheus/node-exporter:v1.8.2",
	}
	fuzzCaps  = []string{"NET_ADMIN", "SYS_ADMIN", "ALL", "CAP_NET_RAW", "net_bind_service", " ALL", "CHOWN"}
	fuzzPaths = []string{"/", "/var", "/var/run/docker.sock", "/proc", "/etc//kubernetes", "/var/running", "/home/./x"}
	fuzzKinds = []string{"Pod", "Deployment", "DaemonSet", "StatefulSet", "Job", "CronJob", "ReplicaSet"}
	fuzzWho   = []who{developer, sre, ciAdmin}
)

// fuzzSubject turns bytes into a request (CREATE or UPDATE of a pod or a
// workload, or a CONNECT), the pod a scan would see, and facts.
func fuzzSubject(in []byte) (*bundles.Request, obj, bundles.Facts) {
	next := func() int {
		if len(in) == 0 {
			return 0
		}
		b := int(in[0])
		in = in[1:]
		return b
	}
	pick := func(n int) int { return next() % n }
	ns := fuzzNamespaces[pick(len(fuzzNamespaces))]
	kind := fuzzKinds[pick(len(fuzzKinds))]
	var muts []mutation
	for len(in) > 0 {
		switch pick(16) {
		case 0:
			muts = append(muts, image(fuzzImages[pick(len(fuzzImages))]))
		case 1:
			muts = append(muts, set("containers.0.securityContext.privileged", next()%3 != 0))
		case 2:
			muts = append(muts, set("containers.0.securityContext.capabilities.add", []any{fuzzCaps[pick(len(fuzzCaps))]}))
		case 3:
			muts = append(muts, set("containers.0.securityContext.capabilities.drop", []any{fuzzCaps[pick(len(fuzzCaps))]}))
		case 4:
			muts = append(muts, hostPath("h"+string(rune('a'+pick(26))), fuzzPaths[pick(len(fuzzPaths))], next()%2 == 0))
		case 5:
			muts = append(muts, set([]string{"hostNetwork", "hostPID", "hostIPC"}[pick(3)], true))
		case 6:
			muts = append(muts, set("securityContext.runAsUser", pick(3)*500))
		case 7:
			muts = append(muts, set("containers.0.securityContext.runAsNonRoot", []any{true, false, nil}[pick(3)]))
		case 8:
			muts = append(muts, label([]string{"app", "tier", "team"}[pick(3)], []string{"legacy-billing", "debug-tools", "web", ""}[pick(4)]))
		case 9:
			muts = append(muts, appendTo("containers", compliantContainer("side"+string(rune('a'+pick(26))), fuzzImages[pick(len(fuzzImages))])))
		case 10:
			muts = append(muts, appendTo("initContainers", compliantContainer("init", fuzzImages[pick(len(fuzzImages))])))
		case 11:
			muts = append(muts, set("containers.0.ports", []any{obj{"containerPort": 80, "hostPort": []int{0, 80, 9100, 8080}[pick(4)]}}))
		case 12:
			muts = append(muts, set("automountServiceAccountToken", []any{true, false, nil}[pick(3)]))
		case 13:
			muts = append(muts, set("containers.0.resources", nil))
		case 14:
			muts = append(muts, set("serviceAccountName", []string{"default", "web", "ci-runner", ""}[pick(4)]))
		case 15:
			muts = append(muts, set("containers.0.securityContext", []any{nil, obj{}, obj{"allowPrivilegeEscalation": true}}[pick(3)]))
		}
	}
	p := pod(ns, "web", muts...)
	var o obj
	if kind == "Pod" {
		o = clone(p)
	} else {
		o = workload(kind, ns, "web", muts...)
	}
	by := fuzzWho[len(muts)%len(fuzzWho)]
	var req *bundles.Request
	switch len(muts) % 5 {
	case 0, 1, 2:
		req = request("CREATE", "", o, by)
	case 3:
		req = request("UPDATE", "", o, by)
		req.OldObject = clone(o)
		if spec, ok := req.OldObject["spec"].(obj); ok {
			spec["touched"] = true
		}
	default:
		req = connect(ns, []string{"exec", "attach", "portforward"}[len(muts)%3], "", by)
	}
	facts := bundles.Facts{
		Now:             time.Date(2026, 6, 1+len(muts)%400, 0, 0, 0, 0, time.UTC),
		NamespaceLabels: map[string]string{"team": strings.Repeat("x", len(muts)%3)},
	}
	return req, p, facts
}
