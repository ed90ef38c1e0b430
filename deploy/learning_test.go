package deploy_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/palisade-dev/palisade/admission"
	"github.com/palisade-dev/palisade/learning"
	"github.com/palisade-dev/palisade/test/cluster"
)

// sensorSA is the sensor's ServiceAccount (sensor.enabled).
const sensorSA = "palisade-sensor"

// learningSet turns learning on, with every file it can take from a
// Secret, and the controller serving TLS (so that the sensor's
// --learning-ca-file is rendered and checked too).
var learningSet = []string{
	"sensor.enabled=true", "learning.enabled=true",
	"policy.auth.existingSecret=git-https",
	"controller.tlsSecret=controller-tls", "bundles.tokenSecret=bundle-token",
	"learning.forge.kind=gitea", "learning.forge.url=https://git.example.com", "learning.forge.repo=platform/policy",
	"learning.forge.tokenSecret=forge-api", "learning.forge.tokenSecretKey=api-token", "learning.forge.caSecret=forge-ca",
	"learning.adminTokenSecret=learning-admin",
	"learning.quiet=12h", "learning.checkEvery=30m", "learning.authorEmail=palisade@example.com",
}

// withoutSet is set without the value drop, which it must hold.
func withoutSet(set []string, drop string) []string {
	if !slices.Contains(set, drop) {
		panic("withoutSet: " + drop + " is not in the set")
	}
	return slices.DeleteFunc(slices.Clone(set), func(s string) bool { return s == drop })
}

// learningObjects decodes a render's controller Deployment, its Service
// and the sensor DaemonSet (nil without the sensor).
func learningObjects(t *testing.T, objs []*unstructured.Unstructured) (*appsv1.Deployment, *corev1.Service, *appsv1.DaemonSet) {
	t.Helper()
	var d appsv1.Deployment
	decodeInto(t, one(t, objs, "Deployment", controllerSA), &d)
	var svc corev1.Service
	decodeInto(t, one(t, objs, "Service", controllerSA), &svc)
	var ds *appsv1.DaemonSet
	if u := find(objs, "DaemonSet", sensorSA); len(u) == 1 {
		ds = &appsv1.DaemonSet{}
		decodeInto(t, u[0], ds)
	}
	return &d, &svc, ds
}

// volumeAt returns the volume of pod mounted at dir in c, or fails.
func volumeAt(t *testing.T, pod *corev1.PodSpec, c corev1.Container, dir string) (corev1.Volume, corev1.VolumeMount) {
	t.Helper()
	for _, m := range c.VolumeMounts {
		if m.MountPath != dir {
			continue
		}
		for _, v := range pod.Volumes {
			if v.Name == m.Name {
				return v, m
			}
		}
	}
	t.Fatalf("%s: nothing mounted at %s", c.Name, dir)
	return corev1.Volume{}, corev1.VolumeMount{}
}

