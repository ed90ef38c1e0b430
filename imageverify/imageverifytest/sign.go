package imageverifytest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/payload"
)

// Cosign's media types and annotations.
const (
	SimpleSigningMediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
	DSSEMediaType          = "application/vnd.dsse.envelope.v1+json"
	InTotoPayloadType      = "application/vnd.in-toto+json"
	inTotoStatementV01     = "https://in-toto.io/Statement/v0.1"

	annSignature     = "dev.cosignproject.cosign/signature"
	annCertificate   = "dev.sigstore.cosign/certificate"
	annChain         = "dev.sigstore.cosign/chain"
	annBundle        = "dev.sigstore.cosign/bundle"
	annPredicateType = "predicateType"
)

// KeyType is the algorithm of a KeySigner.
type KeyType int

// The key types cosign verifies.
const (
	ECDSAP256 KeyType = iota
	Ed25519
	RSA
)

// KeySigner signs like `cosign sign --key`.
type KeySigner struct {
	signer signature.SignerVerifier
	pubPEM string
}

// NewKeySigner generates a key of the given type.
func NewKeySigner(tb testing.TB, kt KeyType) *KeySigner {
	tb.Helper()
	var priv crypto.PrivateKey
	var err error
	switch kt {
	case ECDSAP256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case Ed25519:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case RSA:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		tb.Fatalf("unknown key type %d", kt)
	}
	if err != nil {
		tb.Fatal(err)
	}
	sv, err := signature.LoadSignerVerifier(priv, crypto.SHA256)
	if err != nil {
		tb.Fatal(err)
	}
	pub, err := sv.PublicKey()
	if err != nil {
		tb.Fatal(err)
	}
	pubPEM, err := cryptoutils.MarshalPublicKeyToPEM(pub)
	if err != nil {
		tb.Fatal(err)
	}
	return &KeySigner{signer: sv, pubPEM: string(pubPEM)}
}

// PublicKeyPEM is the key as an Attestor's publicKey (and cosign's
// cosign.pub).
func (k *KeySigner) PublicKeyPEM() string { return k.pubPEM }

func (k *KeySigner) sign(tb testing.TB, msg []byte) []byte {
	tb.Helper()
	sig, err := k.signer.SignMessage(strings.NewReader(string(msg)))
	if err != nil {
		tb.Fatal(err)
	}
	return sig
}

// SignImage writes a cosign signature of ref (a tag or digest reference)
// by signer: a simple-signing layer appended to the image's
// sha256-<hex>.sig tag, the layout `cosign sign --key` writes, so cosign
// verifies it. WithPayloadDigest and WithTamperedPayload write bad ones.
func SignImage(tb testing.TB, ref string, signer *KeySigner, opts ...Option) {
	tb.Helper()
	o := collect(opts)
	d := resolve(tb, ref, o)
	p := simpleSigningPayload(tb, d, o)
	sig := signer.sign(tb, p)
	if o.tamperPayload {
		p = tamper(p)
	}
	appendLayer(tb, d, ".sig", static.NewLayer(p, SimpleSigningMediaType), map[string]string{
		annSignature: base64.StdEncoding.EncodeToString(sig),
	}, o)
}

// Attest writes a cosign attestation of ref by signer: a DSSE envelope of
// an in-toto statement (subject: the image digest) appended to the
// image's sha256-<hex>.att tag, as `cosign attest --key` writes it.
func Attest(tb testing.TB, ref string, signer *KeySigner, predicateType string, predicate any, opts ...Option) {
	tb.Helper()
	o := collect(opts)
	d := resolve(tb, ref, o)
	stmt := statement(tb, d, predicateType, predicate, o)
	env := envelope(stmt, signer.sign(tb, pae(InTotoPayloadType, stmt)), o)
	appendLayer(tb, d, ".att", static.NewLayer(env, DSSEMediaType), map[string]string{
		annSignature:     "",
		annPredicateType: predicateType,
	}, o)
}

