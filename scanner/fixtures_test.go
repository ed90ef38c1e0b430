package scanner

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/palisade-dev/palisade/bundles"
	"github.com/palisade-dev/palisade/policy"
)

// examplesDir is the example policy repository; its clusters/prod.yaml is
// the policy the scans apply.
const examplesDir = "../policies-example"

// now is the evaluation time: legacy_root (expires 2026-12-31) is live.
var now = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// Engines of the example policy, built as production builds them, once.
var (
	prodEngine = sync.OnceValues(func() (*bundles.Engine, error) { return editedEngine("rev-prod") })
	// auditEngine is prod in audit mode.
	auditEngine = sync.OnceValues(func() (*bundles.Engine, error) {
		return editedEngine("rev-audit", "\n  mode: enforce\n", "\n  mode: audit\n")
	})
	// exceptedEngine is prod with an exception for hostNamespaces in
	// default: isolation must be lifted.
	exceptedEngine = sync.OnceValues(func() (*bundles.Engine, error) {
		return editedEngine("rev-excepted", "\n  namespaced:\n", `
      - name: web_host_network
        rules: [hostNamespaces]
        namespaces: [default]
  namespaced:
`)
	})
	// fastEngine scans default every second.
	fastEngine = sync.OnceValues(func() (*bundles.Engine, error) {
		return editedEngine("rev-fast", `schedule: "@every 10m"`, `schedule: "@every 1s"`)
	})
)

// editedEngine builds the engine of the example repository with the
// replacements (old, new, old, new...) applied to clusters/prod.yaml.
func editedEngine(revision string, edits ...string) (*bundles.Engine, error) {
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
			text := string(data)
			for i := 0; i+1 < len(edits); i += 2 {
				edited := strings.Replace(text, edits[i], edits[i+1], 1)
				if edited == text {
					return fmt.Errorf("clusters/prod.yaml has no %q", edits[i])
				}
				text = edited
			}
			data = []byte(text)
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
	b, err := bundles.Build(repo, "prod", revision)
	if err != nil {
		return nil, err
	}
	return bundles.NewEngine(context.Background(), b)
}

func mustEngine(tb testing.TB, build func() (*bundles.Engine, error)) *bundles.Engine {
	tb.Helper()
	eng, err := build()
	if err != nil {
		tb.Fatalf("build engine: %v", err)
	}
	return eng
}

// engines is a switchable EngineSource.
type engines struct {
	p atomic.Pointer[bundles.Engine]
}

func (e *engines) Engine() *bundles.Engine { return e.p.Load() }

const (
	digest    = "@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	webImage  = "ghcr.io/acme/web:1.4.2" + digest
	sysImage  = "ghcr.io/palisade-dev/palisade:v0.1.0" + digest
	systemNS  = "palisade-system"
	defaultNS = "default"
)

// compliantPod breaks no continuous rule of prod.yaml.
func compliantPod(ns, name string, mutate ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: ns, UID: types.UID("uid-" + ns + "-" + name),
			Labels: map[string]string{"app": name},
		},
		Spec: corev1.PodSpec{
			AutomountServiceAccountToken: ptr(false),
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot: ptr(true), RunAsUser: ptr(int64(10001)), RunAsGroup: ptr(int64(10001)),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{{
				Name:  "app",
				Image: webImage,
				Ports: []corev1.ContainerPort{{ContainerPort: 8080, Protocol: corev1.ProtocolTCP}},
				Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
					Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
				},
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: ptr(false), ReadOnlyRootFilesystem: ptr(true),
					Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
				VolumeMounts: []corev1.VolumeMount{{Name: "tmp", MountPath: "/tmp"}},
			}},
			Volumes: []corev1.Volume{{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
		},
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}
	for _, m := range mutate {
		m(p)
	}
	return p
}

func ptr[T any](v T) *T { return &v }

// Mutations of compliantPod.
func privileged(p *corev1.Pod)  { p.Spec.Containers[0].SecurityContext.Privileged = ptr(true) }
func hostNetwork(p *corev1.Pod) { p.Spec.HostNetwork = true }
func latestTag(p *corev1.Pod)   { p.Spec.Containers[0].Image = "ghcr.io/acme/web:latest" }
func systemImage(p *corev1.Pod) { p.Spec.Containers[0].Image = sysImage }
func terminating(p *corev1.Pod) { p.DeletionTimestamp = &metav1.Time{Time: now} }
func succeeded(p *corev1.Pod)   { p.Status.Phase = corev1.PodSucceeded }
func isolatedBy(rule string) func(*corev1.Pod) {
	return func(p *corev1.Pod) { p.Labels[IsolatedLabel] = rule }
}

// harness is a scanner on fake clients, its informers started.
type harness struct {
	s       *Scanner
	kube    *fake.Clientset
	dyn     *dynamicfake.FakeDynamicClient
	engines *engines
	reg     *prometheus.Registry
	ctx     context.Context
}

func newHarness(t *testing.T, eng *bundles.Engine, opts Options, objs ...runtime.Object) *harness {
	t.Helper()
	h := newIdleHarness(t, eng, opts, objs...)
	if err := h.s.start(h.ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.s.broadcaster.Shutdown)
	return h
}

// newIdleHarness is a harness whose scanner is not started: Run starts it.
func newIdleHarness(t *testing.T, eng *bundles.Engine, opts Options, objs ...runtime.Object) *harness {
	t.Helper()
	h := &harness{
		kube: fake.NewClientset(objs...),
		dyn: dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
			PolicyReportGVR:        "PolicyReportList",
			ClusterPolicyReportGVR: "ClusterPolicyReportList",
		}),
		engines: &engines{},
		reg:     prometheus.NewRegistry(),
		ctx:     t.Context(),
	}
	h.engines.p.Store(eng)
	opts.Kube, opts.Dynamic, opts.Engines, opts.Registerer = h.kube, h.dyn, h.engines, h.reg
	if opts.Now == nil {
		opts.Now = func() time.Time { return now }
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	h.s = s
	return h
}

// scan runs a full scan with the active engine.
func (h *harness) scan(t *testing.T) *Result {
	t.Helper()
	res, err := h.s.scan(h.ctx, h.engines.Engine(), true, func(string) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// writes returns the write actions on resource since the last call of
// clearActions (create, update, patch, delete).
func writes(actions []k8stesting.Action, resource string) []string {
	var out []string
	for _, a := range actions {
		switch a.GetVerb() {
		case "create", "update", "patch", "delete":
			if a.GetResource().Resource == resource {
				out = append(out, a.GetVerb()+" "+a.GetNamespace())
			}
		}
	}
	return out
}

// waitCache waits until the pod cache agrees with cond.
func (h *harness) waitCache(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("cache: %s not within 5s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// podLabel returns a pod's label from the cache, and whether it is there.
func (h *harness) podLabel(ns, name, key string) (string, bool) {
	p, err := h.s.pods.Pods(ns).Get(name)
	if err != nil {
		return "", false
	}
	v, ok := p.Labels[key]
	return v, ok
}
