package admission

import (
	"crypto/tls"
	"fmt"
	"net"
	"time"
)

// localCertValidity is how long the certificates of a local webhook
// (palisade up) live: one process lifetime, a week at most.
const localCertValidity = 7 * 24 * time.Hour

// LocalCertificate generates, in memory, a CA and a serving certificate
// for the given addresses, for a webhook that the API server reaches by
// URL (palisade up). It returns the certificate to serve and the CA bundle
// to put in the webhook configuration. Nothing is written anywhere.
func LocalCertificate(dnsNames []string, ips []net.IP) (*tls.Certificate, []byte, error) {
	now := time.Now()
	ca, err := newCA(now, localCertValidity)
	if err != nil {
		return nil, nil, err
	}
	serving, err := newServing(ca, dnsNames, ips, now, localCertValidity)
	if err != nil {
		return nil, nil, err
	}
	cert, err := tls.X509KeyPair(serving.certPEM, serving.keyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("local serving certificate: %w", err)
	}
	return &cert, ca.certPEM, nil
}

// LocalCertificatePEM is LocalCertificate with the serving certificate
// and key also in PEM, for servers that read files (benchmarks).
func LocalCertificatePEM(dnsNames []string, ips []net.IP) (certPEM, keyPEM, caPEM []byte, err error) {
	now := time.Now()
	ca, err := newCA(now, localCertValidity)
	if err != nil {
		return nil, nil, nil, err
	}
	serving, err := newServing(ca, dnsNames, ips, now, localCertValidity)
	if err != nil {
		return nil, nil, nil, err
	}
	return serving.certPEM, serving.keyPEM, ca.certPEM, nil
}
