package imageverify_test

import (
	"strings"
	"testing"

	"github.com/palisade-dev/palisade/imageverify"
	ivt "github.com/palisade-dev/palisade/imageverify/imageverifytest"
	"github.com/palisade-dev/palisade/policy"
)

const (
	githubIssuer = "https://token.actions.githubusercontent.com"
	workflow     = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main"
)

func TestKeylessSignatures(t *testing.T) {
	host := ivt.StartRegistry(t)
	ca := ivt.NewKeyless(t)
	otherCA := ivt.NewKeyless(t)
	_, otherDigest := ivt.PushRandomImage(t, host, "keyless/other", "v1")
	exact := func(t *testing.T) *imageverify.Attestor {
		return keylessAttestor(t, "ci", ca, githubIssuer, workflow, "")
	}
	for _, tc := range []struct {
		name     string
		sign     func(t *testing.T, ref string)
		attestor func(t *testing.T) *imageverify.Attestor
		reason   string // empty: verified
	}{
		{
			name:     "workflow identity verifies offline",
			sign:     func(t *testing.T, ref string) { ca.SignImageKeyless(t, ref, githubIssuer, workflow) },
			attestor: exact,
		},
		{
			name: "e-mail identity verifies",
			sign: func(t *testing.T, ref string) {
				ca.SignImageKeyless(t, ref, "https://accounts.google.com", "release@acme.example")
			},
			attestor: func(t *testing.T) *imageverify.Attestor {
				return keylessAttestor(t, "ci", ca, "https://accounts.google.com", "release@acme.example", "")
			},
		},
		{
			name: "subject regexp verifies",
			sign: func(t *testing.T, ref string) { ca.SignImageKeyless(t, ref, githubIssuer, workflow) },
			attestor: func(t *testing.T) *imageverify.Attestor {
				return keylessAttestor(t, "ci", ca, githubIssuer, "", `https://github\.com/acme/.*`)
			},
		},
		{
			name: "subject regexp is anchored",
			sign: func(t *testing.T, ref string) {
				ca.SignImageKeyless(t, ref, githubIssuer, "https://evil.example/?https://github.com/acme/app")
			},
			attestor: func(t *testing.T) *imageverify.Attestor {
				return keylessAttestor(t, "ci", ca, githubIssuer, "", `https://github\.com/acme/.*`)
			},
			reason: imageverify.ReasonIdentityMismatch + ": subject",
		},
		{
			name: "certificate expired at signing time is refused",
			sign: func(t *testing.T, ref string) {
				ca.SignImageKeyless(t, ref, githubIssuer, workflow, ivt.WithExpiredCertificate())
			},
			attestor: exact,
			reason:   imageverify.ReasonExpired,
		},
		{
			name: "wrong subject is refused",
			sign: func(t *testing.T, ref string) {
				ca.SignImageKeyless(t, ref, githubIssuer, "https://github.com/mallory/app/.github/workflows/x.yml@refs/heads/main")
			},
			attestor: exact,
			reason:   imageverify.ReasonIdentityMismatch + ": subject",
		},
		{
			name: "wrong issuer is refused",
			sign: func(t *testing.T, ref string) {
				ca.SignImageKeyless(t, ref, "https://issuer.mallory.example", workflow)
			},
			attestor: exact,
			reason:   imageverify.ReasonIdentityMismatch + ": issuer",
		},
		{
			name: "corrupt SET is refused",
			sign: func(t *testing.T, ref string) {
				ca.SignImageKeyless(t, ref, githubIssuer, workflow, ivt.WithCorruptSET())
			},
			attestor: exact,
			reason:   imageverify.ReasonBadSET,
		},
		{
			// The key signed once within the certificate's validity and
			// was kept: a later signature with the old, valid SET beside
			// it must not borrow its time.
			name: "bundle of another entry is refused",
			sign: func(t *testing.T, ref string) {
				ca.SignImageKeyless(t, ref, githubIssuer, workflow, ivt.WithReplayedBundle())
			},
			attestor: exact,
			reason:   imageverify.ReasonEntryMismatch,
		},
		{
			name: "signature without a bundle is refused",
			sign: func(t *testing.T, ref string) {
				ca.SignImageKeyless(t, ref, githubIssuer, workflow, ivt.WithoutBundle())
			},
			attestor: exact,
			reason:   imageverify.ReasonNoBundle,
		},
		{
			name:     "certificate from another Fulcio is refused",
			sign:     func(t *testing.T, ref string) { otherCA.SignImageKeyless(t, ref, githubIssuer, workflow) },
			attestor: exact,
			reason:   imageverify.ReasonBadSET, // the other CA's log is not trusted either
		},
		{
			name: "certificate from another Fulcio is refused even with a trusted log",
			sign: func(t *testing.T, ref string) { otherCA.SignImageKeyless(t, ref, githubIssuer, workflow) },
			attestor: func(t *testing.T) *imageverify.Attestor {
				a, err := imageverify.NewAttestor("ci", policy.AttestorSpec{Keyless: []policy.KeylessIdentity{{
					Issuer: githubIssuer, Subject: workflow,
					FulcioRoots: ca.FulcioRootPEM(), RekorPublicKey: otherCA.RekorPublicKeyPEM(),
				}}}, nil)
				if err != nil {
					t.Fatal(err)
				}
				return a
			},
			reason: imageverify.ReasonUntrustedChain,
		},
		{
			name: "keyless payload for another digest is refused",
			sign: func(t *testing.T, ref string) {
				ca.SignImageKeyless(t, ref, githubIssuer, workflow, ivt.WithPayloadDigest(otherDigest))
			},
			attestor: exact,
			reason:   imageverify.ReasonDigestMismatch,
		},
		{
			name: "tampered keyless payload is refused",
			sign: func(t *testing.T, ref string) {
				ca.SignImageKeyless(t, ref, githubIssuer, workflow, ivt.WithTamperedPayload())
			},
			attestor: exact,
			reason:   imageverify.ReasonBadSignature,
		},
		{
			name: "key signature does not satisfy a keyless identity",
			sign: func(t *testing.T, ref string) {
				ivt.SignImage(t, ref, ivt.NewKeySigner(t, ivt.ECDSAP256))
			},
			attestor: exact,
			reason:   imageverify.ReasonBadSignature,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref, _ := ivt.PushRandomImage(t, host, "keyless/"+strings.ToLower(strings.ReplaceAll(tc.name, " ", "-")), "v1")
			tc.sign(t, ref)
			f := newFixture(t).verify(t, ref, tc.attestor(t))
			if tc.reason != "" {
				wantRefused(t, f, "ci", tc.reason)
				return
			}
			s := wantVerified(t, f, "ci")
			if s.Issuer == "" || s.Identity == "" {
				t.Errorf("identity %q issuer %q, want both", s.Identity, s.Issuer)
			}
		})
	}
}

