package deploy_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/palisade-dev/palisade/admission"
	"github.com/palisade-dev/palisade/bundles"
	"github.com/palisade-dev/palisade/policy"
	"github.com/palisade-dev/palisade/policytest"
	"github.com/palisade-dev/palisade/test/cluster"
)

func TestMain(m *testing.M) { os.Exit(cluster.Main(m)) }

// testCABundle stands for the PEM CA of certificates from a Secret; the
// API server stores a caBundle without parsing it.
var testCABundle = []byte("-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----\n")

// variation is one set of values and what the webhook registration must
// then be.
type variation struct {
	name          string
	set           []string
	failurePolicy admissionregistrationv1.FailurePolicyType
	timeout       time.Duration
	caBundle      []byte // nil: left to the self-managed certificates
	selfManaged   bool
	pullSecrets   bool // imageVerification.readPullSecrets
	learning      bool // learning.enabled
}

var variations = []variation{
	{
		name:          "defaults",
		failurePolicy: admissionregistrationv1.Fail, timeout: admission.DefaultTimeout, selfManaged: true,
	},
	{
		name: "certificates from a Secret",
		set: []string{
			"admission.certificates.mode=secret",
			"admission.certificates.secretName=webhook-cert",
			"admission.certificates.caBundle=" + base64.StdEncoding.EncodeToString(testCABundle),
		},
		failurePolicy: admissionregistrationv1.Fail, timeout: admission.DefaultTimeout, caBundle: testCABundle,
	},
	{
		name:          "fail open",
		set:           []string{"admission.failurePolicy=Ignore", "admission.timeoutSeconds=2"},
		failurePolicy: admissionregistrationv1.Ignore, timeout: 2 * time.Second, selfManaged: true,
	},
	{
		name: "every credential from a Secret",
		set: []string{
			"policy.auth.existingSecret=git-ssh", "policy.auth.method=ssh",
			"policy.caSecret=git-ca", "policy.verifyKeyringSecret=git-keyring",
			"bundles.tokenSecret=bundle-token", "controller.tlsSecret=controller-tls",
			"controller.pushWebhookSecret=push-hmac",
			"bundles.signing.keySecret=bundle-sign", "bundles.signing.verifyKeySecret=bundle-verify",
			"imageVerification.registryConfigSecret=registry-creds",
			"admission.replicas=3",
			"sensor.enabled=true", "sensor.clusterID=c1", "sensor.clusterName=prod",
		},
		failurePolicy: admissionregistrationv1.Fail, timeout: admission.DefaultTimeout, selfManaged: true,
	},
	{
		name:          "image verification with the pods' pull secrets",
		set:           []string{"imageVerification.readPullSecrets=true", "imageVerification.timeout=1500ms"},
		failurePolicy: admissionregistrationv1.Fail, timeout: admission.DefaultTimeout, selfManaged: true, pullSecrets: true,
	},
	{
		name:          "learning",
		set:           learningSet,
		failurePolicy: admissionregistrationv1.Fail, timeout: admission.DefaultTimeout, selfManaged: true, learning: true,
	},
}

func TestLintStrict(t *testing.T) {
	out, err := runHelm(t, "lint", "--strict", chartDir)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}

func TestManifestsAreUpToDate(t *testing.T) {
	bin, err := helmBin()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", renderScript)
	cmd.Env = append(os.Environ(), "HELM="+bin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	fresh, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", renderScript, err, stderr.String())
	}
	committed, err := os.ReadFile(manifestsFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fresh, committed) {
		t.Errorf("deploy/%s differs from a fresh render of the chart: run `make manifests` and commit it", manifestsFile)
	}
	// The manifests are the defaults variation with a header.
	if objs := decodeObjects(t, string(committed)); len(objs) != len(decodeObjects(t, render(t))) {
		t.Errorf("deploy/%s has %d objects, a render with default values %d", manifestsFile, len(objs), len(decodeObjects(t, render(t))))
	}
}

// TestWebhookMatchesCode: the chart's webhook registration is what
// admission.WebhookConfiguration builds, for every variation: one source
// of truth for name, path, rules, namespaceSelector and the rest.
func TestWebhookMatchesCode(t *testing.T) {
	for _, v := range variations {
		t.Run(v.name, func(t *testing.T) {
			objs := decodeObjects(t, render(t, v.set...))
			var got admissionregistrationv1.ValidatingWebhookConfiguration
			decodeInto(t, one(t, objs, "ValidatingWebhookConfiguration", admission.DefaultConfigurationName), &got)

			want, err := admission.WebhookConfiguration(admission.WebhookOptions{
				Service: &admissionregistrationv1.ServiceReference{
					Namespace: namespace, Name: "palisade-admission", Port: ptr(int32(443)),
				},
				CABundle:        v.caBundle,
				FailurePolicy:   v.failurePolicy,
				Timeout:         v.timeout,
				SystemNamespace: namespace,
			})
			if err != nil {
				t.Fatal(err)
			}
			if got.Labels[admission.LabelPartOf] != want.Labels[admission.LabelPartOf] {
				t.Errorf("label %s = %q, want %q", admission.LabelPartOf, got.Labels[admission.LabelPartOf], want.Labels[admission.LabelPartOf])
			}
			if g, w := toJSON(t, got.Webhooks), toJSON(t, want.Webhooks); g != w {
				t.Errorf("webhooks differ from admission.WebhookConfiguration\nchart: %s\ncode:  %s", g, w)
			}
		})
	}
}

