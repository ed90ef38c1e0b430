package imageverify_test

import (
	"strings"
	"testing"
	"time"

	"github.com/palisade-dev/palisade/imageverify"
	ivt "github.com/palisade-dev/palisade/imageverify/imageverifytest"
)

func TestKeySignatures(t *testing.T) {
	host := ivt.StartRegistry(t)
	for _, tc := range []struct {
		name string
		kt   ivt.KeyType
	}{
		{"ECDSA P-256 key verifies", ivt.ECDSAP256},
		{"Ed25519 key verifies", ivt.Ed25519},
		{"RSA key verifies", ivt.RSA},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref, digest := ivt.PushRandomImage(t, host, "keys/"+strings.ToLower(strings.Fields(tc.name)[0]), "v1")
			key := ivt.NewKeySigner(t, tc.kt)
			ivt.SignImage(t, ref, key)
			f := newFixture(t).verify(t, ref, keyAttestor(t, "release", key))
			if f.Digest != digest {
				t.Errorf("digest %s, want %s", f.Digest, digest)
			}
			s := wantVerified(t, f, "release")
			if !strings.HasPrefix(s.Identity, "sha256:") {
				t.Errorf("identity %q, want the key's sha256", s.Identity)
			}
		})
	}
}

func TestRefusedSignatures(t *testing.T) {
	host := ivt.StartRegistry(t)
	key := ivt.NewKeySigner(t, ivt.ECDSAP256)
	other := ivt.NewKeySigner(t, ivt.ECDSAP256)
	_, otherDigest := ivt.PushRandomImage(t, host, "refused/other", "v1")
	for _, tc := range []struct {
		name   string
		sign   func(t *testing.T, ref string)
		reason string
	}{
		{"unsigned image has no signature", func(*testing.T, string) {}, imageverify.ReasonNoSignature},
		{"signature by another key does not verify", func(t *testing.T, ref string) { ivt.SignImage(t, ref, other) }, imageverify.ReasonBadSignature},
		{"tampered payload does not verify", func(t *testing.T, ref string) { ivt.SignImage(t, ref, key, ivt.WithTamperedPayload()) }, imageverify.ReasonBadSignature},
		{"payload for another digest is refused", func(t *testing.T, ref string) { ivt.SignImage(t, ref, key, ivt.WithPayloadDigest(otherDigest)) }, imageverify.ReasonDigestMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref, _ := ivt.PushRandomImage(t, host, "refused/"+strings.ToLower(strings.ReplaceAll(tc.name, " ", "-")), "v1")
			tc.sign(t, ref)
			wantRefused(t, newFixture(t).verify(t, ref, keyAttestor(t, "release", key)), "release", tc.reason)
		})
	}
}

func TestEveryAttestorAskedAppears(t *testing.T) {
	host := ivt.StartRegistry(t)
	ref, _ := ivt.PushRandomImage(t, host, "team/app", "v1")
	a, b := ivt.NewKeySigner(t, ivt.ECDSAP256), ivt.NewKeySigner(t, ivt.Ed25519)
	ivt.SignImage(t, ref, a)
	f := newFixture(t).verify(t, ref, keyAttestor(t, "a", a), keyAttestor(t, "b", b))
	wantVerified(t, f, "a")
	wantRefused(t, f, "b", imageverify.ReasonBadSignature)
	if len(f.Attestations) != 2 || f.Attestations["a"] == nil || f.Attestations["b"] == nil {
		t.Errorf("attestations %v, want an empty list for each attestor", f.Attestations)
	}
}

func TestOneOfSeveralSignaturesVerifies(t *testing.T) {
	host := ivt.StartRegistry(t)
	ref, _ := ivt.PushRandomImage(t, host, "team/multi", "v1")
	key := ivt.NewKeySigner(t, ivt.ECDSAP256)
	ivt.SignImage(t, ref, ivt.NewKeySigner(t, ivt.RSA))
	ivt.SignImage(t, ref, key)
	ivt.SignImage(t, ref, ivt.NewKeySigner(t, ivt.Ed25519))
	wantVerified(t, newFixture(t).verify(t, ref, keyAttestor(t, "release", key)), "release")
}

func TestDigestReferenceIsNotResolved(t *testing.T) {
	host := ivt.StartRegistry(t)
	ref, digest := ivt.PushRandomImage(t, host, "team/pinned", "v1")
	key := ivt.NewKeySigner(t, ivt.ECDSAP256)
	ivt.SignImage(t, ref, key)
	pinned := host + "/team/pinned@" + digest
	// Moving the tag must not matter to a pinned reference.
	_, unsigned := ivt.PushRandomImage(t, host, "team/pinned", "v2")
	ivt.Retag(t, ref, unsigned)
	f := newFixture(t).verify(t, pinned, keyAttestor(t, "release", key))
	if f.Digest != digest {
		t.Fatalf("digest %s, want the pinned %s", f.Digest, digest)
	}
	wantVerified(t, f, "release")
}

func TestMovedTagIsCaughtAfterTagTTL(t *testing.T) {
	host := ivt.StartRegistry(t)
	ref, signedDigest := ivt.PushRandomImage(t, host, "team/moving", "latest")
	key := ivt.NewKeySigner(t, ivt.ECDSAP256)
	ivt.SignImage(t, ref, key)
	_, unsignedDigest := ivt.PushRandomImage(t, host, "team/moving", "other")
	att := keyAttestor(t, "release", key)
	fx := newFixture(t, func(o *imageverify.Options) { o.TagTTL = 30 * time.Second })

	wantVerified(t, fx.verify(t, ref, att), "release")
	ivt.Retag(t, ref, unsignedDigest)

	fx.clock.Add(10 * time.Second)
	f := fx.verify(t, ref, att)
	if f.Digest != signedDigest {
		t.Fatalf("within TagTTL: digest %s, want the cached %s", f.Digest, signedDigest)
	}
	fx.clock.Add(21 * time.Second)
	f = fx.verify(t, ref, att)
	if f.Digest != unsignedDigest {
		t.Fatalf("after TagTTL: digest %s, want the moved-to %s", f.Digest, unsignedDigest)
	}
	wantRefused(t, f, "release", imageverify.ReasonNoSignature)
}

func TestAttestorContentIsPartOfTheCacheKey(t *testing.T) {
	host := ivt.StartRegistry(t)
	ref, _ := ivt.PushRandomImage(t, host, "team/rotated", "v1")
	oldKey, newKey := ivt.NewKeySigner(t, ivt.ECDSAP256), ivt.NewKeySigner(t, ivt.ECDSAP256)
	ivt.SignImage(t, ref, oldKey)
	fx := newFixture(t)
	wantVerified(t, fx.verify(t, ref, keyAttestor(t, "release", oldKey)), "release")
	// Same attestor name, rotated key: the cached verdict must not carry over.
	wantRefused(t, fx.verify(t, ref, keyAttestor(t, "release", newKey)), "release", imageverify.ReasonBadSignature)
}
