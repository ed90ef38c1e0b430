package main

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"testing"

	"github.com/palisade-dev/palisade/admission"
	"github.com/palisade-dev/palisade/internal/gctune"
)

// BenchmarkServe serves the load's review mix over the whole path of the
// load benchmark, in one process: the loader's HTTP/2 client (h2client.go)
// on one TLS connection to admission.NewServer on loopback, one review at
// a time, for Palisade's handler and the floor's. Beside BenchmarkMix
// (the handler alone), it counts what every request costs around the
// handler: TLS records, HTTP/2 frames, the server's goroutines and their
// stacks. Its ns/op is a round trip, not a throughput; count its work
// with valgrind --tool=callgrind over -test.benchtime 1x and Nx. The
// process holds the starting goroutine stack size up as palisade
// admission does (gctune.HoldStackStart), from a first collection on.
func BenchmarkServe(b *testing.B) {
	gctune.HoldStackStart()
	runtime.GC()
	h, err := admission.NewHandler(admission.Options{Engines: fixedEngine{mixEngine(b)}, Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	certPEM, keyPEM, caPEM, err := admission.LocalCertificatePEM(nil, []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		b.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	getCert := func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil }
	mix := make([][]byte, 10)
	for i := range mix {
		mix[i] = body(i, nil)
	}
	for _, t := range []struct {
		name string
		h    http.Handler
	}{{"palisade", h}, {"noop", http.HandlerFunc(noopHandler)}} {
		b.Run(t.name, func(b *testing.B) {
			srv := admission.NewServer("", h, getCert)
			mux := http.NewServeMux()
			mux.Handle(admission.Path, t.h)
			srv.Handler = mux
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			go func() { _ = srv.ServeTLS(ln, "", "") }()
			defer srv.Close()
			type answer struct {
				status int
				err    error
			}
			answers := make(chan answer, 1)
			c, err := dialH2("https://"+ln.Addr().String()+admission.Path, &tls.Config{RootCAs: roots},
				func(_, status int, _ []byte, err error) { answers <- answer{status, err} })
			if err != nil {
				b.Fatal(err)
			}
			defer c.close()
			i := 0
			for b.Loop() {
				c.send(i, mix[i%len(mix)])
				i++
				if a := <-answers; a.err != nil || a.status != http.StatusOK {
					b.Fatalf("request %d: status %d, %v", i, a.status, a.err)
				}
			}
		})
	}
}
