package bundles

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/keys"
)

// Errors of reading and verifying a bundle archive.
var (
	// ErrTooLarge: the archive, or what it decompresses to, exceeds the
	// size limit.
	ErrTooLarge = errors.New("bundle exceeds the size limit")
	// ErrUnsigned: verification is configured and the bundle has no
	// .signatures.json.
	ErrUnsigned = errors.New("bundle is not signed")
	// ErrSignature: the signature does not verify, or a file's digest does
	// not match the signed one, or a file is missing from or added to the
	// signed list.
	ErrSignature = errors.New("bundle signature does not verify")
)

// maxKeyBytes bounds a key file: a 16384-bit RSA key in PEM is under 13 KiB.
const maxKeyBytes = 64 << 10

// signaturesFile is the name of a bundle's signatures file, at its root.
const signaturesFile = ".signatures.json"

// Signer signs bundles with OPA's bundle signing: a JWT listing the
// digest of every file, in .signatures.json. A plain OPA verifies it with
// a `keys:` entry named by the key id and `signing.keyid` in the bundle's
// config.
type Signer struct {
	keyID  string
	config *bundle.SigningConfig
}

// NewSigner reads a signing key: the shared secret for HS256/HS384/HS512
// (trailing newlines are not part of it), or a PEM private key (PKCS#1,
// PKCS#8 or SEC 1) for RS*, PS* and ES* algorithms. keyID names the key in
// the verifier's configuration and is required.
func NewSigner(keyFile, algorithm, keyID string) (*Signer, error) {
	if keyID == "" {
		return nil, errors.New("new signer: a key id is required")
	}
	if !keys.IsSupportedAlgorithm(algorithm) {
		return nil, fmt.Errorf("new signer: unsupported algorithm %q", algorithm)
	}
	key, err := readKey(keyFile, algorithm)
	if err != nil {
		return nil, fmt.Errorf("new signer: %w", err)
	}
	// SigningConfig takes the key itself, not the path, so that the file
	// is read once and bounded.
	config := bundle.NewSigningConfig(key, algorithm, "")
	if _, err := config.GetPrivateKey(); err != nil {
		return nil, fmt.Errorf("new signer: key %s: %w", keyFile, err)
	}
	return &Signer{keyID: keyID, config: config}, nil
}

// KeyID is the id of the signing key.
func (s *Signer) KeyID() string { return s.keyID }

// Sign replaces the bundle's signatures with one over its current content.
func (s *Signer) Sign(b *bundle.Bundle) error {
	b.Signatures = bundle.SignaturesConfig{}
	if err := b.GenerateSignature(s.config, s.keyID, false); err != nil {
		return fmt.Errorf("sign bundle %s: %w", b.Manifest.Revision, err)
	}
	return nil
}

// VerificationKey is a key that bundles must be signed with, like an
// entry of OPA's `keys:` configuration.
type VerificationKey struct {
	// KeyID is the id of the key; it overrides the key id of the token.
	KeyID string
	// Algorithm is the JWT algorithm (RS256 if empty).
	Algorithm string
	// Key is a PEM public key or certificate, or the HMAC secret.
	Key string
	// Scope, when set, must equal the scope claim of the signature.
	Scope string
}

// LoadVerificationKey reads a verification key from a file: a PEM public
// key or certificate for RS*, PS* and ES* algorithms, the shared secret
// (without trailing newlines) for HS*.
func LoadVerificationKey(keyFile, algorithm, keyID string) (*VerificationKey, error) {
	k := &VerificationKey{KeyID: keyID, Algorithm: algorithm}
	if k.Algorithm == "" {
		k.Algorithm = "RS256"
	}
	key, err := readKey(keyFile, k.Algorithm)
	if err != nil {
		return nil, fmt.Errorf("load verification key: %w", err)
	}
	k.Key = key
	if err := k.validate(); err != nil {
		return nil, fmt.Errorf("load verification key %s: %w", keyFile, err)
	}
	return k, nil
}

func (k *VerificationKey) validate() error {
	if k.KeyID == "" {
		return errors.New("a key id is required")
	}
	alg := k.Algorithm
	if alg == "" {
		alg = "RS256"
	}
	if !keys.IsSupportedAlgorithm(alg) {
		return fmt.Errorf("unsupported algorithm %q", alg)
	}
	if isHMAC(alg) {
		if k.Key == "" {
			return errors.New("empty secret")
		}
		return nil
	}
	block, _ := pem.Decode([]byte(k.Key))
	if block == nil {
		return errors.New("no PEM block in the key")
	}
	var err error
	switch block.Type {
	case "PUBLIC KEY":
		_, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		_, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		_, err = x509.ParseCertificate(block.Bytes)
	default:
		err = fmt.Errorf("PEM block %q is not a public key or certificate", block.Type)
	}
	return err
}

// config is the key as OPA's bundle reader takes it.
func (k *VerificationKey) config() *bundle.VerificationConfig {
	alg := k.Algorithm
	if alg == "" {
		alg = "RS256"
	}
	return bundle.NewVerificationConfig(map[string]*keys.Config{
		k.KeyID: {Key: k.Key, Algorithm: alg, Scope: k.Scope},
	}, k.KeyID, k.Scope, nil)
}

func isHMAC(alg string) bool { return strings.HasPrefix(alg, "HS") }

func readKey(name, algorithm string) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", fmt.Errorf("read key: %w", err)
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, maxKeyBytes+1))
	if err != nil {
		return "", fmt.Errorf("read key %s: %w", name, err)
	}
	if len(raw) > maxKeyBytes {
		return "", fmt.Errorf("read key %s: larger than %d bytes", name, maxKeyBytes)
	}
	key := string(raw)
	if isHMAC(algorithm) {
		// A secret written with echo or a text editor ends in a newline
		// that is not meant to be part of it.
		key = strings.TrimRight(key, "\r\n")
		if key == "" {
			return "", fmt.Errorf("read key %s: empty secret", name)
		}
	}
	return key, nil
}

// verifyFiles checks the signature of an unpacked archive with OPA's
// verifier: the JWT first, then the digest of every file, then that no
// signed file is missing.
func verifyFiles(files map[string][]byte, vc *bundle.VerificationConfig) error {
	raw, ok := files[signaturesFile]
	if !ok {
		return ErrUnsigned
	}
	var sc bundle.SignaturesConfig
	if err := json.Unmarshal(raw, &sc); err != nil {
		return fmt.Errorf("%w: decode %s: %w", ErrSignature, signaturesFile, err)
	}
	signed, err := bundle.VerifyBundleSignature(sc, vc)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSignature, err)
	}
	for name, data := range files {
		if name == signaturesFile {
			continue
		}
		if err := bundle.VerifyBundleFile(name, *bytes.NewBuffer(data), signed); err != nil {
			return fmt.Errorf("%w: %w", ErrSignature, err)
		}
	}
	if len(signed) > 0 {
		missing := make([]string, 0, len(signed))
		for name := range signed {
			missing = append(missing, name)
		}
		return fmt.Errorf("%w: signed files missing: %s", ErrSignature, strings.Join(missing, ", "))
	}
	return nil
}