// TestAdmissionFlagsMatchWebhook: what the webhook's certificate manager
// is told (Service, namespace, configuration, Secret) names the objects
// the chart creates, and the fail-open flag follows the failure policy.
func TestAdmissionFlagsMatchWebhook(t *testing.T) {
	for _, v := range variations {
		t.Run(v.name, func(t *testing.T) {
			objs := decodeObjects(t, render(t, v.set...))
			var d appsv1.Deployment
			decodeInto(t, one(t, objs, "Deployment", "palisade-admission"), &d)
			args := flags(d.Spec.Template.Spec.Containers[0].Args)

			if _, ok := args["--fail-open"]; ok != (v.failurePolicy == admissionregistrationv1.Ignore) {
				t.Errorf("--fail-open set = %v with failure policy %s", ok, v.failurePolicy)
			}
			one(t, objs, "Service", "palisade-admission")
			if !v.selfManaged {
				if _, ok := args["--self-managed-certs"]; ok {
					t.Error("--self-managed-certs with certificates from a Secret")
				}
				if len(find(objs, "Secret", "")) != 0 {
					t.Error("the chart creates a Secret although certificates come from an existing one")
				}
				return
			}
			for flag, want := range map[string]string{
				"--service":               "palisade-admission",
				"--namespace":             namespace,
				"--webhook-configuration": admission.DefaultConfigurationName,
				"--secret-name":           admission.DefaultSecretName,
			} {
				if args[flag] != want {
					t.Errorf("%s=%q, want %q", flag, args[flag], want)
				}
			}
			// The Secret the certificate manager fills exists, empty, so
			// that its RBAC can name it.
			sec := one(t, objs, "Secret", admission.DefaultSecretName)
			if _, ok := sec.Object["data"]; ok {
				t.Error("the certificate Secret has data in the chart: an upgrade would reset the certificates")
			}
		})
	}
}

// TestPodsAreHardened: every workload runs non-root, read-only, without
// capabilities, with RuntimeDefault seccomp, resources and probes, the
// chart's image, and every file a flag names mounted from a Secret.
func TestPodsAreHardened(t *testing.T) {
	appVersion := chartAppVersion(t)
	for _, v := range variations {
		t.Run(v.name, func(t *testing.T) {
			objs := decodeObjects(t, render(t, v.set...))
			deployments := find(objs, "Deployment", "")
			if len(deployments) != 3 {
				t.Fatalf("%d Deployments, want controller, admission and scanner", len(deployments))
			}
			for _, u := range deployments {
				var d appsv1.Deployment
				decodeInto(t, u, &d)
				checkPod(t, d.Name, &d.Spec.Template.Spec, "ghcr.io/palisade-dev/palisade:"+appVersion)
				one(t, objs, "ServiceAccount", d.Spec.Template.Spec.ServiceAccountName)
			}
			for _, u := range find(objs, "DaemonSet", "") {
				var ds appsv1.DaemonSet
				decodeInto(t, u, &ds)
				checkSensorPod(t, ds.Name, &ds.Spec.Template.Spec, "ghcr.io/palisade-dev/palisade:"+appVersion)
				one(t, objs, "ServiceAccount", ds.Spec.Template.Spec.ServiceAccountName)
			}
			for _, u := range find(objs, "Secret", "") {
				if u.Object["data"] != nil || u.Object["stringData"] != nil {
					t.Errorf("Secret %s has a value in the chart: credentials come from existing Secrets", u.GetName())
				}
			}
		})
	}
}

func checkPod(t *testing.T, name string, pod *corev1.PodSpec, image string) {
	t.Helper()
	psc := pod.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 ||
		psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: pod securityContext %+v", name, psc)
	}
	if pod.HostNetwork || pod.HostPID || pod.HostIPC {
		t.Errorf("%s: host namespaces", name)
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
	}
	for _, c := range pod.Containers {
		sc := c.SecurityContext
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.Privileged == nil || *sc.Privileged ||
			sc.Capabilities == nil || len(sc.Capabilities.Add) != 0 || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" {
			t.Errorf("%s/%s: container securityContext %+v", name, c.Name, sc)
		}
		if c.Image != image {
			t.Errorf("%s/%s: image %s, want %s", name, c.Name, c.Image, image)
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
			t.Errorf("%s/%s: resources %+v: want CPU and memory requests and a memory limit", name, c.Name, c.Resources)
		}
		if c.LivenessProbe == nil || c.ReadinessProbe == nil {
			t.Errorf("%s/%s: liveness and readiness probes are required", name, c.Name)
		}
		checkFileFlags(t, name+"/"+c.Name, c, volumes)
	}
}

