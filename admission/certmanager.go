package admission

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
)

// Defaults of the self-managed certificates. Renewal starts when a third
// of a certificate's lifetime remains, as cert-manager does: a serving
// certificate 30 days before it expires, the CA 8 months before. A
// renewed CA is added to the caBundle next to the old one, which stays
// until it expires, so that replicas still serving a certificate of the
// old CA are trusted throughout.
const (
	DefaultSecretName = "palisade-admission-tls"
	// Short-lived serving certificates limit what a leaked key is worth;
	// renewal costs nothing.
	DefaultCertValidity = 90 * 24 * time.Hour
	// The CA outlives many serving certificates, so the caBundle seldom
	// changes.
	DefaultCAValidity = 2 * 365 * 24 * time.Hour
	// DefaultCertCheckInterval also bounds how long a caBundle reset by
	// someone else (a Helm upgrade) stays wrong.
	DefaultCertCheckInterval = time.Minute
	// certRetryDelay follows a failed check.
	certRetryDelay = 5 * time.Second
)

// Keys of the certificate Secret (a kubernetes.io/tls Secret with the CA
// added, as Gatekeeper's cert-controller stores it). ca.crt is the
// caBundle: the current CA first, then older ones still valid.
const (
	secretCACert = "ca.crt"
	secretCAKey  = "ca.key"
)

// ErrNoCertificate is returned by CertManager.GetCertificate before the
// first successful Reconcile.
var ErrNoCertificate = errors.New("no webhook serving certificate yet")

// CertManagerOptions configure a CertManager.
type CertManagerOptions struct {
	// Client reaches the cluster (required). It needs get, create and
	// update on the Secret, and get, list and update on
	// validatingwebhookconfigurations.
	Client kubernetes.Interface
	// Namespace of the Secret (required): the system namespace.
	Namespace string
	// SecretName (DefaultSecretName if empty).
	SecretName string
	// DNSNames and IPAddresses the serving certificate names; at least
	// one. ServiceDNSNames gives the names of a Service.
	DNSNames    []string
	IPAddresses []net.IP
	// WebhookConfigurations are the names of the
	// ValidatingWebhookConfigurations whose caBundle is kept current, and
	// WebhookSelector a label selector for more of them. With neither,
	// DefaultWebhookSelector applies.
	WebhookConfigurations []string
	WebhookSelector       string
	// CAValidity and CertValidity (DefaultCAValidity, DefaultCertValidity
	// if zero).
	CAValidity, CertValidity time.Duration
	// Interval between checks in Run (DefaultCertCheckInterval if zero).
	Interval time.Duration
	// Now is the clock (nil: time.Now).
	Now    func() time.Time
	Logger *slog.Logger
}

// CertManager keeps the webhook's certificates without outside help, as
// Kyverno and Gatekeeper do: it generates a CA and a serving certificate
// (ECDSA P-256), stores them in a Secret shared by every replica, renews
// them before they expire, and patches the caBundle of Palisade's webhook
// configurations. Call Reconcile once before serving, then Run.
type CertManager struct {
	opts     CertManagerOptions
	log      *slog.Logger
	cert     atomic.Pointer[tls.Certificate]
	caBundle atomic.Pointer[[]byte]
}

// certState is the content of the Secret.
type certState struct {
	ca      *keyPair
	cas     []*x509.Certificate // the caBundle: ca first
	serving *keyPair
}

// NewCertManager checks the options and returns a manager.
func NewCertManager(o CertManagerOptions) (*CertManager, error) {
	switch {
	case o.Client == nil:
		return nil, errors.New("new certificate manager: no Kubernetes client")
	case o.Namespace == "":
		return nil, errors.New("new certificate manager: no namespace for the Secret")
	case len(o.DNSNames) == 0 && len(o.IPAddresses) == 0:
		return nil, errors.New("new certificate manager: no DNS name or IP address for the certificate")
	}
	if o.SecretName == "" {
		o.SecretName = DefaultSecretName
	}
	if len(o.WebhookConfigurations) == 0 && o.WebhookSelector == "" {
		o.WebhookSelector = DefaultWebhookSelector
	}
	if o.CAValidity <= 0 {
		o.CAValidity = DefaultCAValidity
	}
	if o.CertValidity <= 0 {
		o.CertValidity = DefaultCertValidity
	}
	if o.Interval <= 0 {
		o.Interval = DefaultCertCheckInterval
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &CertManager{opts: o, log: o.Logger}, nil
}

// ServiceDNSNames returns the DNS names of a Service: the API server
// calls a service webhook at <service>.<namespace>.svc.
func ServiceDNSNames(service, namespace string) []string {
	return []string{
		service,
		service + "." + namespace,
		service + "." + namespace + ".svc",
		service + "." + namespace + ".svc.cluster.local",
	}
}

// GetCertificate returns the serving certificate, for
// tls.Config.GetCertificate, or ErrNoCertificate.
func (m *CertManager) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if c := m.cert.Load(); c != nil {
		return c, nil
	}
	return nil, ErrNoCertificate
}

