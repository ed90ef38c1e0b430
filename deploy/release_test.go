package deploy_test

import (
	"bytes"
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/palisade-dev/palisade/admission"
	"github.com/palisade-dev/palisade/imageverify"
	"github.com/palisade-dev/palisade/test/cluster"
)

// TestRelease installs the chart for real with helm on the real API
// server (nothing runs: there is no kubelet), then checks what only an
// installed release shows: the RBAC as the authorizer sees it, the
// admission code at work under its own ServiceAccount, that an upgrade
// keeps the certificates the webhook wrote, and that uninstall leaves
// nothing behind.
func TestRelease(t *testing.T) {
	c := cluster.Shared(t)
	systemNamespace(t, c)
	kube, err := kubernetes.NewForConfig(c.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	installed := true
	helmOn := func(args ...string) {
		t.Helper()
		if out, err := runHelm(t, append(args, "--namespace", namespace, "--kubeconfig", c.Kubeconfig)...); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
	}
	helmOn("install", releaseName, chartDir)
	t.Cleanup(func() {
		// The webhook fails closed and nothing serves it: it must not
		// outlive the test in the shared cluster.
		if installed {
			helmOn("uninstall", releaseName, "--wait", "--timeout", "60s")
		}
	})

	t.Run("RBAC", func(t *testing.T) { checkAccess(t, kube, false) })
	t.Run("admission under its ServiceAccount", func(t *testing.T) {
		runAdmissionAsItsAccount(t, c, kube, decodeObjects(t, render(t)))
	})

	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	webhooks := kube.AdmissionregistrationV1().ValidatingWebhookConfigurations()
	secrets := kube.CoreV1().Secrets(namespace)

	// A pod's pull secret in an application namespace: readable by the
	// enforcement points only once imageVerification.readPullSecrets is on.
	pullSecret := createPullSecret(ctx, t, kube)
	canReadPullSecret := func(sa string) error {
		_, err := (&imageverify.KubeSecrets{Client: impersonate(t, c, sa)}).DockerConfig(ctx, pullSecret.Namespace, pullSecret.Name)
		return err
	}
	t.Run("pull secrets are out of reach by default", func(t *testing.T) {
		for _, sa := range []string{admissionSA, scannerSA} {
			if err := canReadPullSecret(sa); !apierrors.IsForbidden(err) {
				t.Errorf("%s reads a pod's pull secret: %v, want forbidden", sa, err)
			}
		}
	})

	t.Run("upgrade keeps the certificates", func(t *testing.T) {
		before, err := webhooks.Get(ctx, admission.DefaultConfigurationName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		secBefore, err := secrets.Get(ctx, admission.DefaultSecretName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(before.Webhooks[0].ClientConfig.CABundle) == 0 || len(secBefore.Data) == 0 {
			t.Fatal("no certificates before the upgrade: the admission step did not run")
		}
		helmOn("upgrade", releaseName, chartDir, "--set", "admission.timeoutSeconds=7", "--set", "imageVerification.readPullSecrets=true")
		after, err := webhooks.Get(ctx, admission.DefaultConfigurationName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := *after.Webhooks[0].TimeoutSeconds; got != 7 {
			t.Errorf("timeoutSeconds %d after the upgrade, want 7: the upgrade did not apply", got)
		}
		if !bytes.Equal(after.Webhooks[0].ClientConfig.CABundle, before.Webhooks[0].ClientConfig.CABundle) {
			t.Error("the upgrade reset the caBundle the webhook patched in")
		}
		secAfter, err := secrets.Get(ctx, admission.DefaultSecretName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range secBefore.Data {
			if !bytes.Equal(secAfter.Data[k], v) {
				t.Errorf("the upgrade changed %s of the certificate Secret", k)
			}
		}
	})

	t.Run("pull secrets readable when enabled", func(t *testing.T) {
		for _, sa := range []string{admissionSA, scannerSA} {
			if err := canReadPullSecret(sa); err != nil {
				t.Errorf("%s with imageVerification.readPullSecrets: %v", sa, err)
			}
		}
	})

	t.Run("uninstall leaves nothing behind", func(t *testing.T) {
		helmOn("uninstall", releaseName, "--wait", "--timeout", "60s")
		installed = false
		if _, err := webhooks.Get(ctx, admission.DefaultConfigurationName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("webhook configuration after uninstall: %v", err)
		}
		if _, err := secrets.Get(ctx, admission.DefaultSecretName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("certificate Secret after uninstall: %v", err)
		}
	})
}

// createPullSecret creates a dockerconfigjson Secret in a namespace of
// its own, as a pod's imagePullSecrets would name it.
func createPullSecret(ctx context.Context, t *testing.T, kube kubernetes.Interface) *corev1.Secret {
	t.Helper()
	const ns = "deploy-test-apps"
	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "registry-pull", Namespace: ns},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{"registry.example.com":{"auth":"dXNlcjpwYXNz"}}}`)},
	}
	if _, err := kube.CoreV1().Secrets(ns).Create(ctx, sec, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	return sec
}
