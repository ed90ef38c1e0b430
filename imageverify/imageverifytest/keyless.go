package imageverifytest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
)

// Fulcio's issuer extensions.
var (
	oidIssuerV1 = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 1}
	oidIssuerV2 = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 8}
)

// Keyless is a test Fulcio (a root and an intermediate CA issuing
// ten-minute code-signing certificates with Fulcio's identity extensions)
// and a test Rekor (a log key signing entry timestamps), so that keyless
// signatures can be made and verified offline, as cosign makes them
// against the public-good instances.
type Keyless struct {
	root, inter       *x509.Certificate
	rootPEM, interPEM []byte
	interKey          *ecdsa.PrivateKey
	rekor             signature.SignerVerifier
	rekorPEM          string
	logID             string
	logIndex          atomic.Int64
}

// NewKeyless creates the CA and the log key.
func NewKeyless(tb testing.TB) *Keyless {
	tb.Helper()
	k := &Keyless{}
	rootKey := genKey(tb)
	now := time.Now()
	rootTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{Organization: []string{"imageverifytest"}, CommonName: "test fulcio root"},
		NotBefore:             now.Add(-24 * time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	k.root, k.rootPEM = createCert(tb, rootTmpl, rootTmpl, &rootKey.PublicKey, rootKey)
	k.interKey = genKey(tb)
	interTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(2),
		Subject:               pkix.Name{Organization: []string{"imageverifytest"}, CommonName: "test fulcio intermediate"},
		NotBefore:             now.Add(-24 * time.Hour),
		NotAfter:              now.Add(5 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	k.inter, k.interPEM = createCert(tb, interTmpl, k.root, &k.interKey.PublicKey, rootKey)

	rekorKey := genKey(tb)
	sv, err := signature.LoadSignerVerifier(rekorKey, crypto.SHA256)
	if err != nil {
		tb.Fatal(err)
	}
	k.rekor = sv
	pemBytes, err := cryptoutils.MarshalPublicKeyToPEM(&rekorKey.PublicKey)
	if err != nil {
		tb.Fatal(err)
	}
	k.rekorPEM = string(pemBytes)
	der, err := cryptoutils.MarshalPublicKeyToDER(&rekorKey.PublicKey)
	if err != nil {
		tb.Fatal(err)
	}
	k.logID = sha256Hex(der)
	return k
}

// FulcioRootPEM is the CA's root, for an attestor's fulcioRoots.
func (k *Keyless) FulcioRootPEM() string { return string(k.rootPEM) }

// RekorPublicKeyPEM is the log's key, for an attestor's rekorPublicKey.
func (k *Keyless) RekorPublicKeyPEM() string { return k.rekorPEM }

// WithExpiredCertificate issues a certificate that had expired when the
// log integrated the signature.
func WithExpiredCertificate() Option { return func(o *options) { o.expiredAtSigned = true } }

// WithCorruptSET flips a bit of the log's signed entry timestamp.
func WithCorruptSET() Option { return func(o *options) { o.corruptSET = true } }

// WithoutBundle leaves the Rekor bundle out, as --tlog-upload=false does.
func WithoutBundle() Option { return func(o *options) { o.noBundle = true } }

// WithReplayedBundle attaches the bundle of another payload signed with
// the same key: a SET that is valid, but for another entry.
func WithReplayedBundle() Option { return func(o *options) { o.replayBundle = true } }

// WithSigningTime sets the log's integrated time (default: now).
func WithSigningTime(t time.Time) Option { return func(o *options) { o.signingTime = t } }

// SignImageKeyless writes a keyless cosign signature of ref: a certificate
// for subject (an e-mail, or a URI such as a workflow) vouched for by
// issuer, its chain, and a Rekor bundle with a hashedrekord entry and a
// valid SET. WithExpiredCertificate, WithCorruptSET, WithoutBundle,
// WithReplayedBundle,
// WithPayloadDigest and WithTamperedPayload make bad ones.
func (k *Keyless) SignImageKeyless(tb testing.TB, ref, issuer, subject string, opts ...Option) {
	tb.Helper()
	o := collect(opts)
	d := resolve(tb, ref, o)
	p := simpleSigningPayload(tb, d, o)
	signer, certPEM, at := k.issue(tb, issuer, subject, o)
	sig, err := signer.SignMessage(strings.NewReader(string(p)))
	if err != nil {
		tb.Fatal(err)
	}
	logged, loggedSig := p, sig
	if o.replayBundle {
		// The log saw another payload signed by the same key: its bundle
		// replayed beside this signature.
		logged = simpleSigningPayload(tb, d, &options{payloadDigest: "sha256:" + sha256Hex([]byte(time.Now().String()))})
		if loggedSig, err = signer.SignMessage(strings.NewReader(string(logged))); err != nil {
			tb.Fatal(err)
		}
	}
	body := map[string]any{
		"apiVersion": "0.0.1",
		"kind":       "hashedrekord",
		"spec": map[string]any{
			"data": map[string]any{"hash": map[string]string{"algorithm": "sha256", "value": sha256Hex(logged)}},
			"signature": map[string]any{
				"content":   base64.StdEncoding.EncodeToString(loggedSig),
				"publicKey": map[string]string{"content": base64.StdEncoding.EncodeToString(certPEM)},
			},
		},
	}
	if o.tamperPayload {
		p = tamper(p)
	}
	ann := map[string]string{
		annSignature:   base64.StdEncoding.EncodeToString(sig),
		annCertificate: string(certPEM),
		annChain:       string(k.interPEM) + string(k.rootPEM),
	}
	if !o.noBundle {
		ann[annBundle] = k.bundle(tb, body, at, o)
	}
	appendLayer(tb, d, ".sig", static.NewLayer(p, SimpleSigningMediaType), ann, o)
}

// AttestKeyless writes a keyless cosign attestation of ref, with an intoto
// Rekor entry as `cosign attest` records it.
func (k *Keyless) AttestKeyless(tb testing.TB, ref, issuer, subject, predicateType string, predicate any, opts ...Option) {
	tb.Helper()
	o := collect(opts)
	d := resolve(tb, ref, o)
	stmt := statement(tb, d, predicateType, predicate, o)
	signer, certPEM, at := k.issue(tb, issuer, subject, o)
	sig, err := signer.SignMessage(strings.NewReader(string(pae(InTotoPayloadType, stmt))))
	if err != nil {
		tb.Fatal(err)
	}
	env := envelope(stmt, sig, o)
	body := map[string]any{
		"apiVersion": "0.0.1",
		"kind":       "intoto",
		"spec": map[string]any{
			"content": map[string]any{
				"hash":        map[string]string{"algorithm": "sha256", "value": sha256Hex(env)},
				"payloadHash": map[string]string{"algorithm": "sha256", "value": sha256Hex(stmt)},
			},
			"publicKey": base64.StdEncoding.EncodeToString(certPEM),
		},
	}
	ann := map[string]string{
		annSignature:     "",
		annPredicateType: predicateType,
		annCertificate:   string(certPEM),
		annChain:         string(k.interPEM) + string(k.rootPEM),
	}
	if !o.noBundle {
		ann[annBundle] = k.bundle(tb, body, at, o)
	}
	appendLayer(tb, d, ".att", static.NewLayer(env, DSSEMediaType), ann, o)
}

// issue makes an ephemeral key and its Fulcio-style certificate, and
// returns the time the log will record.
func (k *Keyless) issue(tb testing.TB, issuer, subject string, o *options) (signature.SignerVerifier, []byte, time.Time) {
	tb.Helper()
	at := o.signingTime
	if at.IsZero() {
		at = time.Now()
	}
	at = at.Truncate(time.Second)
	notBefore := at.Add(-time.Minute)
	if o.expiredAtSigned {
		notBefore = at.Add(-30 * time.Minute)
	}
	key := genKey(tb)
	issuerV2, err := asn1.MarshalWithParams(issuer, "utf8")
	if err != nil {
		tb.Fatal(err)
	}
	serial, err := cryptoutils.GenerateSerialNumber()
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		NotBefore:    notBefore,
		NotAfter:     notBefore.Add(10 * time.Minute),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		ExtraExtensions: []pkix.Extension{
			{Id: oidIssuerV1, Value: []byte(issuer)},
			{Id: oidIssuerV2, Value: issuerV2},
		},
	}
	if strings.Contains(subject, "://") {
		u, err := url.Parse(subject)
		if err != nil {
			tb.Fatal(err)
		}
		tmpl.URIs = []*url.URL{u}
	} else {
		tmpl.EmailAddresses = []string{subject}
	}
	_, certPEM := createCert(tb, tmpl, k.inter, &key.PublicKey, k.interKey)
	sv, err := signature.LoadSignerVerifier(key, crypto.SHA256)
	if err != nil {
		tb.Fatal(err)
	}
	return sv, certPEM, at
}

// bundle logs an entry: cosign's bundle annotation with the log's SET
// over the RFC 8785 form of {body, integratedTime, logID, logIndex}.
func (k *Keyless) bundle(tb testing.TB, body map[string]any, at time.Time, o *options) string {
	tb.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		tb.Fatal(err)
	}
	b64 := base64.StdEncoding.EncodeToString(raw)
	index := k.logIndex.Add(1)
	// Base64 and hex need no escaping, so this is the canonical form.
	canonical := fmt.Sprintf(`{"body":%q,"integratedTime":%d,"logID":%q,"logIndex":%d}`, b64, at.Unix(), k.logID, index)
	set, err := k.rekor.SignMessage(strings.NewReader(canonical))
	if err != nil {
		tb.Fatal(err)
	}
	if o.corruptSET {
		set[len(set)/2] ^= 0x01
	}
	out, err := json.Marshal(map[string]any{
		"SignedEntryTimestamp": set,
		"Payload": map[string]any{
			"body":           b64,
			"integratedTime": at.Unix(),
			"logIndex":       index,
			"logID":          k.logID,
		},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return string(out)
}

func genKey(tb testing.TB) *ecdsa.PrivateKey {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return key
}

func createCert(tb testing.TB, tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) (*x509.Certificate, []byte) {
	tb.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	pemBytes, err := cryptoutils.MarshalCertificateToPEM(cert)
	if err != nil {
		tb.Fatal(err)
	}
	return cert, pemBytes
}
