package bundles_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/palisade-dev/palisade/bundles"
	"github.com/palisade-dev/palisade/policy"
)

// examplesDir is the example policy repository; its clusters/prod.yaml is
// the policy every case here is evaluated against.
const examplesDir = "../policies-example"

// now is the evaluation time of a case that names none: legacy_root
// (expires 2026-12-31) is live, old_debug_tools (expired 2025-06-30) is not.
var now = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// prodEngine is the engine of the prod bundle, built exactly as production
// builds it, once for every test and benchmark of the package.
var prodEngine = sync.OnceValues(func() (*bundles.Engine, error) {
	repo, err := policy.LoadDir(examplesDir)
	if err != nil {
		return nil, err
	}
	return engineOf(repo)
})

// auditEngine is the prod policy with `mode: audit`, loaded from an
// in-memory copy of the example repository.
var auditEngine = sync.OnceValues(func() (*bundles.Engine, error) {
	return editedEngine("\n  mode: enforce\n", "\n  mode: audit\n")
})

// toolsEngine is the prod policy with one more cluster-wide exception:
// every rule, for images under ghcr.io/acme/tools/ in default.
var toolsEngine = sync.OnceValues(func() (*bundles.Engine, error) {
	return editedEngine("\n  namespaced:\n", `
      - name: acme_tools
        description: The tools images are trusted to run in default.
        images: [{prefix: "ghcr.io/acme/tools/"}]
        namespaces: [default]
  namespaced:
`)
})

// editedEngine builds the engine of an in-memory copy of the example
// repository whose clusters/prod.yaml has old replaced by new, once.
func editedEngine(old, new string) (*bundles.Engine, error) {
	src := os.DirFS(examplesDir)
	fsys := fstest.MapFS{}
	err := fs.WalkDir(src, ".", func(name string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		data, err := fs.ReadFile(src, name)
		if err != nil {
			return err
		}
		if name == "clusters/prod.yaml" {
			edited := strings.Replace(string(data), old, new, 1)
			if edited == string(data) {
				return fmt.Errorf("clusters/prod.yaml has no %q: fix this copy", old)
			}
			data = []byte(edited)
		}
		fsys[name] = &fstest.MapFile{Data: data}
		return nil
	})
	if err != nil {
		return nil, err
	}
	repo, err := policy.Load(fsys)
	if err != nil {
		return nil, err
	}
	return engineOf(repo)
}

func engineOf(repo *policy.Repo) (*bundles.Engine, error) {
	b, err := bundles.Build(repo, "prod", "test")
	if err != nil {
		return nil, err
	}
	return bundles.NewEngine(context.Background(), b)
}

// benchEngine builds the prod engine with an evaluator: the tests run
// in check mode (TestMain), a benchmark measures one evaluator.
func benchEngine(b *testing.B, evaluator string) *bundles.Engine {
	b.Helper()
	b.Setenv(bundles.EvaluatorEnv, evaluator)
	repo, err := policy.LoadDir(examplesDir)
	if err != nil {
		b.Fatal(err)
	}
	eng, err := engineOf(repo)
	if err != nil {
		b.Fatalf("build engine: %v", err)
	}
	if got := eng.Evaluator(); got != evaluator {
		b.Fatalf("engine evaluates with %s, want %s", got, evaluator)
	}
	return eng
}

func mustEngine(tb testing.TB, build func() (*bundles.Engine, error)) *bundles.Engine {
	tb.Helper()
	eng, err := build()
	if err != nil {
		tb.Fatalf("build engine: %v", err)
	}
	return eng
}

//
// Manifests: a compliant base and mutations.
//

type obj = map[string]any

type list = []any

const (
	digest            = "@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	webImage          = "ghcr.io/acme/web:1.4.2" + digest
	sidecarImage      = "ghcr.io/acme/log-shipper:3.1.0" + digest
	paymentsImage     = "ghcr.io/acme/payments/api:2.3.1" + digest
	nodeExporterImage = "registry.k8s.io/prometheus/node-exporter:v1.8.2" + digest
	systemImage       = "ghcr.io/palisade-dev/palisade:v0.1.0" + digest
)

// imageFor is the image a compliant workload of a namespace runs: payments
// only admits ghcr.io/acme/payments.
func imageFor(ns string) string {
	if ns == "payments" {
		return paymentsImage
	}
	return webImage
}

