package e2e

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/palisade-dev/palisade/scanner"
	"github.com/palisade-dev/palisade/test/cluster"
)

// crdDir holds the PolicyReport CRDs the chart installs.
const crdDir = "../../deploy/chart/palisade/crds/"

// installReportCRDs applies the chart's PolicyReport CRDs and waits until
// the API server serves them.
func installReportCRDs(t *testing.T, c *cluster.Cluster) {
	t.Helper()
	if _, stderr, err := c.Kubectl("apply", "-f", crdDir); err != nil {
		t.Fatalf("install CRDs: %v\n%s", err, stderr)
	}
	if _, stderr, err := c.Kubectl("wait", "--for=condition=Established", "--timeout=30s",
		"crd/policyreports.wgpolicyk8s.io", "crd/clusterpolicyreports.wgpolicyk8s.io"); err != nil {
		t.Fatalf("CRDs not established: %v\n%s", err, stderr)
	}
}

// clients are client-go clients of a test cluster.
type clients struct {
	kube kubernetes.Interface
	dyn  dynamic.Interface
	ctx  context.Context
}

func newClients(t *testing.T, c *cluster.Cluster) *clients {
	t.Helper()
	kube, err := kubernetes.NewForConfig(c.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(c.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	return &clients{kube: kube, dyn: dyn, ctx: t.Context()}
}

func (k *clients) namespace(t *testing.T, name string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := k.kube.CoreV1().Namespaces().Create(k.ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
}

func (k *clients) create(t *testing.T, p *corev1.Pod) {
	t.Helper()
	if _, err := k.kube.CoreV1().Pods(p.Namespace).Create(k.ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create pod %s/%s: %v", p.Namespace, p.Name, err)
	}
}

// pod returns a pod, nil when there is none.
func (k *clients) pod(t *testing.T, ns, name string) *corev1.Pod {
	t.Helper()
	p, err := k.kube.CoreV1().Pods(ns).Get(k.ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// podNames lists the pods of a namespace that are not being deleted.
func (k *clients) podNames(t *testing.T, ns string) []string {
	t.Helper()
	pods, err := k.kube.CoreV1().Pods(ns).List(k.ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			names = append(names, p.Name)
		}
	}
	return names
}

// isolationPolicy returns Palisade's NetworkPolicy in ns, nil when there
// is none.
func (k *clients) isolationPolicy(t *testing.T, ns string) bool {
	t.Helper()
	_, err := k.kube.NetworkingV1().NetworkPolicies(ns).Get(k.ctx, scanner.NetworkPolicyName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return true
}

// events returns the messages of the scanner's PolicyViolation Events on a
// pod.
func (k *clients) events(t *testing.T, ns, pod string) []string {
	t.Helper()
	list, err := k.kube.CoreV1().Events(ns).List(k.ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + pod})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range list.Items {
		if e.Reason == scanner.EventReason && e.Type == corev1.EventTypeWarning && e.Source.Component == scanner.Component {
			out = append(out, e.Message)
		}
	}
	return out
}

// waitReport waits for the PolicyReport of ns written for revision.
func (k *clients) waitReport(t *testing.T, ns, revision string) *unstructured.Unstructured {
	t.Helper()
	var rep *unstructured.Unstructured
	waitFor(t, 30*time.Second, "PolicyReport "+ns+" of revision "+revision, func() bool {
		var err error
		rep, err = k.dyn.Resource(scanner.PolicyReportGVR).Namespace(ns).Get(k.ctx, scanner.ReportName, metav1.GetOptions{})
		return err == nil && rep.GetAnnotations()[scanner.AnnotationRevision] == revision
	})
	return rep
}

// reportResult is one result of a PolicyReport, flattened.
type reportResult struct {
	pod, rule, result, action string
	heldBack                  bool
}

func reportResults(rep *unstructured.Unstructured) []reportResult {
	items, _, _ := unstructured.NestedSlice(rep.Object, "results")
	out := make([]reportResult, 0, len(items))
	for _, it := range items {
		m := it.(map[string]any)
		r := reportResult{rule: m["rule"].(string), result: m["result"].(string)}
		if res, _ := m["resources"].([]any); len(res) == 1 {
			r.pod, _ = res[0].(map[string]any)["name"].(string)
		}
		if props, ok := m["properties"].(map[string]any); ok {
			r.action, _ = props["action"].(string)
			r.heldBack = props["heldBack"] == "true"
		}
		out = append(out, r)
	}
	return out
}

// podResults maps each pod of a report to its "rule=result" strings.
func podResults(rep *unstructured.Unstructured) map[string][]string {
	out := map[string][]string{}
	for _, r := range reportResults(rep) {
		out[r.pod] = append(out[r.pod], r.rule+"="+r.result)
	}
	return out
}

func reportSummary(rep *unstructured.Unstructured) map[string]int64 {
	out := map[string]int64{}
	for _, k := range []string{"pass", "fail", "warn", "error", "skip"} {
		out[k], _, _ = unstructured.NestedInt64(rep.Object, "summary", k)
	}
	return out
}

// scannerProc is a running `palisade scanner`.
type scannerProc struct {
	out     *syncBuffer
	metrics string // http://addr/metrics
}

// startScanner runs `palisade scanner` with args and waits until it is
// ready: a bundle is active and its caches have synced.
func startScanner(t *testing.T, args ...string) *scannerProc {
	t.Helper()
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	p := &scannerProc{out: &syncBuffer{}, metrics: "http://" + addr + "/metrics"}
	cmd := exec.CommandContext(ctx, palisadeBin, append([]string{"scanner", "--metrics-listen", addr}, args...)...)
	cmd.Stdout, cmd.Stderr = p.out, p.out
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
		if t.Failed() {
			t.Logf("palisade scanner output:\n%s", p.out)
		}
	})
	waitFor(t, 30*time.Second, "palisade scanner ready", func() bool {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return p
}

// metric returns the value of an unlabelled metric of the scanner.
func (p *scannerProc) metric(t *testing.T, name string) float64 {
	t.Helper()
	resp, err := http.Get(p.metrics)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("metric %s: %v", name, err)
			}
			return f
		}
	}
	t.Fatalf("metric %s not exposed", name)
	return 0
}

// Pods for the scanner tests.

const e2eDigest = "@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// goldenPod meets every rule of the example policy's cluster-wide
// definition (policies-example/tests/manifests/golden-pod-default.yaml).
func goldenPod(ns, name string) *corev1.Pod {
	f, t := false, true
	uid := int64(10001)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": name}},
		Spec: corev1.PodSpec{
			AutomountServiceAccountToken: &f,
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot: &t, RunAsUser: &uid, RunAsGroup: &uid,
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{{
				Name:  "web",
				Image: "ghcr.io/acme/web:1.4.2" + e2eDigest,
				Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
					Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
				},
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: &f, ReadOnlyRootFilesystem: &t,
					Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
			}},
		},
	}
}

// plainPod runs image with nothing set: root, no limits.
func plainPod(ns, name, image string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": name}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: image}}},
	}
}

func withPrivileged(p *corev1.Pod) *corev1.Pod {
	t := true
	c := &p.Spec.Containers[0]
	if c.SecurityContext == nil {
		c.SecurityContext = &corev1.SecurityContext{}
	}
	c.SecurityContext.Privileged = &t
	c.SecurityContext.AllowPrivilegeEscalation = nil // the API server refuses false with privileged
	return p
}

func withHostNetwork(p *corev1.Pod) *corev1.Pod {
	p.Spec.HostNetwork = true
	return p
}
