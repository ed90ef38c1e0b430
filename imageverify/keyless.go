package imageverify

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
)

// Fulcio certificate extensions naming the OIDC issuer that vouched for the
// certificate's subject: v2 is a DER UTF8String, v1 (deprecated, still
// issued) the raw string.
var (
	oidIssuerV1 = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 1}
	oidIssuerV2 = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 8}
)

// maxChain bounds the certificates read from a chain annotation.
const maxChain = 10

// rekorBundle is cosign's dev.sigstore.cosign/bundle annotation: a Rekor
// entry and the log's signed promise (SET) to include it.
//
// The older cosign bundle carries a Signed Entry Timestamp, not a Merkle
// inclusion proof. The SET is the log's signature over the entry and its
// integrated time: it proves that Rekor accepted the entry at that time,
// which is what bounds a short-lived Fulcio certificate, and it can be
// checked offline with the log's public key alone. It does not prove that
// the entry is still in the log's tree as everyone else sees it (no proof
// against a checkpoint), so a log that signs and then drops an entry would
// go unnoticed here; that is the trust cosign's own offline verification
// places in the SET as well.
type rekorBundle struct {
	SignedEntryTimestamp []byte       `json:"SignedEntryTimestamp"`
	Payload              rekorPayload `json:"Payload"`
}

type rekorPayload struct {
	Body           json.RawMessage `json:"body"`
	IntegratedTime int64           `json:"integratedTime"`
	LogIndex       int64           `json:"logIndex"`
	LogID          string          `json:"logID"`
}

// canonical returns the RFC 8785 (JCS) form of the payload, the bytes the
// SET signs: keys sorted, no whitespace, integers in decimal.
func (p rekorPayload) canonical() ([]byte, error) {
	var body string
	if err := json.Unmarshal(p.Body, &body); err != nil {
		return nil, errors.New("bundle body is not a string")
	}
	var b bytes.Buffer
	b.WriteString(`{"body":`)
	jcsString(&b, body)
	b.WriteString(`,"integratedTime":`)
	b.WriteString(strconv.FormatInt(p.IntegratedTime, 10))
	b.WriteString(`,"logID":`)
	jcsString(&b, p.LogID)
	b.WriteString(`,"logIndex":`)
	b.WriteString(strconv.FormatInt(p.LogIndex, 10))
	b.WriteString(`}`)
	return b.Bytes(), nil
}