// checkSensorPod: the sensor DaemonSet is the one exception to checkPod,
// and only by what the kernel needs to load BPF programs and attribute
// containers (see templates/sensor.yaml): root with exactly CAP_BPF,
// CAP_PERFMON, CAP_SYS_ADMIN and CAP_SYS_PTRACE (/proc/<pid>/root of
// non-root containers, for fanotify) added to nothing, hostPID, and the
// host's cgroup tree and BTF read-only. Everything else is held as for the
// other pods: no privileged, no escalation, read-only root, RuntimeDefault
// seccomp, no host network or IPC, no other host path, and a projected
// volume only for a ServiceAccount token (learning).
func checkSensorPod(t *testing.T, name string, pod *corev1.PodSpec, image string) {
	t.Helper()
	if !pod.HostPID || pod.HostNetwork || pod.HostIPC {
		t.Errorf("%s: host namespaces: want hostPID only", name)
	}
	psc := pod.SecurityContext
	if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: pod securityContext %+v", name, psc)
	}
	hostPaths := map[string]string{} // volume → host path
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
		if v.HostPath != nil {
			hostPaths[v.Name] = v.HostPath.Path
		}
		if v.Projected != nil {
			for _, src := range v.Projected.Sources {
				if src.ServiceAccountToken == nil || src.Secret != nil || src.ConfigMap != nil || src.DownwardAPI != nil || src.ClusterTrustBundle != nil {
					t.Errorf("%s: projected volume %s projects more than a ServiceAccount token: %+v", name, v.Name, src)
				}
			}
		}
	}
	allowed := []string{"/sys/fs/cgroup", "/sys/kernel/btf"}
	for v, p := range hostPaths {
		if !slices.Contains(allowed, p) {
			t.Errorf("%s: volume %s mounts host path %s", name, v, p)
		}
	}
	if len(pod.Containers) != 1 || len(pod.InitContainers) != 0 {
		t.Fatalf("%s: %d containers, want the sensor alone", name, len(pod.Containers))
	}
	c := pod.Containers[0]
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Privileged == nil || *sc.Privileged || sc.Capabilities == nil ||
		!slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) ||
		!slices.Equal(sc.Capabilities.Add, []corev1.Capability{"BPF", "PERFMON", "SYS_ADMIN", "SYS_PTRACE"}) {
		t.Errorf("%s/%s: container securityContext %+v", name, c.Name, sc)
	}
	for _, m := range c.VolumeMounts {
		if _, host := hostPaths[m.Name]; host && !m.ReadOnly {
			t.Errorf("%s/%s: host path %s mounted writable", name, c.Name, hostPaths[m.Name])
		}
	}
	if c.Image != image {
		t.Errorf("%s/%s: image %s, want %s", name, c.Name, c.Image, image)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("%s/%s: resources %+v", name, c.Name, c.Resources)
	}
	if c.LivenessProbe == nil || c.ReadinessProbe == nil {
		t.Errorf("%s/%s: liveness and readiness probes are required", name, c.Name)
	}
	checkFileFlags(t, name+"/"+c.Name, c, volumes)
}

// checkFileFlags: a flag naming a file under /etc/palisade must find it
// in a mounted Secret volume that projects that key; a typo in a path
// would otherwise only show as a crash-looping pod.
func checkFileFlags(t *testing.T, where string, c corev1.Container, volumes map[string]corev1.Volume) {
	t.Helper()
	for flag, path := range flags(c.Args) {
		if !strings.HasPrefix(path, "/etc/palisade/") {
			continue
		}
		dir, file := path[:strings.LastIndex(path, "/")], path[strings.LastIndex(path, "/")+1:]
		found := false
		for _, m := range c.VolumeMounts {
			if m.MountPath != dir {
				continue
			}
			v, ok := volumes[m.Name]
			if !ok || v.Secret == nil {
				t.Errorf("%s: %s: volume %s is not a Secret", where, flag, m.Name)
				continue
			}
			for _, it := range v.Secret.Items {
				if it.Path == file {
					found = true
				}
			}
		}
		if !found {
			t.Errorf("%s: %s=%s is in no mounted Secret", where, flag, path)
		}
	}
}