// WithPayloadDigest signs a payload (or statement) naming another digest,
// written beside the image: a signature moved from another image.
func WithPayloadDigest(digest string) Option {
	return func(o *options) { o.payloadDigest = digest }
}

// WithTamperedPayload changes the payload after signing.
func WithTamperedPayload() Option {
	return func(o *options) { o.tamperPayload = true }
}

func resolve(tb testing.TB, ref string, o *options) name.Digest {
	tb.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		tb.Fatal(err)
	}
	if d, ok := r.(name.Digest); ok {
		return d
	}
	desc, err := remote.Head(r, o.remoteOptions()...)
	if err != nil {
		tb.Fatalf("resolve %s: %v", ref, err)
	}
	return r.Context().Digest(desc.Digest.String())
}

func simpleSigningPayload(tb testing.TB, d name.Digest, o *options) []byte {
	tb.Helper()
	if o.payloadDigest != "" {
		d = d.Context().Digest(o.payloadDigest)
	}
	b, err := json.Marshal(payload.Cosign{Image: d})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func statement(tb testing.TB, d name.Digest, predicateType string, predicate any, o *options) []byte {
	tb.Helper()
	digest := d.DigestStr()
	if o.payloadDigest != "" {
		digest = o.payloadDigest
	}
	hexDigest, _ := strings.CutPrefix(digest, "sha256:")
	b, err := json.Marshal(map[string]any{
		"_type":         inTotoStatementV01,
		"predicateType": predicateType,
		"subject": []map[string]any{{
			"name":   d.Context().Name(),
			"digest": map[string]string{"sha256": hexDigest},
		}},
		"predicate": predicate,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func envelope(stmt, sig []byte, o *options) []byte {
	if o.tamperPayload {
		stmt = tamper(stmt)
	}
	b, _ := json.Marshal(map[string]any{
		"payloadType": InTotoPayloadType,
		"payload":     base64.StdEncoding.EncodeToString(stmt),
		"signatures":  []map[string]string{{"keyid": "", "sig": base64.StdEncoding.EncodeToString(sig)}},
	})
	return b
}

// pae is DSSE's pre-authentication encoding.
func pae(payloadType string, body []byte) []byte {
	return []byte("DSSEv1 " + strconv.Itoa(len(payloadType)) + " " + payloadType + " " + strconv.Itoa(len(body)) + " " + string(body))
}

// tamper changes one byte of a JSON document, keeping it JSON.
func tamper(b []byte) []byte {
	out := append([]byte(nil), b...)
	return append(out[:len(out)-1], []byte(` }`)...)
}

// appendLayer adds a layer to the image at sha256-<hex><suffix>, creating
// it as cosign does (an OCI manifest on an empty config) when missing.
func appendLayer(tb testing.TB, d name.Digest, suffix string, l v1.Layer, annotations map[string]string, o *options) {
	tb.Helper()
	tag := d.Context().Tag(strings.Replace(d.DigestStr(), ":", "-", 1) + suffix)
	base, err := remote.Image(tag, o.remoteOptions()...)
	if err != nil {
		base = mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	}
	img, err := mutate.Append(base, mutate.Addendum{Layer: l, Annotations: annotations})
	if err != nil {
		tb.Fatal(err)
	}
	if err := remote.Write(tag, img, o.remoteOptions()...); err != nil {
		tb.Fatalf("push %s: %v", tag, err)
	}
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// AttestorYAML is a policy repository file (attestors/<name>.yaml)
// declaring an Attestor with the signer's public key.
func AttestorYAML(name string, signer *KeySigner) string {
	return "apiVersion: palisade.dev/v1alpha1\nkind: Attestor\nmetadata: {name: " + name + "}\nspec:\n  keys:\n    - publicKey: |\n" +
		"        " + strings.ReplaceAll(strings.TrimSpace(signer.PublicKeyPEM()), "\n", "\n        ") + "\n"
}