// TestLearningWiring: with learning on, the controller gets the learning
// and forge flags from the values, its profiles on a PersistentVolumeClaim
// (ReadWriteOnce, hence the Recreate strategy), its own ServiceAccount
// token for TokenReview, and names the sensor's ServiceAccount as the one
// that may send observations; the sensor sends to the controller's Service
// with a projected ServiceAccount token of the API server's audience.
func TestLearningWiring(t *testing.T) {
	objs := decodeObjects(t, render(t, learningSet...))
	d, svc, ds := learningObjects(t, objs)
	pod := &d.Spec.Template.Spec
	c := pod.Containers[0]
	args := flags(c.Args)

	if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType || d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
		t.Errorf("controller: strategy %q, replicas %v: want one replica, Recreate (a ReadWriteOnce volume)", d.Spec.Strategy.Type, d.Spec.Replicas)
	}
	if pod.AutomountServiceAccountToken == nil || !*pod.AutomountServiceAccountToken {
		t.Error("controller: no ServiceAccount token mounted: TokenReview needs one")
	}
	if ds == nil {
		t.Fatal("no sensor DaemonSet with learning")
	}
	for flag, want := range map[string]string{
		"--learning-dir":               "/var/lib/palisade-learning/profiles",
		"--learning-token-file":        "/etc/palisade/learning-token/token",
		"--learning-sensor-accounts":   namespace + "/" + ds.Spec.Template.Spec.ServiceAccountName,
		"--learning-audience":          "palisade-controller",
		"--learning-quiet":             "12h",
		"--learning-check-every":       "30m",
		"--learning-next-mode":         "audit",
		"--learning-author-email":      "palisade@example.com",
		"--forge":                      "gitea",
		"--forge-url":                  "https://git.example.com",
		"--forge-repo":                 "platform/policy",
		"--forge-token-file":           "/etc/palisade/forge-token/token",
		"--forge-ca-file":              "/etc/palisade/forge-ca/ca.crt",
		"--git-password-file":          "/etc/palisade/git/password",
		"--branch":                     "main",
		"--learning-sensor-token-file": "", // absent: TokenReview
	} {
		got, ok := args[flag]
		if want == "" {
			if ok {
				t.Errorf("controller: %s=%s, want it absent", flag, got)
			}
			continue
		}
		if got != want {
			t.Errorf("controller: %s=%q, want %q", flag, got, want)
		}
	}
	if ds.Spec.Template.Spec.ServiceAccountName != sensorSA {
		t.Errorf("sensor ServiceAccount %s, want %s", ds.Spec.Template.Spec.ServiceAccountName, sensorSA)
	}

	// The forge token comes from the key the values name.
	forge, _ := volumeAt(t, pod, c, "/etc/palisade/forge-token")
	if forge.Secret == nil || forge.Secret.SecretName != "forge-api" || len(forge.Secret.Items) != 1 ||
		forge.Secret.Items[0].Key != "api-token" || forge.Secret.Items[0].Path != "token" {
		t.Errorf("forge token volume %+v: want key api-token of Secret forge-api as token", forge.VolumeSource)
	}

	// The profiles: on the chart's claim, writable.
	profiles, m := volumeAt(t, pod, c, path.Dir(args["--learning-dir"]))
	if profiles.PersistentVolumeClaim == nil || m.ReadOnly {
		t.Fatalf("--learning-dir on %+v (read-only %v): want a writable PersistentVolumeClaim", profiles.VolumeSource, m.ReadOnly)
	}
	var pvc corev1.PersistentVolumeClaim
	decodeInto(t, one(t, objs, "PersistentVolumeClaim", profiles.PersistentVolumeClaim.ClaimName), &pvc)
	if !slices.Equal(pvc.Spec.AccessModes, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}) ||
		!pvc.Spec.Resources.Requests.Storage().Equal(resource.MustParse("1Gi")) || pvc.Spec.StorageClassName != nil {
		t.Errorf("profiles claim %+v: want ReadWriteOnce, 1Gi, the default storage class", pvc.Spec)
	}

	// The sensor sends to the controller's Service, over TLS verified
	// with the controller's CA, with its projected token.
	sc := ds.Spec.Template.Spec.Containers[0]
	sargs := flags(sc.Args)
	u, err := url.Parse(sargs["--learning-url"])
	if err != nil {
		t.Fatal(err)
	}
	if want := svc.Name + "." + namespace + ".svc"; u.Scheme != "https" || u.Hostname() != want ||
		u.Port() != strconv.Itoa(int(svc.Spec.Ports[0].Port)) || (u.Path != "" && u.Path != "/") {
		t.Errorf("--learning-url=%s: want https://%s:%d, the controller's Service", u, want, svc.Spec.Ports[0].Port)
	}
	if sargs["--learning-ca-file"] != "/etc/palisade/bundle-ca/ca.crt" {
		t.Errorf("--learning-ca-file=%q: want the controller's CA", sargs["--learning-ca-file"])
	}
	tokenFile := sargs["--learning-token-file"]
	if tokenFile != "/var/run/secrets/tokens/palisade-learning" {
		t.Errorf("--learning-token-file=%q, want the sensor's default /var/run/secrets/tokens/palisade-learning", tokenFile)
	}
	tv, tm := volumeAt(t, &ds.Spec.Template.Spec, sc, path.Dir(tokenFile))
	if tv.Projected == nil || len(tv.Projected.Sources) != 1 || tv.Projected.Sources[0].ServiceAccountToken == nil || !tm.ReadOnly {
		t.Fatalf("sensor token volume %+v: want a read-only projected ServiceAccount token", tv.VolumeSource)
	}
	tok := tv.Projected.Sources[0].ServiceAccountToken
	if tok.Path != path.Base(tokenFile) || tok.Audience != args["--learning-audience"] || tok.ExpirationSeconds == nil || *tok.ExpirationSeconds > 3600 {
		t.Errorf("sensor token %+v: want path %s, the controller's audience %q (the API server refuses it), an hour at most",
			tok, path.Base(tokenFile), args["--learning-audience"])
	}

	t.Run("existing claim", func(t *testing.T) {
		objs := decodeObjects(t, render(t, append(slices.Clone(learningSet), "learning.persistence.existingClaim=profiles")...))
		if pvcs := find(objs, "PersistentVolumeClaim", ""); len(pvcs) != 0 {
			t.Errorf("the chart creates claim %s although an existing one is named", pvcs[0].GetName())
		}
		d, _, _ := learningObjects(t, objs)
		v, _ := volumeAt(t, &d.Spec.Template.Spec, d.Spec.Template.Spec.Containers[0], "/var/lib/palisade-learning")
		if v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != "profiles" {
			t.Errorf("profiles volume %+v, want the claim profiles", v.VolumeSource)
		}
	})
	t.Run("storage class and size", func(t *testing.T) {
		objs := decodeObjects(t, render(t, append(slices.Clone(learningSet), "learning.persistence.storageClass=fast", "learning.persistence.size=5Gi")...))
		var pvc corev1.PersistentVolumeClaim
		decodeInto(t, one(t, objs, "PersistentVolumeClaim", "palisade-learning"), &pvc)
		if pvc.Spec.StorageClassName == nil || *pvc.Spec.StorageClassName != "fast" || !pvc.Spec.Resources.Requests.Storage().Equal(resource.MustParse("5Gi")) {
			t.Errorf("claim %+v: want storage class fast, 5Gi", pvc.Spec)
		}
	})
	t.Run("GitHub without a URL", func(t *testing.T) {
		set := append(withoutSet(learningSet, "learning.forge.url=https://git.example.com"), "learning.forge.kind=github")
		d, _, _ := learningObjects(t, decodeObjects(t, render(t, set...)))
		args := flags(d.Spec.Template.Spec.Containers[0].Args)
		if _, ok := args["--forge-url"]; ok || args["--forge"] != "github" {
			t.Errorf("--forge=%q, --forge-url=%q: want github and no URL (github.com)", args["--forge"], args["--forge-url"])
		}
	})
}