// compliantContainer breaks no rule of any definition of prod.yaml.
func compliantContainer(name, image string) obj {
	return obj{
		"name":  name,
		"image": image,
		"ports": list{obj{"containerPort": 8080, "protocol": "TCP"}},
		"resources": obj{
			"requests": obj{"cpu": "100m", "memory": "64Mi"},
			"limits":   obj{"cpu": "500m", "memory": "128Mi"},
		},
		"securityContext": obj{
			"allowPrivilegeEscalation": false,
			"readOnlyRootFilesystem":   true,
			"capabilities":             obj{"drop": list{"ALL"}},
		},
		"volumeMounts": list{obj{"name": "tmp", "mountPath": "/tmp"}},
	}
}

// compliantSpec is a pod spec that meets Pod Security restricted and
// every rule of prod.yaml.
func compliantSpec(image string) obj {
	return obj{
		"automountServiceAccountToken": false,
		"securityContext": obj{
			"runAsNonRoot":   true,
			"runAsUser":      10001,
			"runAsGroup":     10001,
			"seccompProfile": obj{"type": "RuntimeDefault"},
		},
		"containers": list{compliantContainer("app", image)},
		"volumes":    list{obj{"name": "tmp", "emptyDir": obj{}}},
	}
}

// template is what a mutation changes: the metadata and spec of a pod, or
// of a workload's pod template.
type template struct{ meta, spec obj }

type mutation func(t template)

// set assigns v at a dotted path below the pod spec (numbers index lists);
// a nil v deletes the key.
func set(path string, v any) mutation {
	return func(t template) { setPath(t.spec, path, v) }
}

func setPath(m obj, path string, v any) {
	var cur any = m
	keys := strings.Split(path, ".")
	for i, k := range keys {
		last := i == len(keys)-1
		switch c := cur.(type) {
		case obj:
			if last {
				if v == nil {
					delete(c, k)
				} else {
					c[k] = v
				}
				return
			}
			if _, ok := c[k]; !ok {
				c[k] = obj{}
			}
			cur = c[k]
		case list:
			n, err := strconv.Atoi(k)
			if err != nil || n >= len(c) {
				panic("setPath: bad index " + k + " in " + path)
			}
			if last {
				c[n] = v
				return
			}
			cur = c[n]
		default:
			panic("setPath: " + path + " crosses a scalar")
		}
	}
}

func image(ref string) mutation { return set("containers.0.image", ref) }

func label(k, v string) mutation {
	return func(t template) { t.meta["labels"].(obj)[k] = v }
}

func appendTo(key string, items ...any) mutation {
	return func(t template) {
		l, _ := t.spec[key].(list)
		t.spec[key] = append(l, items...)
	}
}

// hostPath adds a hostPath volume, mounted by the first container unless
// mounted is false.
func hostPath(name, path string, mounted bool) mutation {
	return func(t template) {
		t.spec["volumes"] = append(t.spec["volumes"].(list), obj{"name": name, "hostPath": obj{"path": path}})
		if mounted {
			c := t.spec["containers"].(list)[0].(obj)
			c["volumeMounts"] = append(c["volumeMounts"].(list), obj{"name": name, "mountPath": "/host" + path, "readOnly": true})
		}
	}
}

func with(c obj, path string, v any) obj {
	setPath(c, path, v)
	return c
}

