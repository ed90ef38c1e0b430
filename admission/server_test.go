package admission_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/palisade-dev/palisade/admission"
	"github.com/palisade-dev/palisade/policy"
)

// TestServerOverTLS serves the handler with a self-managed certificate
// and calls it as the API server does: over TLS, verifying the service's
// name against the caBundle.
func TestServerOverTLS(t *testing.T) {
	ctx := context.Background()
	certs, err := admission.NewCertManager(admission.CertManagerOptions{
		Client:    fake.NewClientset(),
		Namespace: "palisade-system",
		DNSNames:  admission.ServiceDNSNames("palisade-admission", "palisade-system"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := certs.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	engines := &switchable{}
	h := newHandler(t, admission.Options{Engines: engines})
	srv := admission.NewServer("127.0.0.1:0", h, certs.GetCertificate)
	ln, err := net.Listen("tcp", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	defer srv.Close()

	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(certs.CABundle())
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: roots, ServerName: "palisade-admission.palisade-system.svc",
	}}}
	base := "https://" + ln.Addr().String()
	get := func(path string) int {
		resp, err := client.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}

	if code := get(admission.PathHealthz); code != http.StatusOK {
		t.Errorf("healthz = %d", code)
	}
	if code := get(admission.PathReadyz); code != http.StatusServiceUnavailable {
		t.Errorf("readyz without a bundle = %d, want 503", code)
	}
	engines.e.Store(engine(t, policy.ModeEnforce))
	if code := get(admission.PathReadyz); code != http.StatusOK {
		t.Errorf("readyz with a bundle = %d, want 200", code)
	}

	body := reviewBody(t, request{uid: "tls-1", kind: "Pod", name: "busybox", object: privilegedBusybox()})
	resp, err := client.Post(base+admission.Path+"?timeout=5s", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out admissionv1.AdmissionReview
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	if out.Response == nil || out.Response.UID != "tls-1" || out.Response.Allowed || !strings.Contains(out.Response.Result.Message, privilegedMsg) {
		t.Errorf("response: %+v", out.Response)
	}
	if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		t.Error(err)
	}
}
