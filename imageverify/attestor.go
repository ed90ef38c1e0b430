package imageverify

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/palisade-dev/palisade/policy"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
)

// Attestor is a compiled policy.Attestor: parsed public keys, and keyless
// identities with their Fulcio roots, Rekor keys and subject matchers.
// It is immutable and safe for concurrent use.
type Attestor struct {
	name    string
	keys    []publicKey
	keyless []keylessIdentity
	// fingerprint identifies the attestor's content (not only its name), so
	// that facts cached for one version of an attestor are never served
	// for another after a policy change.
	fingerprint [sha256.Size]byte
}

// publicKey is one trusted signing key.
type publicKey struct {
	id        string // sha256:<hex> of the PKIX DER encoding
	verifiers []signature.Verifier
}

// keylessIdentity is one trusted Fulcio identity with the trust roots
// needed to verify it offline.
type keylessIdentity struct {
	issuer        string
	subject       string
	subjectRE     *regexp.Regexp
	roots         *x509.CertPool
	intermediates []*x509.Certificate
	rekor         map[string]signature.Verifier // by log ID (hex SHA-256 of the key's DER)
}

// maxPEM bounds a key or certificate bundle read from a file: a public key
// is under 1 KiB and a root bundle a few KiB.
const maxPEM = 1 << 20

// NewAttestor compiles a validated policy.Attestor. readFile reads keys
// given by file (spec.keys[].file); it may be nil when none is.
//
// Keyless identities must carry their fulcioRoots and rekorPublicKey:
// verification is offline, so there is no public-good trust root to fall
// back on.
func NewAttestor(name string, spec policy.AttestorSpec, readFile func(string) ([]byte, error)) (*Attestor, error) {
	if len(spec.Keys) == 0 && len(spec.Keyless) == 0 {
		return nil, fmt.Errorf("attestor %s: no keys and no keyless identities", name)
	}
	a := &Attestor{name: name}
	h := sha256.New()
	fmt.Fprintf(h, "name %q\n", name)
	for i, k := range spec.Keys {
		pemBytes := []byte(k.PublicKey)
		if k.File != "" {
			if readFile == nil {
				return nil, fmt.Errorf("attestor %s: keys[%d]: read %s: no file reader", name, i, k.File)
			}
			b, err := readFile(k.File)
			if err != nil {
				return nil, fmt.Errorf("attestor %s: keys[%d]: read %s: %w", name, i, k.File, err)
			}
			if len(b) > maxPEM {
				return nil, fmt.Errorf("attestor %s: keys[%d]: %s is larger than %d bytes", name, i, k.File, maxPEM)
			}
			pemBytes = b
		}
		pk, der, err := parsePublicKey(pemBytes)
		if err != nil {
			return nil, fmt.Errorf("attestor %s: keys[%d]: %w", name, i, err)
		}
		a.keys = append(a.keys, pk)
		fmt.Fprintf(h, "key %x\n", der)
	}
	for i, k := range spec.Keyless {
		id, err := compileKeyless(k)
		if err != nil {
			return nil, fmt.Errorf("attestor %s: keyless[%d]: %w", name, i, err)
		}
		a.keyless = append(a.keyless, id)
		fmt.Fprintf(h, "keyless %q %q %q %q %q\n", k.Issuer, k.Subject, k.SubjectRegExp, k.FulcioRoots, k.RekorPublicKey)
	}
	h.Sum(a.fingerprint[:0])
	return a, nil
}

// Name returns the attestor's name, the key of its facts.
func (a *Attestor) Name() string { return a.name }

// parsePublicKey reads a cosign-compatible PEM public key and prepares its
// verifiers. Cosign signs with SHA-256 whatever the key; for ECDSA curves
// whose natural hash is another, the curve's default is tried as well.
func parsePublicKey(pemBytes []byte) (publicKey, []byte, error) {
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(pemBytes)
	if err != nil {
		return publicKey{}, nil, fmt.Errorf("parse public key: %w", err)
	}
	if err := checkKeyStrength(pub); err != nil {
		return publicKey{}, nil, err
	}
	der, err := cryptoutils.MarshalPublicKeyToDER(pub)
	if err != nil {
		return publicKey{}, nil, fmt.Errorf("encode public key: %w", err)
	}
	vs, err := verifiersFor(pub)
	if err != nil {
		return publicKey{}, nil, err
	}
	sum := sha256.Sum256(der)
	return publicKey{id: "sha256:" + hex.EncodeToString(sum[:]), verifiers: vs}, der, nil
}

