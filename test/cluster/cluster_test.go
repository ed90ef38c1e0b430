package cluster_test

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/palisade-dev/palisade/test/cluster"
)

func TestMain(m *testing.M) { os.Exit(cluster.Main(m)) }

// podManifest is the pod that Palisade's admission examples deny: a
// privileged busybox. The API server itself must store it.
const podManifest = `apiVersion: v1
kind: Pod
metadata:
  name: busybox
  namespace: %s
spec:
  containers:
  - name: busybox-container
    image: busybox:1.36
    command: ["sleep", "3600"]
    securityContext:
      privileged: true
`

func privilegedPod(ns string) *corev1.Pod {
	privileged := true
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "busybox", Namespace: ns},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name:            "busybox-container",
			Image:           "busybox:1.36",
			Command:         []string{"sleep", "3600"},
			SecurityContext: &corev1.SecurityContext{Privileged: &privileged},
		}}},
	}
}

// The API server accepts and stores a privileged pod (--allow-privileged)
// in a fresh namespace without a default ServiceAccount (no
// ServiceAccount admission), whichever client creates it.
func TestPrivilegedPodIsStored(t *testing.T) {
	t.Parallel()
	c := cluster.Shared(t)
	cs, err := kubernetes.NewForConfig(c.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		ns     string
		create func(t *testing.T, ns string)
	}{
		{
			name: "created through client-go",
			ns:   "via-client-go",
			create: func(t *testing.T, ns string) {
				nsObj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}
				if _, err := cs.CoreV1().Namespaces().Create(t.Context(), nsObj, metav1.CreateOptions{}); err != nil {
					t.Fatalf("create namespace: %v", err)
				}
				if _, err := cs.CoreV1().Pods(ns).Create(t.Context(), privilegedPod(ns), metav1.CreateOptions{}); err != nil {
					t.Fatalf("create pod: %v", err)
				}
			},
		},
		{
			name: "created through kubectl",
			ns:   "via-kubectl",
			create: func(t *testing.T, ns string) {
				if _, stderr, err := c.Kubectl("create", "namespace", ns); err != nil {
					t.Fatalf("%v: %s", err, stderr)
				}
				if _, stderr, err := c.KubectlInput(fmt.Sprintf(podManifest, ns), "apply", "-f", "-"); err != nil {
					t.Fatalf("%v: %s", err, stderr)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.create(t, tt.ns)

			pod, err := cs.CoreV1().Pods(tt.ns).Get(t.Context(), "busybox", metav1.GetOptions{})
			if err != nil {
				t.Fatalf("get pod through client-go: %v", err)
			}
			sc := pod.Spec.Containers[0].SecurityContext
			if sc == nil || sc.Privileged == nil || !*sc.Privileged {
				t.Errorf("stored pod is not privileged: %+v", sc)
			}
			// No kubelet runs, so no pod ever leaves Pending.
			if pod.Status.Phase != corev1.PodPending {
				t.Errorf("phase = %q, want Pending", pod.Status.Phase)
			}

			out, stderr, err := c.Kubectl("get", "pod", "busybox", "-n", tt.ns,
				"-o", "jsonpath={.spec.containers[0].securityContext.privileged} {.status.phase}")
			if err != nil {
				t.Fatalf("%v: %s", err, stderr)
			}
			if out != "true Pending" {
				t.Errorf("kubectl get pod = %q, want %q", out, "true Pending")
			}
		})
	}
}

