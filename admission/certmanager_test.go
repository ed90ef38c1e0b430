package admission

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

const (
	testNamespace = "palisade-system"
	testService   = "palisade-admission"
)

// clock is a settable clock.
type clock struct{ t atomic.Pointer[time.Time] }

func newClock(t time.Time) *clock {
	c := &clock{}
	c.set(t)
	return c
}
func (c *clock) now() time.Time      { return *c.t.Load() }
func (c *clock) set(t time.Time)     { c.t.Store(&t) }
func (c *clock) add(d time.Duration) { c.set(c.now().Add(d)) }

func webhookConfig(t *testing.T, name string, labels map[string]string) *admissionregistrationv1.ValidatingWebhookConfiguration {
	t.Helper()
	cfg, err := WebhookConfiguration(WebhookOptions{
		Name:    name,
		Service: &admissionregistrationv1.ServiceReference{Namespace: testNamespace, Name: testService},
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Labels = labels
	return cfg
}

type certFixture struct {
	client *fake.Clientset
	clock  *clock
	opts   CertManagerOptions
}

func newCertFixture(t *testing.T) *certFixture {
	client := fake.NewClientset(
		webhookConfig(t, "palisade", map[string]string{LabelPartOf: "palisade"}),
		webhookConfig(t, "named", nil),
		webhookConfig(t, "other", nil),
	)
	c := newClock(time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC))
	return &certFixture{client: client, clock: c, opts: CertManagerOptions{
		Client:                client,
		Namespace:             testNamespace,
		DNSNames:              ServiceDNSNames(testService, testNamespace),
		WebhookConfigurations: []string{"named"},
		WebhookSelector:       DefaultWebhookSelector,
		Now:                   c.now,
		Logger:                slog.New(slog.DiscardHandler),
	}}
}

func (f *certFixture) manager(t *testing.T) *CertManager {
	t.Helper()
	m, err := NewCertManager(f.opts)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (f *certFixture) secret(t *testing.T) *corev1.Secret {
	t.Helper()
	s, err := f.client.CoreV1().Secrets(testNamespace).Get(context.Background(), DefaultSecretName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (f *certFixture) caBundle(t *testing.T, name string) []byte {
	t.Helper()
	cfg, err := f.client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Webhooks[0].ClientConfig.CABundle
}

// writes counts the create, update and patch actions since the last call.
func (f *certFixture) writes() int {
	n := 0
	for _, a := range f.client.Actions() {
		switch a.GetVerb() {
		case "create", "update", "patch":
			n++
		}
	}
	f.client.ClearActions()
	return n
}

// served returns the served certificate after checking that the API
// server would accept it: the webhook's caBundle verifies it for the
// service's name at the given time.
func served(t *testing.T, m *CertManager, bundle []byte, at time.Time) *x509.Certificate {
	t.Helper()
	c, err := m.GetCertificate(&tls.ClientHelloInfo{})
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(bundle) {
		t.Fatal("caBundle holds no certificate")
	}
	_, err = c.Leaf.Verify(x509.VerifyOptions{
		Roots:       roots,
		DNSName:     testService + "." + testNamespace + ".svc",
		CurrentTime: at,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		t.Fatalf("the caBundle does not verify the served certificate: %v", err)
	}
	return c.Leaf
}

func TestCertManagerLifecycle(t *testing.T) {
	ctx := context.Background()
	f := newCertFixture(t)
	m := f.manager(t)
	if _, err := m.GetCertificate(nil); !errors.Is(err, ErrNoCertificate) {
		t.Fatalf("before Reconcile: %v, want ErrNoCertificate", err)
	}

	if err := m.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	sec := f.secret(t)
	if sec.Type != corev1.SecretTypeTLS || len(sec.Data[corev1.TLSCertKey]) == 0 || len(sec.Data[corev1.TLSPrivateKeyKey]) == 0 ||
		len(sec.Data[secretCAKey]) == 0 || string(sec.Data[secretCACert]) != string(m.CABundle()) {
		t.Fatalf("secret: type %s, keys %d", sec.Type, len(sec.Data))
	}
	for _, name := range []string{"palisade", "named"} {
		if string(f.caBundle(t, name)) != string(m.CABundle()) {
			t.Errorf("caBundle of %s not patched", name)
		}
	}
	if len(f.caBundle(t, "other")) != 0 {
		t.Error("caBundle of a configuration that is not Palisade's was patched")
	}
	first := served(t, m, m.CABundle(), f.clock.now())
	if first.NotAfter.Sub(f.clock.now()) != DefaultCertValidity {
		t.Errorf("serving certificate valid until %s", first.NotAfter)
	}
	f.writes()

	t.Run("a second check writes nothing", func(t *testing.T) {
		if err := m.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
		if n := f.writes(); n != 0 {
			t.Errorf("%d writes", n)
		}
		if !served(t, m, m.CABundle(), f.clock.now()).Equal(first) {
			t.Error("certificate changed")
		}
	})

	t.Run("another replica serves the stored certificate", func(t *testing.T) {
		other := f.manager(t)
		if err := other.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
		if !served(t, other, other.CABundle(), f.clock.now()).Equal(first) {
			t.Error("the replica issued its own certificate")
		}
		if n := f.writes(); n != 0 {
			t.Errorf("%d writes", n)
		}
	})

	t.Run("the serving certificate is renewed a third of its lifetime before it expires", func(t *testing.T) {
		bundle := m.CABundle()
		f.clock.add(DefaultCertValidity * 2 / 3)
		if err := m.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
		got := served(t, m, bundle, f.clock.now())
		if got.Equal(first) {
			t.Fatal("not renewed")
		}
		if string(m.CABundle()) != string(bundle) || string(f.caBundle(t, "palisade")) != string(bundle) {
			t.Error("caBundle changed without a new CA")
		}
		if string(f.secret(t).Data[corev1.TLSCertKey]) == "" {
			t.Error("secret not updated")
		}
	})

	t.Run("the CA is renewed before it expires, and the old one stays trusted until it does", func(t *testing.T) {
		old, err := parseCerts(m.CABundle())
		if err != nil || len(old) != 1 {
			t.Fatalf("bundle: %v, %d certificates", err, len(old))
		}
		oldServing := served(t, m, m.CABundle(), f.clock.now())
		f.clock.set(old[0].NotAfter.Add(-200 * 24 * time.Hour))
		if err := m.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
		cas, err := parseCerts(m.CABundle())
		if err != nil || len(cas) != 2 || !cas[1].Equal(old[0]) || cas[0].Equal(old[0]) {
			t.Fatalf("bundle after renewal: %v, %d certificates", err, len(cas))
		}
		for _, name := range []string{"palisade", "named"} {
			if string(f.caBundle(t, name)) != string(m.CABundle()) {
				t.Errorf("caBundle of %s not patched", name)
			}
		}
		got := served(t, m, m.CABundle(), f.clock.now())
		if got.CheckSignatureFrom(cas[0]) != nil {
			t.Error("serving certificate not signed by the new CA")
		}
		// A replica still serving the old certificate stays trusted.
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM(m.CABundle())
		if _, err := oldServing.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: oldServing.NotAfter.Add(-time.Hour),
			DNSName: testService + "." + testNamespace + ".svc"}); err != nil {
			t.Errorf("the old serving certificate is no longer trusted: %v", err)
		}

		f.clock.set(old[0].NotAfter.Add(time.Hour))
		if err := m.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
		if cas, _ := parseCerts(m.CABundle()); len(cas) != 1 || cas[0].Equal(old[0]) {
			t.Errorf("the expired CA is still in the bundle (%d certificates)", len(cas))
		}
	})
}

func TestCertManagerReplacesAnInvalidSecret(t *testing.T) {
	f := newCertFixture(t)
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: DefaultSecretName, Namespace: testNamespace},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{corev1.TLSCertKey: []byte("garbage"), corev1.TLSPrivateKeyKey: []byte("garbage")},
	}
	if _, err := f.client.CoreV1().Secrets(testNamespace).Create(context.Background(), sec, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	m := f.manager(t)
	if err := m.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	served(t, m, f.secret(t).Data[secretCACert], f.clock.now())
}

func TestCertManagerReissuesForNewNames(t *testing.T) {
	f := newCertFixture(t)
	if err := f.manager(t).Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.opts.DNSNames = append(f.opts.DNSNames, "palisade.example.com")
	m := f.manager(t)
	if err := m.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	c, _ := m.GetCertificate(nil)
	if err := c.Leaf.VerifyHostname("palisade.example.com"); err != nil {
		t.Error(err)
	}
}

func TestCertManagerServesANewCAOnlyOnceTrusted(t *testing.T) {
	ctx := context.Background()
	f := newCertFixture(t)
	// Serving certificates as long-lived as the CA: the old one is still
	// valid when the CA is renewed.
	f.opts.CertValidity = DefaultCAValidity
	var failPatch atomic.Bool
	f.client.PrependReactor("update", "validatingwebhookconfigurations", func(k8stesting.Action) (bool, runtime.Object, error) {
		if failPatch.Load() {
			return true, nil, errors.New("forbidden by RBAC")
		}
		return false, nil, nil
	})
	m := f.manager(t)
	failPatch.Store(true)
	if err := m.Reconcile(ctx); err == nil {
		t.Fatal("no error when the caBundle cannot be patched")
	}
	if _, err := m.GetCertificate(nil); err != nil {
		t.Fatalf("nothing served when nothing was served before: %v", err)
	}
	failPatch.Store(false)
	if err := m.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	before := served(t, m, f.caBundle(t, "palisade"), f.clock.now())

	cas, _ := parseCerts(m.CABundle())
	f.clock.set(cas[0].NotAfter.Add(-200 * 24 * time.Hour))
	failPatch.Store(true)
	if err := m.Reconcile(ctx); err == nil {
		t.Fatal("no error when the caBundle cannot be patched")
	}
	if !served(t, m, f.caBundle(t, "palisade"), f.clock.now()).Equal(before) {
		t.Error("a certificate of the new CA is served before the webhook trusts it")
	}
	failPatch.Store(false)
	if err := m.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if served(t, m, f.caBundle(t, "palisade"), f.clock.now()).Equal(before) {
		t.Error("the renewed certificate is not served once the caBundle is patched")
	}
}

func TestNewCertManagerChecksOptions(t *testing.T) {
	client := fake.NewClientset()
	for name, o := range map[string]CertManagerOptions{
		"no client":    {Namespace: "ns", DNSNames: []string{"a"}},
		"no namespace": {Client: client, DNSNames: []string{"a"}},
		"no names":     {Client: client, Namespace: "ns"},
	} {
		if _, err := NewCertManager(o); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
