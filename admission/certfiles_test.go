package admission

import (
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// writePair issues a serving certificate for 127.0.0.1 signed by ca and
// writes it to dir, atomically (rename) or in place.
func writePair(t *testing.T, ca *keyPair, certFile, keyFile string, rename bool) *x509.Certificate {
	t.Helper()
	kp, err := newServing(ca, []string{"localhost"}, []net.IP{net.ParseIP("127.0.0.1")}, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for file, data := range map[string][]byte{certFile: kp.certPEM, keyFile: kp.keyPEM} {
		if !rename {
			if err := os.WriteFile(file, data, 0o600); err != nil {
				t.Fatal(err)
			}
			continue
		}
		tmp := file + ".tmp"
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, file); err != nil {
			t.Fatal(err)
		}
	}
	return kp.cert
}

// handshake connects to addr and returns the certificate the server
// presented, verified against ca.
func handshake(t *testing.T, addr string, ca *x509.Certificate) *x509.Certificate {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0]
}

func TestCertFilesReload(t *testing.T) {
	ca, err := newCA(time.Now(), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	first := writePair(t, ca, certFile, keyFile, false)

	files, err := NewCertFiles(certFile, keyFile, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{GetCertificate: files.GetCertificate})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	addr := ln.Addr().String()

	if got := handshake(t, addr, ca.cert); !got.Equal(first) {
		t.Fatal("first handshake: not the certificate of the files")
	}
	steps := []struct {
		name   string
		rename bool
	}{
		{name: "rewritten in place", rename: false},
		{name: "replaced by rename, as a Secret volume updates", rename: true},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			next := writePair(t, ca, certFile, keyFile, s.rename)
			if got := handshake(t, addr, ca.cert); !got.Equal(next) {
				t.Errorf("next handshake serves serial %v, want the new %v", got.SerialNumber, next.SerialNumber)
			}
		})
	}
	t.Run("a broken pair keeps the last good certificate", func(t *testing.T) {
		good := handshake(t, addr, ca.cert)
		if err := os.WriteFile(keyFile, []byte("not a key"), 0o600); err != nil {
			t.Fatal(err)
		}
		if got := handshake(t, addr, ca.cert); !got.Equal(good) {
			t.Error("the broken pair replaced the good certificate")
		}
		if err := os.Remove(certFile); err != nil {
			t.Fatal(err)
		}
		if got := handshake(t, addr, ca.cert); !got.Equal(good) {
			t.Error("missing files replaced the good certificate")
		}
	})
}

func TestNewCertFilesFailsOnABadPair(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if _, err := NewCertFiles(certFile, keyFile, nil); err == nil {
		t.Error("no error for missing files")
	}
	if err := os.WriteFile(certFile, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, []byte("y"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewCertFiles(certFile, keyFile, nil); err == nil {
		t.Error("no error for files that are not PEM")
	}
}