// jcsString writes s as an RFC 8785 string: only '"', '\' and control
// characters are escaped (Go's encoding/json also escapes <, > and &,
// which would change the signed bytes).
func jcsString(b *bytes.Buffer, s string) {
	const hexDigits = "0123456789abcdef"
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if r < 0x20 {
				b.WriteString(`\u00`)
				b.WriteByte(hexDigits[r>>4])
				b.WriteByte(hexDigits[r&0xf])
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
}

// keylessMaterial is what a layer carries for keyless verification,
// parsed once and checked against every keyless identity.
type keylessMaterial struct {
	cert   *x509.Certificate
	chain  []*x509.Certificate
	bundle *rekorBundle
	entry  error // nil when the bundle's Rekor entry matches the layer
	err    string
}

// parseKeyless reads a layer's certificate, chain and bundle annotations.
func parseKeyless(it *item) *keylessMaterial {
	m := &keylessMaterial{}
	certs, err := cryptoutils.UnmarshalCertificatesFromPEMLimited(it.certPEM, 1)
	if err != nil || len(certs) != 1 {
		m.err = ReasonMalformed + ": certificate"
		return m
	}
	m.cert = certs[0]
	if len(it.chainPEM) > 0 {
		chain, err := cryptoutils.UnmarshalCertificatesFromPEMLimited(it.chainPEM, maxChain)
		if err != nil {
			m.err = ReasonMalformed + ": certificate chain"
			return m
		}
		m.chain = chain
	}
	if len(it.bundleJSON) > 0 {
		var b rekorBundle
		if err := json.Unmarshal(it.bundleJSON, &b); err != nil {
			m.err = ReasonMalformed + ": bundle"
			return m
		}
		m.bundle = &b
		m.entry = matchEntry(b.Payload.Body, it, m.cert)
	}
	return m
}

// verifyKeyless checks a layer against the attestor's keyless identities:
// the certificate's key signed the message, the bundle's SET verifies with
// a trusted Rekor key, the Rekor entry is this signature, the certificate
// was valid at the entry's integrated time and chains to a Fulcio root,
// and its identity matches. It returns the matched identity and the
// signing time.
func (a *Attestor) verifyKeyless(it *item, f *failure) (subject, issuer string, signed time.Time, ok bool) {
	if it.certPEM == nil {
		f.note(rankSignature, ReasonBadSignature+": no certificate for a keyless identity")
		return "", "", time.Time{}, false
	}
	if it.keyless == nil {
		it.keyless = parseKeyless(it)
	}
	m := it.keyless
	if m.err != "" {
		f.note(rankMalformed, m.err)
		return "", "", time.Time{}, false
	}
	v, err := signature.LoadVerifier(m.cert.PublicKey, crypto.SHA256)
	if err != nil || !it.verifiedBy(v) {
		f.note(rankSignature, ReasonBadSignature)
		return "", "", time.Time{}, false
	}
	if it.subjectErr != "" {
		f.note(rankPayload, it.subjectErr)
		return "", "", time.Time{}, false
	}
	if m.bundle == nil {
		f.note(rankBundle, ReasonNoBundle)
		return "", "", time.Time{}, false
	}
	canon, err := m.bundle.Payload.canonical()
	if err != nil {
		f.note(rankBundle, ReasonMalformed+": "+err.Error())
		return "", "", time.Time{}, false
	}
	signed = time.Unix(m.bundle.Payload.IntegratedTime, 0).UTC()
	for _, id := range a.keyless {
		rv, known := id.rekor[m.bundle.Payload.LogID]
		if !known {
			f.note(rankSET, ReasonBadSET+": log "+m.bundle.Payload.LogID+" is not the attestor's Rekor")
			continue
		}
		if err := rv.VerifySignature(bytes.NewReader(m.bundle.SignedEntryTimestamp), bytes.NewReader(canon)); err != nil {
			f.note(rankSET, ReasonBadSET)
			continue
		}
		if m.entry != nil {
			f.note(rankEntry, ReasonEntryMismatch+": "+m.entry.Error())
			continue
		}
		if signed.Before(m.cert.NotBefore) {
			f.note(rankTime, ReasonNotYetValid)
			continue
		}
		if signed.After(m.cert.NotAfter) {
			f.note(rankTime, ReasonExpired)
			continue
		}
		if !id.chains(m, signed) {
			f.note(rankChain, ReasonUntrustedChain)
			continue
		}
		certIssuer := fulcioIssuer(m.cert)
		if certIssuer != id.issuer {
			f.note(rankIdentity, fmt.Sprintf("%s: issuer %q", ReasonIdentityMismatch, certIssuer))
			continue
		}
		sans := cryptoutils.GetSubjectAlternateNames(m.cert)
		if s, match := id.matchSubject(sans); match {
			return s, certIssuer, signed, true
		}
		f.note(rankIdentity, fmt.Sprintf("%s: subject %q", ReasonIdentityMismatch, strings.Join(sans, ",")))
	}
	return "", "", time.Time{}, false
}

// chains reports whether the certificate chains to one of the identity's
// roots at the signing time, through the identity's intermediates or the
// layer's chain annotation (its intermediates are candidates for the path,
// never anchors).
func (id *keylessIdentity) chains(m *keylessMaterial, at time.Time) bool {
	inter := x509.NewCertPool()
	for _, c := range id.intermediates {
		inter.AddCert(c)
	}
	for _, c := range m.chain {
		inter.AddCert(c)
	}
	_, err := m.cert.Verify(x509.VerifyOptions{
		Roots:         id.roots,
		Intermediates: inter,
		CurrentTime:   at,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
	})
	return err == nil
}

func (id *keylessIdentity) matchSubject(sans []string) (string, bool) {
	for _, s := range sans {
		if id.subjectRE != nil && id.subjectRE.MatchString(s) || id.subjectRE == nil && s == id.subject {
			return s, true
		}
	}
	return "", false
}

// fulcioIssuer returns the OIDC issuer recorded by Fulcio, preferring the
// v2 extension.
func fulcioIssuer(c *x509.Certificate) string {
	var v1 string
	for _, e := range c.Extensions {
		switch {
		case e.Id.Equal(oidIssuerV2):
			var s string
			if rest, err := asn1.UnmarshalWithParams(e.Value, &s, "utf8"); err == nil && len(rest) == 0 {
				return s
			}
		case e.Id.Equal(oidIssuerV1):
			v1 = string(e.Value)
		}
	}
	return v1
}

// Rekor entry bodies, as far as they bind an entry to a signature: the
// hashedrekord kind (cosign sign), intoto v0.0.1/v0.0.2 (cosign attest)
// and dsse.
type rekorEntry struct {
	APIVersion string          `json:"apiVersion"`
	Kind       string          `json:"kind"`
	Spec       json.RawMessage `json:"spec"`
}

type hashValue struct {
	Algorithm string `json:"algorithm"`
	Value     string `json:"value"`
}

type hashedrekordSpec struct {
	Data struct {
		Hash hashValue `json:"hash"`
	} `json:"data"`
	Signature struct {
		Content   string `json:"content"`
		PublicKey struct {
			Content string `json:"content"`
		} `json:"publicKey"`
	} `json:"signature"`
}

type intotoSpec struct {
	Content struct {
		Hash        hashValue       `json:"hash"`
		PayloadHash hashValue       `json:"payloadHash"`
		Envelope    json.RawMessage `json:"envelope"`
	} `json:"content"`
	PublicKey string `json:"publicKey"`
}

type intotoV2Envelope struct {
	Signatures []struct {
		PublicKey string `json:"publicKey"`
	} `json:"signatures"`
}

type dsseSpec struct {
	EnvelopeHash hashValue `json:"envelopeHash"`
	PayloadHash  hashValue `json:"payloadHash"`
	Signatures   []struct {
		Signature string `json:"signature"`
		Verifier  string `json:"verifier"`
	} `json:"signatures"`
}

// matchEntry checks that the Rekor entry in a bundle is about this layer:
// the hash of what was signed, the signature, and the certificate. Without
// it a valid SET for some other entry could be replayed next to any
// signature.
func matchEntry(body json.RawMessage, it *item, cert *x509.Certificate) error {
	var b64 string
	if err := json.Unmarshal(body, &b64); err != nil {
		return errors.New("body is not a string")
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return errors.New("body is not base64")
	}
	var e rekorEntry
	if err := json.Unmarshal(raw, &e); err != nil {
		return errors.New("body is not a Rekor entry")
	}
	switch e.Kind {
	case "hashedrekord":
		var s hashedrekordSpec
		if err := json.Unmarshal(e.Spec, &s); err != nil {
			return errors.New("malformed hashedrekord")
		}
		if !hashMatches(s.Data.Hash, it.artifact) {
			return errors.New("hash")
		}
		sig, err := base64.StdEncoding.DecodeString(s.Signature.Content)
		if err != nil || !it.hasSignature(sig) {
			return errors.New("signature")
		}
		if !keyMatches(s.Signature.PublicKey.Content, cert) {
			return errors.New("certificate")
		}
		return nil
	case "intoto":
		var s intotoSpec
		if err := json.Unmarshal(e.Spec, &s); err != nil {
			return errors.New("malformed intoto")
		}
		if !hashMatches(s.Content.Hash, it.artifact) && !(it.dssePayload != nil && hashMatches(s.Content.PayloadHash, it.dssePayload)) {
			return errors.New("hash")
		}
		keys := []string{s.PublicKey}
		var env intotoV2Envelope
		if len(s.Content.Envelope) > 0 && s.Content.Envelope[0] == '{' && json.Unmarshal(s.Content.Envelope, &env) == nil {
			for _, sg := range env.Signatures {
				keys = append(keys, sg.PublicKey)
			}
		}
		for _, k := range keys {
			if k != "" && keyMatches(k, cert) {
				return nil
			}
		}
		return errors.New("certificate")
	case "dsse":
		var s dsseSpec
		if err := json.Unmarshal(e.Spec, &s); err != nil {
			return errors.New("malformed dsse")
		}
		if !hashMatches(s.EnvelopeHash, it.artifact) && !(it.dssePayload != nil && hashMatches(s.PayloadHash, it.dssePayload)) {
			return errors.New("hash")
		}
		for _, sg := range s.Signatures {
			sig, err := base64.StdEncoding.DecodeString(sg.Signature)
			if err == nil && it.hasSignature(sig) && keyMatches(sg.Verifier, cert) {
				return nil
			}
		}
		return errors.New("signature")
	default:
		return fmt.Errorf("unsupported entry kind %q", e.Kind)
	}
}

func hashMatches(h hashValue, data []byte) bool {
	if h.Algorithm != "sha256" || data == nil {
		return false
	}
	sum := sha256.Sum256(data)
	return strings.EqualFold(h.Value, hex.EncodeToString(sum[:]))
}

// keyMatches reports whether b64 (a base64 PEM certificate or public key,
// as Rekor stores them) is the signing certificate or its key.
func keyMatches(b64 string, cert *x509.Certificate) bool {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return false
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		return false
	}
	switch block.Type {
	case "CERTIFICATE":
		return bytes.Equal(block.Bytes, cert.Raw)
	case "PUBLIC KEY":
		return bytes.Equal(block.Bytes, cert.RawSubjectPublicKeyInfo)
	}
	return false
}