func TestNewAttestorRefusesIncompleteKeyless(t *testing.T) {
	ca := ivt.NewKeyless(t)
	for _, tc := range []struct {
		name string
		id   policy.KeylessIdentity
		want string
	}{
		{"no fulcioRoots", policy.KeylessIdentity{Issuer: githubIssuer, Subject: workflow, RekorPublicKey: ca.RekorPublicKeyPEM()}, "fulcioRoots is required"},
		{"no rekorPublicKey", policy.KeylessIdentity{Issuer: githubIssuer, Subject: workflow, FulcioRoots: ca.FulcioRootPEM()}, "rekorPublicKey is required"},
		{"bad regexp", policy.KeylessIdentity{Issuer: githubIssuer, SubjectRegExp: "(", FulcioRoots: ca.FulcioRootPEM(), RekorPublicKey: ca.RekorPublicKeyPEM()}, "subjectRegExp"},
		{"garbage roots", policy.KeylessIdentity{Issuer: githubIssuer, Subject: workflow, FulcioRoots: "nope", RekorPublicKey: ca.RekorPublicKeyPEM()}, "fulcioRoots"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := imageverify.NewAttestor("ci", policy.AttestorSpec{Keyless: []policy.KeylessIdentity{tc.id}}, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func TestNewAttestorReadsKeyFiles(t *testing.T) {
	key := ivt.NewKeySigner(t, ivt.Ed25519)
	read := func(path string) ([]byte, error) {
		if path != "keys/release.pub" {
			t.Fatalf("read %s", path)
		}
		return []byte(key.PublicKeyPEM()), nil
	}
	a, err := imageverify.NewAttestor("release", policy.AttestorSpec{Keys: []policy.AttestorKey{{File: "keys/release.pub"}}}, read)
	if err != nil {
		t.Fatal(err)
	}
	if a.Name() != "release" {
		t.Errorf("name %q", a.Name())
	}
	if _, err := imageverify.NewAttestor("release", policy.AttestorSpec{Keys: []policy.AttestorKey{{File: "x"}}}, nil); err == nil {
		t.Error("a key file without a reader compiled")
	}
}