// TestLearningOffByDefault: without learning.enabled (the defaults, and
// the sensor with every credential) nothing of learning is rendered: no
// flag, no claim, no token for the controller, no TokenReview role.
func TestLearningOffByDefault(t *testing.T) {
	for _, v := range variations {
		if v.learning {
			continue
		}
		t.Run(v.name, func(t *testing.T) {
			objs := decodeObjects(t, render(t, v.set...))
			d, _, ds := learningObjects(t, objs)
			if a := d.Spec.Template.Spec.AutomountServiceAccountToken; a == nil || *a {
				t.Error("controller: ServiceAccount token mounted without learning")
			}
			var all []string
			all = append(all, d.Spec.Template.Spec.Containers[0].Args...)
			if ds != nil {
				all = append(all, ds.Spec.Template.Spec.Containers[0].Args...)
				for _, vol := range ds.Spec.Template.Spec.Volumes {
					if vol.Projected != nil {
						t.Errorf("sensor: projected volume %s without learning", vol.Name)
					}
				}
			}
			for _, a := range all {
				if strings.HasPrefix(a, "--learning") || strings.HasPrefix(a, "--forge") {
					t.Errorf("%s without learning", a)
				}
			}
			if n := len(find(objs, "PersistentVolumeClaim", "")); n != 0 {
				t.Errorf("%d claims without learning", n)
			}
			for _, u := range objectsOf(objs, "ClusterRole", "Role") {
				if strings.Contains(toJSON(t, u.Object), "tokenreviews") {
					t.Errorf("%s %s grants tokenreviews without learning", u.GetKind(), u.GetName())
				}
			}
		})
	}
}