// CABundle returns the PEM bundle that verifies the serving certificate,
// nil before the first successful Reconcile. Use it as the caBundle of a
// webhook configuration created after Reconcile.
func (m *CertManager) CABundle() []byte {
	if b := m.caBundle.Load(); b != nil {
		return *b
	}
	return nil
}

// Run calls Reconcile every Interval (every few seconds after a failure)
// until ctx is done, and returns nil then.
func (m *CertManager) Run(ctx context.Context) error {
	for {
		delay := m.opts.Interval
		if err := m.Reconcile(ctx); err != nil && ctx.Err() == nil {
			delay = min(certRetryDelay, delay)
			m.log.Error("webhook certificate check failed", keySecret, m.opts.SecretName, keyError, err.Error(), keyRetryIn, delay)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// Reconcile makes the Secret hold a valid CA and serving certificate
// (creating or renewing them), patches the caBundle of the webhook
// configurations, and serves the certificate. A new certificate is served
// only once the caBundle was patched (or when what is served is missing or
// expired), so that the API server trusts what is served.
func (m *CertManager) Reconcile(ctx context.Context) error {
	var st *certState
	var err error
	for range 3 {
		// Replicas race to create or renew: the loser reads the winner's.
		st, err = m.ensureSecret(ctx)
		if !apierrors.IsConflict(err) && !apierrors.IsAlreadyExists(err) {
			break
		}
	}
	if err != nil {
		return err
	}
	bundle := encodeCerts(st.cas)
	patchErr := m.patchWebhooks(ctx, bundle)
	if cur := m.cert.Load(); patchErr == nil || cur == nil || !cur.Leaf.NotAfter.After(m.opts.Now()) {
		m.caBundle.Store(&bundle)
		m.cert.Store(&tls.Certificate{
			Certificate: [][]byte{st.serving.cert.Raw},
			PrivateKey:  st.serving.key,
			Leaf:        st.serving.cert,
		})
	}
	return patchErr
}

// ensureSecret reads the Secret and creates or updates it when a
// certificate is missing, invalid or due for renewal.
func (m *CertManager) ensureSecret(ctx context.Context) (*certState, error) {
	secrets := m.opts.Client.CoreV1().Secrets(m.opts.Namespace)
	sec, err := secrets.Get(ctx, m.opts.SecretName, metav1.GetOptions{})
	notFound := apierrors.IsNotFound(err)
	if err != nil && !notFound {
		return nil, fmt.Errorf("get secret %s/%s: %w", m.opts.Namespace, m.opts.SecretName, err)
	}
	var st *certState
	if !notFound {
		if st, err = parseSecret(sec); err != nil {
			m.log.Warn("webhook certificate secret invalid, replacing it", keySecret, m.opts.SecretName, keyError, err.Error())
		}
	}
	st, changed, err := m.renew(st)
	if err != nil || !changed {
		return st, err
	}
	data := map[string][]byte{
		corev1.TLSCertKey:       st.serving.certPEM,
		corev1.TLSPrivateKeyKey: st.serving.keyPEM,
		secretCACert:            encodeCerts(st.cas),
		secretCAKey:             st.ca.keyPEM,
	}
	if notFound {
		sec = &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{
				Name:      m.opts.SecretName,
				Namespace: m.opts.Namespace,
				Labels:    map[string]string{LabelPartOf: "palisade", "app.kubernetes.io/managed-by": "palisade"},
			},
			Type: corev1.SecretTypeTLS,
			Data: data,
		}
		_, err = secrets.Create(ctx, sec, metav1.CreateOptions{})
	} else {
		sec = sec.DeepCopy()
		sec.Data = data
		_, err = secrets.Update(ctx, sec, metav1.UpdateOptions{})
	}
	if err != nil {
		return nil, fmt.Errorf("store secret %s/%s: %w", m.opts.Namespace, m.opts.SecretName, err)
	}
	m.log.Info("webhook certificate issued", keySecret, m.opts.SecretName, keyNotAfter, st.serving.cert.NotAfter)
	return st, nil
}

// renew returns st with what is missing, invalid or due for renewal
// replaced, and whether anything changed.
func (m *CertManager) renew(st *certState) (*certState, bool, error) {
	now := m.opts.Now()
	changed := false
	if st == nil || dueForRenewal(st.ca.cert, now) {
		ca, err := newCA(now, m.opts.CAValidity)
		if err != nil {
			return nil, false, fmt.Errorf("issue webhook CA: %w", err)
		}
		cas := []*x509.Certificate{ca.cert}
		if st != nil {
			cas = append(cas, st.cas...)
			m.log.Info("webhook CA renewed", keySecret, m.opts.SecretName, keyNotAfter, ca.cert.NotAfter)
		}
		st = &certState{ca: ca, cas: cas}
		changed = true
	}
	// Drop expired CAs from the bundle.
	valid := slices.DeleteFunc(slices.Clone(st.cas), func(c *x509.Certificate) bool { return !c.NotAfter.After(now) })
	if len(valid) != len(st.cas) {
		st.cas, changed = valid, true
	}
	if changed || dueForRenewal(st.serving.cert, now) ||
		!covers(st.serving.cert, st.ca.cert, m.opts.DNSNames, m.opts.IPAddresses) {
		serving, err := newServing(st.ca, m.opts.DNSNames, m.opts.IPAddresses, now, m.opts.CertValidity)
		if err != nil {
			return nil, false, fmt.Errorf("issue webhook serving certificate: %w", err)
		}
		st.serving, changed = serving, true
	}
	return st, changed, nil
}

// parseSecret reads the certificates of the Secret.
func parseSecret(sec *corev1.Secret) (*certState, error) {
	cas, err := parseCerts(sec.Data[secretCACert])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", secretCACert, err)
	}
	ca, err := parseKeyPair(sec.Data[secretCACert], sec.Data[secretCAKey])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", secretCAKey, err)
	}
	if !ca.cert.IsCA {
		return nil, fmt.Errorf("%s: not a CA certificate", secretCACert)
	}
	serving, err := parseKeyPair(sec.Data[corev1.TLSCertKey], sec.Data[corev1.TLSPrivateKeyKey])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", corev1.TLSCertKey, err)
	}
	return &certState{ca: ca, cas: cas, serving: serving}, nil
}