// pod is a compliant Pod named app (label app=app) in ns, mutated.
func pod(ns, app string, mutations ...mutation) obj {
	meta := obj{"name": app, "namespace": ns, "labels": obj{"app": app}}
	spec := compliantSpec(imageFor(ns))
	for _, m := range mutations {
		m(template{meta, spec})
	}
	return obj{"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}
}

// workload is a compliant object of a kind that runs pods, mutated in its
// pod template.
func workload(kind, ns, app string, mutations ...mutation) obj {
	tmeta := obj{"labels": obj{"app": app}}
	spec := compliantSpec(imageFor(ns))
	if kind == "Job" || kind == "CronJob" {
		spec["restartPolicy"] = "Never"
	}
	for _, m := range mutations {
		m(template{tmeta, spec})
	}
	tmpl := obj{"metadata": tmeta, "spec": spec}
	o := obj{"kind": kind, "metadata": obj{"name": app, "namespace": ns, "labels": obj{"app": app}}}
	switch kind {
	case "Job":
		o["apiVersion"] = "batch/v1"
		o["spec"] = obj{"backoffLimit": 2, "template": tmpl}
	case "CronJob":
		o["apiVersion"] = "batch/v1"
		o["spec"] = obj{"schedule": "17 3 * * *", "jobTemplate": obj{"spec": obj{"template": tmpl}}}
	default:
		o["apiVersion"] = "apps/v1"
		o["spec"] = obj{"selector": obj{"matchLabels": obj{"app": app}}, "template": tmpl}
	}
	return o
}

// busybox is the privileged pod of samples/pods.yaml.
func busybox(ns string) obj {
	return obj{
		"apiVersion": "v1",
		"kind":       "Pod",
		"metadata":   obj{"name": "busybox", "namespace": ns},
		"spec": obj{"containers": list{obj{
			"name":            "busybox-container",
			"image":           "busybox:1.36",
			"securityContext": obj{"privileged": true},
		}}},
	}
}

// nodeExporter is the node-exporter DaemonSet as the upstream chart
// deploys it: host network and PID, host paths, host port 9100.
func nodeExporter(ns string, mutations ...mutation) obj {
	base := []mutation{
		image(nodeExporterImage),
		set("hostNetwork", true),
		set("hostPID", true),
		set("containers.0.ports", list{obj{"containerPort": 9100, "hostPort": 9100, "protocol": "TCP"}}),
		set("containers.0.args", list{"--path.procfs=/host/proc", "--path.sysfs=/host/sys"}),
		set("securityContext.runAsUser", 65534),
		hostPath("proc", "/proc", true),
		hostPath("sys", "/sys", true),
	}
	return workload("DaemonSet", ns, "node-exporter", append(base, mutations...)...)
}

//
// Requests.
//

// who sends a request.
type who struct {
	user   string
	groups []string
}

var (
	developer = who{"dev@acme.example", []string{"acme:developers", "system:authenticated"}}
	sre       = who{"sre@acme.example", []string{"acme:sre", "system:authenticated"}}
	ciAdmin   = who{"ci@acme.example", []string{"acme:ci-admins", "system:authenticated"}}
)

func request(op, sub string, o obj, by who) *bundles.Request {
	group, version, found := strings.Cut(o["apiVersion"].(string), "/")
	if !found {
		group, version = "", group
	}
	meta, _ := o["metadata"].(obj)
	ns, _ := meta["namespace"].(string)
	name, _ := meta["name"].(string)
	return &bundles.Request{
		UID:         "0b0b0b0b-1111-2222-3333-444444444444",
		Kind:        bundles.GroupVersionKind{Group: group, Version: version, Kind: o["kind"].(string)},
		Namespace:   ns,
		Name:        name,
		Operation:   op,
		SubResource: sub,
		UserInfo:    bundles.UserInfo{Username: by.user, Groups: by.groups},
		Object:      o,
	}
}

func create(o obj) *bundles.Request { return request("CREATE", "", o, developer) }

func update(o obj) *bundles.Request {
	r := request("UPDATE", "", o, developer)
	r.OldObject = clone(o)
	return r
}

// connect is kubectl exec, attach or port-forward (subresource exec,
// attach, portforward) to the pod "web" of ns.
func connect(ns, sub, container string, by who) *bundles.Request {
	kinds := map[string]string{"exec": "PodExecOptions", "attach": "PodAttachOptions", "portforward": "PodPortForwardOptions"}
	opts := obj{"apiVersion": "v1", "kind": kinds[sub], "metadata": obj{"name": "web", "namespace": ns}}
	switch sub {
	case "exec":
		opts["command"] = list{"sh"}
		opts["stdin"], opts["tty"] = true, true
	case "attach":
		opts["stdin"], opts["tty"] = true, true
	case "portforward":
		opts["ports"] = list{8080}
	}
	if container != "" {
		opts["container"] = container
	}
	return request("CONNECT", sub, opts, by)
}

// debug is kubectl debug: an UPDATE of pods/ephemeralcontainers adding c
// to old.
func debug(old obj, c obj, by who) *bundles.Request {
	updated := clone(old)
	spec := updated["spec"].(obj)
	l, _ := spec["ephemeralContainers"].(list)
	spec["ephemeralContainers"] = append(l, c)
	r := request("UPDATE", "ephemeralcontainers", updated, by)
	r.OldObject = old
	return r
}

// debugger is the container `kubectl debug -it --image=busybox:1.36` adds.
func debugger(name string) obj {
	return obj{"name": name, "image": "busybox:1.36", "stdin": true, "tty": true, "targetContainerName": "app"}
}

func clone(o obj) obj {
	raw, err := json.Marshal(o)
	if err != nil {
		panic(err)
	}
	var out obj
	if err := json.Unmarshal(raw, &out); err != nil {
		panic(err)
	}
	return out
}

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

//
// The table.
//
