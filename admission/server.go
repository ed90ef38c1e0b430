package admission

import (
	"crypto/tls"
	"net/http"
	"time"
)

// Paths of the probes NewServer serves beside Path.
const (
	PathHealthz = "/healthz"
	PathReadyz  = "/readyz"
)

// Server timeouts. The API server keeps connections open between
// reviews; a review is read and answered within the webhook's timeout
// (at most 30 s).
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 35 * time.Second
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 64 << 10
)

// NewServer returns an HTTPS server for the webhook on addr: h at Path,
// a liveness probe at PathHealthz (always 200) and a readiness probe at
// PathReadyz (200 once a bundle is active, 503 before), with certificates
// from getCertificate (CertFiles or CertManager). Start it with
// ListenAndServeTLS("", "").
func NewServer(addr string, h *Handler, getCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)) *http.Server {
	mux := http.NewServeMux()
	mux.Handle(Path, h)
	mux.HandleFunc(PathHealthz, func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc(PathReadyz, func(w http.ResponseWriter, _ *http.Request) {
		if !h.Ready() {
			http.Error(w, msgNoBundle, http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	return &http.Server{
		Addr:              addr,
		Handler:           mux,
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: getCertificate},
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
	}
}