// TestSecretsAreFiles: no container of any variation takes a Secret in
// an environment variable (they leak through /proc/<pid>/environ, crash
// dumps and `kubectl describe`); each Secret the values name is a volume.
func TestSecretsAreFiles(t *testing.T) {
	for _, v := range variations {
		t.Run(v.name, func(t *testing.T) {
			objs := decodeObjects(t, render(t, v.set...))
			mounted := map[string]bool{}
			check := func(name string, pod corev1.PodSpec) {
				for _, vol := range pod.Volumes {
					if vol.Secret != nil {
						mounted[vol.Secret.SecretName] = true
					}
				}
				for _, c := range slices.Concat(pod.InitContainers, pod.Containers) {
					for _, e := range c.Env {
						if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
							t.Errorf("%s/%s: env %s from Secret %s", name, c.Name, e.Name, e.ValueFrom.SecretKeyRef.Name)
						}
					}
					for _, e := range c.EnvFrom {
						if e.SecretRef != nil {
							t.Errorf("%s/%s: env from Secret %s", name, c.Name, e.SecretRef.Name)
						}
					}
				}
			}
			for _, u := range find(objs, "Deployment", "") {
				var d appsv1.Deployment
				decodeInto(t, u, &d)
				check(d.Name, d.Spec.Template.Spec)
			}
			for _, u := range find(objs, "DaemonSet", "") {
				var ds appsv1.DaemonSet
				decodeInto(t, u, &ds)
				check(ds.Name, ds.Spec.Template.Spec)
			}
			// Every "...Secret=name" value is mounted somewhere.
			for _, s := range v.set {
				key, name, _ := strings.Cut(s, "=")
				if (strings.HasSuffix(key, "Secret") || strings.HasSuffix(key, ".existingSecret")) && name != "" && !mounted[name] {
					t.Errorf("%s=%s is mounted by no pod", key, name)
				}
			}
		})
	}
}

