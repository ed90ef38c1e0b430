package deploy_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"

	"github.com/palisade-dev/palisade/test/cluster"
)

// apiTimeout bounds one test's calls to the API server; each takes
// milliseconds on loopback.
const apiTimeout = 30 * time.Second

// systemNamespace creates the release namespace for real, enforcing the
// Pod Security Standards' restricted level: the API server then rejects
// any of the chart's pods that is not hardened, and warns about any such
// pod template. It is idempotent, for tests that share the cluster.
func systemNamespace(t *testing.T, c *cluster.Cluster) {
	t.Helper()
	kube, err := kubernetes.NewForConfig(c.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace, Labels: map[string]string{
		"pod-security.kubernetes.io/enforce": "restricted",
		"pod-security.kubernetes.io/warn":    "restricted",
	}}}
	if _, err := kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create namespace %s: %v", namespace, err)
	}
}

// applyCRDs installs the chart's CRDs (chart/palisade/crds, if any) for
// real and waits until they serve, so that the objects after them can be
// validated against them.
func applyCRDs(t *testing.T, c *cluster.Cluster, objs []*unstructured.Unstructured) {
	t.Helper()
	crds := find(objs, "CustomResourceDefinition", "")
	if len(crds) == 0 {
		t.Log("the chart has no CRDs yet (chart/palisade/crds)")
		return
	}
	kubectlApply(t, c, crds, "--server-side", "--field-manager=palisade-deploy-test")
	names := []string{"wait", "--for=condition=Established", "--timeout=60s"}
	for _, crd := range crds {
		names = append(names, "customresourcedefinition/"+crd.GetName())
	}
	if _, stderr, err := c.Kubectl(names...); err != nil {
		t.Fatalf("%v: %s", err, stderr)
	}
}

// kubectlApply applies objs with kubectl and returns its standard output.
// Any warning the API server returns (Pod Security, deprecated APIs,
// unknown fields) fails the test.
func kubectlApply(t *testing.T, c *cluster.Cluster, objs []*unstructured.Unstructured, args ...string) string {
	t.Helper()
	var in strings.Builder
	for _, o := range objs {
		b, err := o.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		in.Write(b)
		in.WriteByte('\n')
	}
	stdout, stderr, err := c.KubectlInput(in.String(), append([]string{"apply", "-f", "-"}, args...)...)
	if err != nil {
		t.Fatalf("%v\n%s%s", err, stdout, stderr)
	}
	if strings.Contains(stderr, "Warning") {
		t.Errorf("the API server warned:\n%s", stderr)
	}
	return stdout
}

// sensorPodSecurity is the API server's warning on the sensor DaemonSet
// in a namespace that warns at restricted: the exceptions the sensor needs.
const sensorPodSecurity = `Warning: would violate PodSecurity "restricted:latest": host namespaces (hostPID=true), ` +
	`unrestricted capabilities (container "sensor" must not include "BPF", "PERFMON", "SYS_ADMIN", "SYS_PTRACE" in securityContext.capabilities.add), ` +
	`restricted volume types (volumes "cgroup", "btf" use restricted volume type "hostPath"), ` +
	`runAsNonRoot != true (pod and container "sensor" must not set securityContext.runAsNonRoot=false), ` +
	`runAsUser=0 (pod and container "sensor" must not set runAsUser=0)`

// applySensor applies the sensor DaemonSet (server-side dry run) and
// accepts the one Pod Security warning its privileges cause.
func applySensor(t *testing.T, c *cluster.Cluster, objs []*unstructured.Unstructured) {
	t.Helper()
	var in strings.Builder
	for _, o := range objs {
		b, err := o.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		in.Write(b)
		in.WriteByte('\n')
	}
	stdout, stderr, err := c.KubectlInput(in.String(), "apply", "-f", "-", "--server-side", "--dry-run=server", "--field-manager=palisade-deploy-test")
	if err != nil {
		t.Fatalf("%v\n%s%s", err, stdout, stderr)
	}
	if rest := strings.TrimSpace(strings.ReplaceAll(stderr, sensorPodSecurity, "")); rest != "" {
		t.Errorf("the API server warned about the sensor beyond its known exceptions:\n%s", stderr)
	}
	if applied := strings.Count(stdout, "serverside-applied (server dry run)"); applied != len(objs) {
		t.Errorf("%d of %d sensor objects applied:\n%s", applied, len(objs), stdout)
	}
}

// TestManifestsOnAPIServer: the committed manifests, and the chart with
// other values, pass a real kube-apiserver's validation and admission
// (server-side dry run: schemas, strict field validation, RBAC rules,
// webhook configuration, Pod Security restricted).
func TestManifestsOnAPIServer(t *testing.T) {
	c := cluster.Shared(t)
	systemNamespace(t, c)
	applyCRDs(t, c, decodeObjects(t, render(t)))

	for _, v := range variations {
		t.Run(v.name, func(t *testing.T) {
			var objs []*unstructured.Unstructured
			if v.set == nil {
				committed, err := readManifests()
				if err != nil {
					t.Fatal(err)
				}
				objs = decodeObjects(t, committed)
			} else {
				objs = decodeObjects(t, render(t, v.set...))
			}
			// The sensor DaemonSet is the one pod outside the restricted
			// standard, by exactly what the kernel needs (see
			// checkSensorPod): it is applied apart, and the API server's
			// warning must name those exceptions and no other.
			var sensors []*unstructured.Unstructured
			objs = slices.DeleteFunc(objs, func(o *unstructured.Unstructured) bool {
				if o.GetKind() == "DaemonSet" {
					sensors = append(sensors, o)
					return true
				}
				return false
			})
			out := kubectlApply(t, c, objs, "--server-side", "--dry-run=server", "--field-manager=palisade-deploy-test")
			if applied := strings.Count(out, "serverside-applied (server dry run)"); applied != len(objs) {
				t.Errorf("%d of %d objects applied:\n%s", applied, len(objs), out)
			}
			if len(sensors) > 0 {
				applySensor(t, c, sensors)
			}
		})
	}
}

// TestPodsMeetRestricted: a pod made from each Deployment's template is
// admitted in a namespace that enforces the restricted Pod Security
// Standard. (A Deployment is only warned about; its pods are rejected.)
func TestPodsMeetRestricted(t *testing.T) {
	c := cluster.Shared(t)
	systemNamespace(t, c)
	kube, err := kubernetes.NewForConfig(c.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	for _, v := range variations {
		for _, u := range find(decodeObjects(t, render(t, v.set...)), "Deployment", "") {
			var d appsv1.Deployment
			decodeInto(t, u, &d)
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: d.Name, Namespace: namespace, Labels: d.Spec.Template.Labels},
				Spec:       d.Spec.Template.Spec,
			}
			_, err := kube.CoreV1().Pods(namespace).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			if err != nil {
				t.Errorf("%s: pod of %s: %v", v.name, d.Name, err)
			}
		}
	}
}

func readManifests() (string, error) {
	b, err := os.ReadFile(manifestsFile)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", manifestsFile, err)
	}
	return string(b), nil
}
