package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/palisade-dev/palisade/admission"
	"github.com/palisade-dev/palisade/test/cluster"
	"github.com/palisade-dev/palisade/test/gitserver"
)

// selfSigned writes a self-signed serving certificate for 127.0.0.1 and
// returns the cert and key files and the PEM that trusts it.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, caPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "palisade-admission-e2e"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	certFile = writeFile(t, dir, "tls.crt", string(caPEM))
	keyFile = writeFile(t, dir, "tls.key", string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})))
	return certFile, keyFile, caPEM
}

// startAdmission runs `palisade admission` and waits until it is ready
// (a bundle is active).
func startAdmission(t *testing.T, addr string, caPEM []byte, args ...string) func() {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	cmd := exec.CommandContext(ctx, palisadeBin, append([]string{"admission", "--listen", addr, "--metrics-listen", "127.0.0.1:0"}, args...)...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	stop := func() { cancel(); <-done }
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("palisade admission output:\n%s", out)
		}
	})
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 2 * time.Second}
	waitFor(t, 30*time.Second, "palisade admission ready", func() bool {
		resp, err := hc.Get("https://" + addr + admission.PathReadyz)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return stop
}

// TestDecisionsSurviveControllerOutage runs the controller and the
// webhook as separate processes: with the controller (and its bundle
// service) gone, and even after the webhook restarts, decisions come from
// the last good bundle.
func TestDecisionsSurviveControllerOutage(t *testing.T) {
	c := cluster.Start(t)
	srv := gitserver.Start(t)
	repo := srv.NewRepo(t, "policy")
	dir := t.TempDir()
	repo.CopyDir("example policy", "../../policies-example")
	ctrl := startController(t,
		"--repo", repo.URL, "--interval", "1s", "--workdir", filepath.Join(dir, "work"),
		"--token-file", writeFile(t, dir, "token", bundleToken))
	waitFor(t, 30*time.Second, "controller serves prod", func() bool { return ctrl.status(t).Clusters["prod"].Revision != "" })

	certFile, keyFile, caPEM := selfSigned(t, dir)
	addr := freeAddr(t)
	args := []string{
		"--bundle-url", ctrl.URL + "/bundles/prod.tar.gz", "--bundle-token-file", filepath.Join(dir, "token"),
		"--cache-dir", filepath.Join(dir, "cache"), "--tls-cert-file", certFile, "--tls-key-file", keyFile,
		"--kubeconfig", c.Kubeconfig,
	}
	stopAdmission := startAdmission(t, addr, caPEM, args...)

	cfg, err := admission.WebhookConfiguration(admission.WebhookOptions{URL: "https://" + addr + admission.Path, CABundle: caPEM})
	if err != nil {
		t.Fatal(err)
	}
	kube, err := kubernetes.NewForConfig(c.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(context.Background(), cfg, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	privileged := mustReadFile(t, "../../policies-example/tests/manifests/busybox-privileged.yaml")
	golden := mustReadFile(t, "../../policies-example/tests/manifests/golden-pod-default.yaml")
	const deniedText = `denied the request: containerSecurityContext violates rule privileged "true" in container(s) "busybox-container" (block)`
	check := func(when string) {
		t.Helper()
		_, stderr, err := c.KubectlInput(privileged, "apply", "--dry-run=server", "-f", "-")
		if err == nil || !strings.Contains(stderr, deniedText) {
			t.Fatalf("%s: privileged pod: err %v\n%s", when, err, stderr)
		}
		if _, stderr, err := c.KubectlInput(golden, "apply", "--dry-run=server", "-f", "-"); err != nil {
			t.Fatalf("%s: compliant pod denied: %v\n%s", when, err, stderr)
		}
	}
	check("controller up")
	ctrl.Stop()
	check("controller down")
	stopAdmission()
	startAdmission(t, addr, caPEM, args...)
	check("controller down, webhook restarted from its cache")
}