// The API server calls a validating webhook served over TLS on 127.0.0.1
// (trusted through caBundle) and rejects what it denies: the path that
// Palisade's admission endpoint takes.
func TestLoopbackWebhookDenies(t *testing.T) {
	t.Parallel()
	c := cluster.Shared(t)
	cs, err := kubernetes.NewForConfig(c.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	const denial = "privileged containers are denied by the test webhook"
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var review admissionv1.AdmissionReview
		if err := json.NewDecoder(r.Body).Decode(&review); err != nil || review.Request == nil {
			http.Error(w, "malformed AdmissionReview", http.StatusBadRequest)
			return
		}
		var pod corev1.Pod
		if err := json.Unmarshal(review.Request.Object.Raw, &pod); err != nil {
			http.Error(w, "malformed pod", http.StatusBadRequest)
			return
		}
		resp := &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true}
		for _, ctr := range pod.Spec.Containers {
			if sc := ctr.SecurityContext; sc != nil && sc.Privileged != nil && *sc.Privileged {
				resp.Allowed = false
				resp.Result = &metav1.Status{Message: denial}
			}
		}
		review.Response, review.Request = resp, nil
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(&review)
	}))
	t.Cleanup(srv.Close)

	const ns = "webhook"
	nsObj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{"palisade-test": ns}}}
	if _, err := cs.CoreV1().Namespaces().Create(t.Context(), nsObj, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	url := srv.URL + "/validate"
	fail, none := admissionregistrationv1.Fail, admissionregistrationv1.SideEffectClassNone
	timeout := int32(5)
	cfg := &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "palisade-test-webhook"},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name: "pods.test.palisade.dev",
			ClientConfig: admissionregistrationv1.WebhookClientConfig{
				URL:      &url,
				CABundle: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}),
			},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
			}},
			// Only this test's namespace: other tests share the cluster.
			NamespaceSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"palisade-test": ns}},
			FailurePolicy:           &fail,
			SideEffects:             &none,
			TimeoutSeconds:          &timeout,
			AdmissionReviewVersions: []string{"v1"},
		}},
	}
	hooks := cs.AdmissionregistrationV1().ValidatingWebhookConfigurations()
	if _, err := hooks.Create(t.Context(), cfg, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create webhook configuration: %v", err)
	}
	t.Cleanup(func() {
		// Not t.Context(): it is canceled before cleanups run.
		if err := hooks.Delete(context.Background(), cfg.Name, metav1.DeleteOptions{}); err != nil {
			t.Errorf("delete webhook configuration: %v", err)
		}
	})

	// The API server picks the configuration up asynchronously: dry-run
	// until the webhook answers (side-effect-free webhooks see dry runs).
	pods := cs.CoreV1().Pods(ns)
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := pods.Create(t.Context(), privilegedPod(ns), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil && strings.Contains(err.Error(), denial) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhook not called within 30 s; last create: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := pods.Create(t.Context(), privilegedPod(ns), metav1.CreateOptions{}); err == nil || !strings.Contains(err.Error(), denial) {
		t.Errorf("create privileged pod = %v, want the webhook's denial", err)
	}
	unprivileged := privilegedPod(ns)
	unprivileged.Spec.Containers[0].SecurityContext = nil
	if _, err := pods.Create(t.Context(), unprivileged, metav1.CreateOptions{}); err != nil {
		t.Errorf("create unprivileged pod: %v", err)
	}
}

// A cluster of a test's own is usable through its kubeconfig, and its
// processes have exited once the test's cleanup ran.
func TestStartStopsOnCleanup(t *testing.T) {
	t.Parallel()
	var pids map[string]int
	ok := t.Run("own cluster", func(t *testing.T) {
		c := cluster.Start(t)
		if shared := cluster.Shared(t); shared.URL == c.URL {
			t.Fatalf("Start returned the shared cluster at %s", c.URL)
		}
		pids = c.PIDs()
		out, stderr, err := c.Kubectl("get", "namespaces", "-o", "name")
		if err != nil {
			t.Fatalf("%v: %s", err, stderr)
		}
		for _, ns := range []string{"namespace/default", "namespace/kube-system"} {
			if !strings.Contains(out, ns) {
				t.Errorf("kubectl get namespaces = %q, want %s", out, ns)
			}
		}
	})
	if !ok {
		return
	}
	if len(pids) != 2 {
		t.Fatalf("PIDs() = %v, want etcd and kube-apiserver", pids)
	}
	for name, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("%s (pid %d) still exists after cleanup: kill -0 = %v", name, pid, err)
		}
	}
}

// Missing binaries are an error that says how to build them.
func TestMissingBinariesSayHowToBuild(t *testing.T) {
	t.Parallel()
	err := cluster.CheckBinaries(t.TempDir())
	if !errors.Is(err, cluster.ErrNoBinaries) {
		t.Fatalf("CheckBinaries(empty dir) = %v, want ErrNoBinaries", err)
	}
	if !strings.Contains(err.Error(), "make cluster-bins") {
		t.Errorf("error %q does not say to run make cluster-bins", err)
	}
}