// TestLearningRelease installs the chart with learning on the real API
// server and proves the controller's new permission with the code that
// uses it: learning's TokenReview authenticator, as the controller's
// ServiceAccount (impersonated) and with the chart's
// --learning-sensor-accounts, accepts a token of the sensor's
// ServiceAccount issued as its projected volume asks (the controller's
// audience) and refuses the scanner's and one for the API server; the authorizer grants the
// controller tokenreviews and nothing else; uninstall removes the claim
// and the role.
func TestLearningRelease(t *testing.T) {
	c := cluster.Shared(t)
	systemNamespace(t, c)
	kube, err := kubernetes.NewForConfig(c.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	helmOn := func(args ...string) {
		t.Helper()
		if out, err := runHelm(t, append(args, "--namespace", namespace, "--kubeconfig", c.Kubeconfig)...); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
	}
	install := []string{"install", releaseName, chartDir}
	for _, s := range learningSet {
		install = append(install, "--set", s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	// The API server puts the kubernetes.io/pvc-protection finalizer on
	// the claim; the controller-manager, absent here, removes it once no
	// pod uses the claim (none does: there is no kubelet). Doing its part
	// lets `helm uninstall --wait` see the claim go.
	uninstall := func() {
		t.Helper()
		patch := []byte(`{"metadata":{"finalizers":null}}`)
		if _, err := kube.CoreV1().PersistentVolumeClaims(namespace).Patch(ctx, "palisade-learning", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("drop the claim's protection finalizer: %v", err)
		}
		helmOn("uninstall", releaseName, "--wait", "--timeout", "60s")
	}
	helmOn(install...)
	installed := true
	t.Cleanup(func() {
		if installed {
			uninstall()
		}
	})

	t.Run("RBAC", func(t *testing.T) { checkAccess(t, kube, true) })

	t.Run("controller authenticates the sensor", func(t *testing.T) {
		objs := decodeObjects(t, render(t, learningSet...))
		d, _, ds := learningObjects(t, objs)
		var users []string // as `palisade controller` reads the flag
		for _, a := range strings.Split(flags(d.Spec.Template.Spec.Containers[0].Args)["--learning-sensor-accounts"], ",") {
			ns, name, _ := strings.Cut(a, "/")
			users = append(users, "system:serviceaccount:"+ns+":"+name)
		}
		auth := learning.NewTokenReviewAuth(impersonate(t, c, d.Spec.Template.Spec.ServiceAccountName), learning.TokenReviewOptions{
			AllowedUsers: users, Audiences: []string{flags(d.Spec.Template.Spec.Containers[0].Args)["--learning-audience"]},
		})
		tokenOf := func(sa string) string { return projectedToken(ctx, t, kube, ds, sa) }
		present := func(token string) (string, error) {
			r := httptest.NewRequest("POST", learning.BatchesPath, nil)
			r.Header.Set("Authorization", "Bearer "+token)
			return auth.Authenticate(r)
		}
		subject, err := present(tokenOf(ds.Spec.Template.Spec.ServiceAccountName))
		if err != nil || subject != saUser(sensorSA) {
			t.Errorf("sensor's token: subject %q, %v; want %s", subject, err, saUser(sensorSA))
		}
		if _, err := present(tokenOf(scannerSA)); !errors.Is(err, learning.ErrForbidden) {
			t.Errorf("scanner's token: %v, want forbidden", err)
		}
		apiToken, err := kube.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, sensorSA, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := present(apiToken.Status.Token); err == nil {
			t.Error("the sensor's token for the API server's audience was accepted; want only the controller's audience")
		}
		if _, err := present("not-a-token"); !errors.Is(err, learning.ErrUnauthenticated) {
			t.Errorf("a bad token: %v, want unauthenticated", err)
		}
	})

	t.Run("the controller with the chart's flags keeps the sensor's batches across a restart", func(t *testing.T) {
		objs := decodeObjects(t, render(t, learningSet...))
		bin := buildPalisade(t, t.TempDir())
		root := t.TempDir()
		base, ca, stop := controllerAsChart(t, c, bin, root, objs)
		if err := sendAsSensor(t, kube, root, base, ca, objs, scannerSA, "node-a/boot-1/1"); err == nil || !strings.Contains(err.Error(), "403") {
			t.Errorf("a batch with the scanner's token: %v, want 403 Forbidden", err)
		}
		if err := sendAsSensor(t, kube, root, base, ca, objs, sensorSA, "node-a/boot-1/1"); err != nil {
			t.Fatalf("a batch with the sensor's token: %v", err)
		}
		// A new pod on the same claim: the profile is still there.
		stop()
		base, ca, _ = controllerAsChart(t, c, bin, root, objs)
		writeFile(t, filepath.Join(root, "sensor", flags(learningSensorArgs(t, objs))["--learning-ca-file"]), ca)
		st := learningStatus(t, root, base, objs)
		if len(st.Rulesets) != 1 || st.Rulesets[0].Ruleset != "baseline_runtime" || st.Rulesets[0].Workloads != 1 || st.Rulesets[0].Behaviours != 1 {
			t.Errorf("profiles after a restart: %+v, want baseline_runtime with one workload and one behaviour", st.Rulesets)
		}
	})

	t.Run("uninstall removes the claim and the role", func(t *testing.T) {
		uninstall()
		installed = false
		if _, err := kube.RbacV1().ClusterRoles().Get(ctx, controllerSA+"-tokenreview", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("TokenReview role after uninstall: %v", err)
		}
		if _, err := kube.CoreV1().PersistentVolumeClaims(namespace).Get(ctx, "palisade-learning", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("profiles claim after uninstall: %v", err)
		}
	})
}

// controllerAsChart runs `palisade controller` (bin) with the controller
// container's arguments from objs, as the kubelet would run it: the files
// the flags name under /etc/palisade and /var/lib/palisade-learning exist
// under a temporary root (Secrets: a local CA and a serving certificate
// it issued for the TLS and CA keys, a placeholder for the others), the policy repository is a
// local copy of policies-example, it listens on loopback, and its
// --kubeconfig impersonates its ServiceAccount, with the groups its
// mounted token would carry. The clone is new on every run (an emptyDir),
// the rest stays under root. It returns the base URL, the CA of the
// serving certificate, and a function that stops the controller.
func controllerAsChart(t *testing.T, c *cluster.Cluster, bin, root string, objs []*unstructured.Unstructured) (string, []byte, func()) {
	t.Helper()
	d, _, _ := learningObjects(t, objs)
	certPEM, keyPEM, caPEM, err := admission.LocalCertificatePEM(nil, []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	repo := filepath.Join(root, "repo")
	if _, err := os.Stat(repo); err != nil {
		policyRepo(t, repo)
	}
	var args []string
	for _, a := range d.Spec.Template.Spec.Containers[0].Args {
		flag, value, _ := strings.Cut(a, "=")
		switch {
		case flag == "--repo":
			a = "--repo=file://" + repo
		case flag == "--workdir":
			a = "--workdir=" + t.TempDir()
		case flag == "--listen":
			a = "--listen=127.0.0.1:" + port
		case strings.HasPrefix(value, "/var/lib/palisade-learning/"):
			a = flag + "=" + filepath.Join(root, value)
		case strings.HasPrefix(value, "/etc/palisade/"):
			content := []byte("secret-" + path.Base(value) + "\n")
			switch path.Base(value) {
			case "tls.crt":
				content = certPEM
			case "ca.crt":
				content = caPEM
			case "tls.key":
				content = keyPEM
			}
			writeFile(t, filepath.Join(root, value), content)
			a = flag + "=" + filepath.Join(root, value)
		}
		args = append(args, a)
	}
	args = append(args, "--kubeconfig="+impersonatingKubeconfig(t, c, filepath.Join(root, "kubeconfig"), controllerSA))

	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	stop := func() {
		cancel()
		<-done
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("palisade controller %s:\n%s", strings.Join(args, " "), out.String())
		}
	})

	base := "https://127.0.0.1:" + port
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 2 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-done:
			t.Fatalf("palisade controller exited:\n%s", out.String())
		default:
		}
		resp, err := client.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base, caPEM, stop
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("palisade controller not healthy after 30 s (%v):\n%s", err, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// sendAsSensor sends a batch as the sensor does, with the sensor
// container's --learning-url (but for the host: the Service's name
// resolves to the controller's pod, here loopback), --learning-ca-file
// holding ca, and a token of the ServiceAccount sa issued as the sensor's
// projected volume asks, in the file --learning-token-file names (both
// under root/sensor), to the controller at base.
func sendAsSensor(t *testing.T, kube kubernetes.Interface, root, base string, ca []byte, objs []*unstructured.Unstructured, sa, batchID string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	_, _, ds := learningObjects(t, objs)
	sargs := flags(ds.Spec.Template.Spec.Containers[0].Args)
	tokenFile := filepath.Join(root, "sensor", sargs["--learning-token-file"])
	writeFile(t, tokenFile, []byte(projectedToken(ctx, t, kube, ds, sa)))
	caFile := filepath.Join(root, "sensor", sargs["--learning-ca-file"])
	writeFile(t, caFile, ca)
	// The chart's URL but for its host, which is the Service's name.
	u, err := url.Parse(sargs["--learning-url"])
	if err != nil {
		t.Fatal(err)
	}
	b, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	if u.Scheme != b.Scheme {
		t.Fatalf("--learning-url %s: scheme %s, but the controller serves %s", u, u.Scheme, b.Scheme)
	}
	u.Host = b.Host
	sender, err := learning.NewSender(learning.SenderOptions{
		URL: u.String(), TokenFile: tokenFile, CAFile: caFile,
	})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	batch := &learning.Batch{ID: batchID, Node: "node-a", Sent: now, Observations: []learning.Observed{{
		Ruleset:  "baseline_runtime",
		Workload: learning.WorkloadID{Namespace: "shop", Workload: "Deployment/web", Container: "app", Image: "registry.example/shop/web"},
		Key:      learning.Key{Kind: learning.KindProcess, Operation: "exec", Path: "/usr/bin/nginx", ProcessName: "nginx"},
		Evidence: learning.Evidence{Count: 3, FirstSeen: now, LastSeen: now, Pods: []string{"web-7f9c-abcde"}},
	}}}
	return sender.Send(ctx, batch)
}

// learningStatus reads the controller's profiles with the token and CA
// the last sendAsSensor wrote.
func learningStatus(t *testing.T, root, base string, objs []*unstructured.Unstructured) learning.StatusResponse {
	t.Helper()
	_, _, ds := learningObjects(t, objs)
	sargs := flags(ds.Spec.Template.Spec.Containers[0].Args)
	token, err := os.ReadFile(filepath.Join(root, "sensor", sargs["--learning-token-file"]))
	if err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(filepath.Join(root, "sensor", sargs["--learning-ca-file"]))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 10 * time.Second}
	req, err := http.NewRequest(http.MethodGet, base+learning.StatusPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+string(token))
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st learning.StatusResponse
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", learning.StatusPath, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// projectedToken issues a token of the ServiceAccount sa as the sensor
// DaemonSet's projected volume asks for it (audience, expiry).
func projectedToken(ctx context.Context, t *testing.T, kube kubernetes.Interface, ds *appsv1.DaemonSet, sa string) string {
	t.Helper()
	var projected *corev1.ServiceAccountTokenProjection
	for _, v := range ds.Spec.Template.Spec.Volumes {
		if v.Projected != nil && len(v.Projected.Sources) == 1 {
			projected = v.Projected.Sources[0].ServiceAccountToken
		}
	}
	if projected == nil {
		t.Fatal("no projected token in the sensor's pod")
	}
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: projected.ExpirationSeconds}}
	if projected.Audience != "" {
		req.Spec.Audiences = []string{projected.Audience}
	}
	tr, err := kube.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, sa, req, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token of %s: %v", sa, err)
	}
	return tr.Status.Token
}

