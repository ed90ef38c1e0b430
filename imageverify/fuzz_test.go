package imageverify

import (
	"encoding/base64"
	"testing"

	ivt "github.com/palisade-dev/palisade/imageverify/imageverifytest"
	"github.com/palisade-dev/palisade/policy"
)

// FuzzLayer feeds registry content (a layer's bytes and its annotations,
// all under the control of whoever can push to the repository) through
// the parsers and the checks of a key and a keyless attestor. Nothing may
// panic, and nothing unsigned may verify.
func FuzzLayer(f *testing.F) {
	const digest = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
	f.Add([]byte(`{"critical":{"identity":{"docker-reference":"r"},"image":{"docker-manifest-digest":"`+digest+`"},"type":"cosign container image signature"},"optional":null}`),
		base64.StdEncoding.EncodeToString([]byte("sig")), "", "")
	f.Add([]byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[{"keyid":"","sig":"AA=="}]}`),
		"", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
		`{"SignedEntryTimestamp":"AA==","Payload":{"body":"e30=","integratedTime":1,"logIndex":1,"logID":"00"}}`)
	f.Add([]byte(`{"payloadType":"application/vnd.in-toto+json","payload":"eyJfdHlwZSI6Imh0dHBzOi8vaW4tdG90by5pby9TdGF0ZW1lbnQvdjAuMSIsInN1YmplY3QiOlt7ImRpZ2VzdCI6eyJzaGEyNTYiOiIwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwIn19XSwicHJlZGljYXRlIjp7fX0=","signatures":[]}`),
		"", "", `{"Payload":{"body":1}}`)

	ca := ivt.NewKeyless(f)
	key := ivt.NewKeySigner(f, ivt.ECDSAP256)
	a, err := NewAttestor("fuzz", policy.AttestorSpec{
		Keys: []policy.AttestorKey{{PublicKey: key.PublicKeyPEM()}},
		Keyless: []policy.KeylessIdentity{{
			Issuer: "https://issuer.example", SubjectRegExp: ".*",
			FulcioRoots: ca.FulcioRootPEM(), RekorPublicKey: ca.RekorPublicKeyPEM(),
		}},
	}, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte, sig, cert, bundle string) {
		l := layer{data: data, annotations: map[string]string{
			annSignature: sig, annCertificate: cert, annBundle: bundle, annChain: cert,
		}}
		var fail failure
		if v := a.check(signatureItem(l, digest), &fail); v.ok {
			t.Fatalf("fuzzed signature verified: %+v", v)
		}
		it, _, _ := attestationItem(l, digest)
		if v := a.check(it, &fail); v.ok {
			t.Fatalf("fuzzed attestation verified: %+v", v)
		}
	})
}