// checkKeyStrength refuses keys cosign would not make: RSA under 2048
// bits, ECDSA on curves other than P-256, P-384 and P-521.
func checkKeyStrength(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return fmt.Errorf("RSA key of %d bits: at least 2048 are required", k.N.BitLen())
		}
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
		default:
			return fmt.Errorf("ECDSA curve %s is not supported", k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
	default:
		return fmt.Errorf("unsupported key type %T", pub)
	}
	return nil
}

// verifiersFor returns the verifiers cosign would use for a key: SHA-256
// (cosign's default for every key type), plus the curve's own hash for
// ECDSA P-384 and P-521 keys.
func verifiersFor(pub crypto.PublicKey) ([]signature.Verifier, error) {
	v, err := signature.LoadVerifier(pub, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("load verifier: %w", err)
	}
	vs := []signature.Verifier{v}
	if ec, ok := pub.(*ecdsa.PublicKey); ok {
		var hf crypto.Hash
		switch ec.Curve {
		case elliptic.P384():
			hf = crypto.SHA384
		case elliptic.P521():
			hf = crypto.SHA512
		}
		if hf != 0 {
			v2, err := signature.LoadVerifier(pub, hf)
			if err != nil {
				return nil, fmt.Errorf("load verifier: %w", err)
			}
			vs = append(vs, v2)
		}
	}
	return vs, nil
}

func compileKeyless(k policy.KeylessIdentity) (keylessIdentity, error) {
	id := keylessIdentity{issuer: k.Issuer, subject: k.Subject}
	if k.Issuer == "" {
		return id, errors.New("issuer is required")
	}
	if (k.Subject == "") == (k.SubjectRegExp == "") {
		return id, errors.New("set exactly one of subject, subjectRegExp")
	}
	if k.SubjectRegExp != "" {
		// Anchored, unlike cosign's --certificate-identity-regexp: a
		// pattern such as https://github.com/org/.* must not be satisfied
		// by a URI that merely contains it.
		re, err := regexp.Compile(`^(?:` + k.SubjectRegExp + `)$`)
		if err != nil {
			return id, fmt.Errorf("subjectRegExp: %w", err)
		}
		id.subjectRE = re
	}
	if strings.TrimSpace(k.FulcioRoots) == "" {
		return id, errors.New("fulcioRoots is required: keyless verification is offline")
	}
	certs, err := cryptoutils.UnmarshalCertificatesFromPEM([]byte(k.FulcioRoots))
	if err != nil {
		return id, fmt.Errorf("fulcioRoots: %w", err)
	}
	if len(certs) == 0 {
		return id, errors.New("fulcioRoots: no certificate")
	}
	id.roots = x509.NewCertPool()
	roots := 0
	for _, c := range certs {
		if isSelfSigned(c) {
			id.roots.AddCert(c)
			roots++
		} else {
			// An intermediate listed with the roots is trusted as a
			// path element, never as an anchor on its own.
			id.intermediates = append(id.intermediates, c)
		}
	}
	if roots == 0 {
		return id, errors.New("fulcioRoots: no self-signed root certificate")
	}
	if strings.TrimSpace(k.RekorPublicKey) == "" {
		return id, errors.New("rekorPublicKey is required: the signing time comes from the transparency log")
	}
	id.rekor = map[string]signature.Verifier{}
	rest := []byte(k.RekorPublicKey)
	for len(strings.TrimSpace(string(rest))) > 0 {
		pub, der, next, err := nextPublicKey(rest)
		if err != nil {
			return id, fmt.Errorf("rekorPublicKey: %w", err)
		}
		rest = next
		v, err := signature.LoadVerifier(pub, crypto.SHA256)
		if err != nil {
			return id, fmt.Errorf("rekorPublicKey: %w", err)
		}
		sum := sha256.Sum256(der)
		id.rekor[hex.EncodeToString(sum[:])] = v
	}
	if len(id.rekor) == 0 {
		return id, errors.New("rekorPublicKey: no key")
	}
	return id, nil
}

func isSelfSigned(c *x509.Certificate) bool {
	return c.IsCA && c.CheckSignatureFrom(c) == nil
}

// nextPublicKey parses the first PEM public key of b and returns the rest.
func nextPublicKey(b []byte) (crypto.PublicKey, []byte, []byte, error) {
	block, rest := pem.Decode(b)
	if block == nil {
		return nil, nil, nil, errors.New("not a PEM-encoded public key")
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("parse public key: %w", err)
	}
	return pub, block.Bytes, rest, nil
}