// impersonatingKubeconfig writes the cluster's kubeconfig to file with
// every user impersonating the ServiceAccount sa.
func impersonatingKubeconfig(t *testing.T, c *cluster.Cluster, file, sa string) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(c.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range cfg.AuthInfos {
		u.Impersonate = saUser(sa)
		u.ImpersonateGroups = saGroups
	}
	if err := clientcmd.WriteToFile(*cfg, file); err != nil {
		t.Fatal(err)
	}
	return file
}

// policyRepo makes dir a Git repository whose branch main holds a copy
// of policies-example, and returns dir.
func policyRepo(t *testing.T, dir string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(filepath.Join(dir, "policies-example"), os.DirFS("../policies-example")); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"init", "-q", "-b", "main"},
		{"add", "."},
		{"-c", "user.name=deploy-test", "-c", "user.email=deploy-test@palisade.invalid", "commit", "-q", "-m", "policy"},
	} {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	return dir
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

func writeFile(t *testing.T, name string, content []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, content, 0o600); err != nil {
		t.Fatal(err)
	}
}

func learningSensorArgs(t *testing.T, objs []*unstructured.Unstructured) []string {
	t.Helper()
	_, _, ds := learningObjects(t, objs)
	return ds.Spec.Template.Spec.Containers[0].Args
}