// flags maps --name=value arguments (and bare --name) to their values.
func flags(args []string) map[string]string {
	m := map[string]string{}
	for _, a := range args {
		if name, value, ok := strings.Cut(a, "="); ok {
			m[name] = value
		} else if strings.HasPrefix(a, "--") {
			m[a] = ""
		}
	}
	return m
}

func chartAppVersion(t *testing.T) string {
	t.Helper()
	out, err := runHelm(t, "show", "chart", chartDir)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(out) {
		if v, ok := strings.CutPrefix(line, "appVersion: "); ok {
			return strings.Trim(strings.TrimSpace(v), `"`)
		}
	}
	t.Fatal("no appVersion in Chart.yaml")
	return ""
}

// TestInvalidValuesFailTheRender: values that would deploy something
// broken stop helm with a message instead.
func TestInvalidValuesFailTheRender(t *testing.T) {
	for _, c := range []struct {
		name string
		set  []string
		want string
	}{
		{"half of bundle signing", []string{"bundles.signing.keySecret=k"}, "verifyKeySecret"},
		{"certificates from no Secret", []string{"admission.certificates.mode=secret"}, "secretName"},
		{"branch and tag", []string{"policy.tag=v1"}, "only one of branch, tag and commit"},
		{"unknown failure policy", []string{"admission.failurePolicy=Open"}, "failurePolicy"},
		{"timeout over 30 s", []string{"admission.timeoutSeconds=31"}, "timeoutSeconds"},
		{"misspelled value", []string{"admission.replica=3"}, "replica"},
		{"learning without the sensor", withoutSet(learningSet, "sensor.enabled=true"), "needs sensor.enabled"},
		{"learning without Git credentials", withoutSet(learningSet, "policy.auth.existingSecret=git-https"), "policy.auth.existingSecret"},
		{"learning pushing over SSH", append(slices.Clone(learningSet), "policy.auth.method=ssh"), "method https"},
		{"learning on a tag", append(slices.Clone(learningSet), "policy.branch=", "policy.tag=v1"), "policy.branch"},
		{"learning without a forge", withoutSet(learningSet, "learning.forge.kind=gitea"), "learning.forge.kind"},
		{"learning on Gitea without its URL", withoutSet(learningSet, "learning.forge.url=https://git.example.com"), "learning.forge.url"},
		{"learning without the forge token", withoutSet(learningSet, "learning.forge.tokenSecret=forge-api"), "learning.forge.tokenSecret"},
		{"learning without the admin token", withoutSet(learningSet, "learning.adminTokenSecret=learning-admin"), "learning.adminTokenSecret"},
		{"unknown forge", append(slices.Clone(learningSet), "learning.forge.kind=bitbucket"), "kind"},
		{"unknown next mode", []string{"learning.nextMode=learning"}, "nextMode"},
		{"quiet period not a duration", []string{"learning.quiet=1d"}, "quiet"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, err := runHelm(t, renderArgs(c.set)...)
			if err == nil {
				t.Fatalf("rendered:\n%.300s", out)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want it to mention %q", err, c.want)
			}
		})
	}
}

func toJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func ptr[T any](v T) *T { return &v }

// objectsOf returns the render's objects of the given kinds.
func objectsOf(objs []*unstructured.Unstructured, kinds ...string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, k := range kinds {
		out = append(out, find(objs, k, "")...)
	}
	return out
}

// TestImageIsASystemImage: with the chart's default policy (the example
// repository, cluster prod), the chart's Deployments are admitted in an
// ordinary namespace, and the same Deployments with the image from
// another registry are denied. Palisade's image is an implicit exception
// (the policy's default spec.systemImages), as values.yaml says it must
// be: the policy never blocks the system that enforces it.
func TestImageIsASystemImage(t *testing.T) {
	repo, err := policy.LoadDir("../policies-example")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	eng, err := policytest.NewEngines(repo).For(ctx, "prod")
	if err != nil {
		t.Fatal(err)
	}
	decide := func(obj map[string]any) *bundles.Decision {
		t.Helper()
		d, err := eng.Admission(ctx, policytest.Request(obj, policytest.RequestOptions{Namespace: "default"}), bundles.Facts{Now: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	for _, u := range find(decodeObjects(t, render(t)), "Deployment", "") {
		u.SetNamespace("default")
		if d := decide(u.Object); !d.Allowed {
			t.Errorf("%s denied by the example policy: %+v", u.GetName(), d.Violations)
		}
		containers, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
		for _, c := range containers {
			c.(map[string]any)["image"] = "registry.example.com/palisade:0.1.0"
		}
		if err := unstructured.SetNestedSlice(u.Object, containers, "spec", "template", "spec", "containers"); err != nil {
			t.Fatal(err)
		}
		if d := decide(u.Object); d.Allowed {
			t.Errorf("%s from another registry admitted: the test no longer shows the exception at work", u.GetName())
		}
	}
}