// patchWebhooks sets the caBundle of every webhook of the configured
// ValidatingWebhookConfigurations. A named configuration that does not
// exist yet is skipped: it gets the bundle when it is created.
func (m *CertManager) patchWebhooks(ctx context.Context, bundle []byte) error {
	api := m.opts.Client.AdmissionregistrationV1().ValidatingWebhookConfigurations()
	names := slices.Clone(m.opts.WebhookConfigurations)
	if m.opts.WebhookSelector != "" {
		list, err := api.List(ctx, metav1.ListOptions{LabelSelector: m.opts.WebhookSelector})
		if err != nil {
			return fmt.Errorf("list webhook configurations %q: %w", m.opts.WebhookSelector, err)
		}
		for _, c := range list.Items {
			names = append(names, c.Name)
		}
	}
	slices.Sort(names)
	var errs []error
	for _, name := range slices.Compact(names) {
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			cfg, err := api.Get(ctx, name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return nil
			}
			if err != nil {
				return err
			}
			changed := false
			for i := range cfg.Webhooks {
				if !bytes.Equal(cfg.Webhooks[i].ClientConfig.CABundle, bundle) {
					cfg.Webhooks[i].ClientConfig.CABundle = bundle
					changed = true
				}
			}
			if !changed {
				return nil
			}
			if _, err := api.Update(ctx, cfg, metav1.UpdateOptions{}); err != nil {
				return err
			}
			m.log.Info("webhook caBundle patched", keyWebhook, name)
			return nil
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("patch caBundle of webhook configuration %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}
