package imageverify

import (
	"bytes"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
)

// item is one signed thing found in the registry (a simple-signing layer
// of the .sig image or a DSSE layer of the .att image), ready to be checked
// against every attestor.
type item struct {
	message [][]byte // what each signature covers (simple signing: the payload; DSSE: PAE)
	sigs    [][]byte // the signatures, message[i] for sigs[i]

	certPEM, chainPEM, bundleJSON []byte

	// artifact is what a Rekor entry hashes: the simple-signing payload,
	// or the whole DSSE envelope; dssePayload is the in-toto statement.
	artifact    []byte
	dssePayload []byte

	// subjectErr is set when the signed content is not about the image's
	// digest (another digest, or not parseable): a valid signature over it
	// proves nothing about this image.
	subjectErr string

	malformed string // set when the layer could not be read at all

	keyless *keylessMaterial // parsed on first use
}

func (it *item) verifiedBy(v signature.Verifier) bool {
	for i, sig := range it.sigs {
		if v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(it.message[i])) == nil {
			return true
		}
	}
	return false
}

func (it *item) hasSignature(sig []byte) bool {
	for _, s := range it.sigs {
		if bytes.Equal(s, sig) {
			return true
		}
	}
	return false
}

// Ranks of how far a failed check got: the reason reported for an
// attestor is the one that came closest to verifying, so that "identity
// mismatch" is not hidden behind an unrelated signature that did not
// verify.
const (
	rankNone = iota
	rankMalformed
	rankSignature
	rankPayload
	rankBundle
	rankSET
	rankEntry
	rankTime
	rankChain
	rankIdentity
)

// failure keeps the most advanced failure seen.
type failure struct {
	rank   int
	reason string
}

func (f *failure) note(rank int, reason string) {
	if rank > f.rank || f.reason == "" {
		f.rank, f.reason = rank, reason
	}
}

// verdict is the outcome of checking one item against one attestor.
type verdict struct {
	ok       bool
	identity string
	issuer   string
	signed   time.Time // zero unless proven by a transparency log
}

// check verifies one item against the attestor: any key, or any keyless
// identity.
func (a *Attestor) check(it *item, f *failure) verdict {
	if it.malformed != "" {
		f.note(rankMalformed, it.malformed)
		return verdict{}
	}
	if len(it.sigs) == 0 {
		f.note(rankMalformed, ReasonMalformed+": no signature in layer")
		return verdict{}
	}
	for _, k := range a.keys {
		verified := false
		for _, v := range k.verifiers {
			if it.verifiedBy(v) {
				verified = true
				break
			}
		}
		if !verified {
			f.note(rankSignature, ReasonBadSignature)
			continue
		}
		if it.subjectErr != "" {
			f.note(rankPayload, it.subjectErr)
			continue
		}
		return verdict{ok: true, identity: k.id}
	}
	if len(a.keyless) > 0 {
		if subject, issuer, signed, ok := a.verifyKeyless(it, f); ok {
			return verdict{ok: true, identity: subject, issuer: issuer, signed: signed}
		}
	}
	return verdict{}
}
