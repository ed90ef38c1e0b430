package admission

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
)

// CertFiles serves a certificate and key read from PEM files, and reloads
// them when their content changes: a renewed certificate (cert-manager, a
// Secret volume's atomic update) is served from the next TLS handshake
// on, without a restart. A pair that does not load (a half-written
// update, a key that does not match) is logged and the last good pair
// stays in use.
type CertFiles struct {
	certFile, keyFile string
	log               *slog.Logger

	mu        sync.Mutex
	cert      *tls.Certificate
	certPEM   []byte
	keyPEM    []byte
	lastError string // logged once until it changes
}

// NewCertFiles loads a certificate and key from PEM files. It returns an
// error if they do not load.
func NewCertFiles(certFile, keyFile string, log *slog.Logger) (*CertFiles, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &CertFiles{certFile: certFile, keyFile: keyFile, log: log}
	if _, err := c.load(); err != nil {
		return nil, err
	}
	return c, nil
}

// GetCertificate returns the current certificate, for
// tls.Config.GetCertificate. It reads both files on each handshake (a few
// kilobytes; the API server keeps its connections open, so handshakes are
// rare) and parses them again only when they changed. Comparing content
// rather than modification times catches a rewrite within the same clock
// tick.
func (c *CertFiles) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	cert, err := c.load()
	if err != nil {
		c.mu.Lock()
		defer c.mu.Unlock()
		if msg := err.Error(); msg != c.lastError {
			c.lastError = msg
			c.log.Error("serving certificate not reloaded", keyFile, c.certFile, keyError, msg)
		}
		return c.cert, nil
	}
	return cert, nil
}

// load reads the files and returns the certificate, parsed again if the
// files changed.
func (c *CertFiles) load() (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(c.certFile)
	if err != nil {
		return nil, fmt.Errorf("read serving certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(c.keyFile)
	if err != nil {
		return nil, fmt.Errorf("read serving key: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cert != nil && bytes.Equal(certPEM, c.certPEM) && bytes.Equal(keyPEM, c.keyPEM) {
		return c.cert, nil
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("load serving certificate %s: %w", c.certFile, err)
	}
	if c.cert != nil {
		c.log.Info("serving certificate reloaded", keyFile, c.certFile, keyNotAfter, cert.Leaf.NotAfter)
	}
	c.cert, c.certPEM, c.keyPEM, c.lastError = &cert, certPEM, keyPEM, ""
	return c.cert, nil
}
