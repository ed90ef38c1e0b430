// Package certpool reads the CA files Palisade's clients and servers are
// given (--*-ca-file flags, learning's and the forge's CA files).
package certpool

import (
	"crypto/x509"
	"fmt"
	"os"
)

// Append adds the PEM certificates of file to pool. It fails when the
// file cannot be read (the error names it) or holds no certificate.
func Append(pool *x509.CertPool, file string) error {
	pem, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	if !pool.AppendCertsFromPEM(pem) {
		return fmt.Errorf("no certificate in %s", file)
	}
	return nil
}

// FromFile returns a pool holding only the certificates of file.
func FromFile(file string) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	if err := Append(pool, file); err != nil {
		return nil, err
	}
	return pool, nil
}
