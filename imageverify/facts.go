package imageverify

// ImageFacts is what Rego learns about one image reference: its digest,
// which attestors signed it, and their verified attestations. Failures are
// facts too: the rule decides whether they block or log.
//
// Facts handed out by Verify are shared with the cache: treat them as
// read-only.
type ImageFacts struct {
	// Digest is the manifest digest (sha256:...) the facts are about: the
	// pod's own digest when the reference has one, else the tag's
	// resolution. Empty when the tag could not be resolved.
	Digest string `json:"digest"`
	// Error is set when the registry could not be asked (unreachable,
	// timeout, authentication, not found, malformed answer). Signatures
	// then say why they are not verified, and Attestations are empty.
	Error string `json:"error,omitempty"`
	// Signatures has one entry for every attestor asked, by name.
	Signatures map[string]SignatureFacts `json:"signatures"`
	// Attestations has one entry for every attestor asked, by name: the
	// attestations that attestor verifiably signed for this digest (an
	// empty list when none). Unverified attestations are never listed.
	Attestations map[string][]Attestation `json:"attestations"`
}

// SignatureFacts says whether one attestor signed the image.
type SignatureFacts struct {
	Verified bool `json:"verified"`
	// Reason says why not, in words a cluster admin can act on: "no
	// signature", "signature does not verify", "payload digest mismatch",
	// "certificate expired at signing time", "identity mismatch: ...",
	// "registry error: ..." and the like. When several signatures fail,
	// it is the one that came closest to verifying.
	Reason string `json:"reason,omitempty"`
	// Identity is what verified: "sha256:<hex>" of the public key (DER,
	// PKIX) for keys, the certificate's matched subject (e-mail or URI)
	// for keyless signatures.
	Identity string `json:"identity,omitempty"`
	// Issuer is the OIDC issuer of a keyless certificate that verified.
	Issuer string `json:"issuer,omitempty"`
}

// Attestation is a verified in-toto statement about the image.
type Attestation struct {
	PredicateType string         `json:"predicateType"`
	Predicate     map[string]any `json:"predicate"`
	// Timestamp (RFC 3339, UTC) is the predicate's scan finish time (cosign
	// vuln: predicate.metadata.scanFinishedOn), else the signing time
	// proven by the transparency log (keyless), else empty: a key-signed
	// attestation without a scan time carries no trustworthy time.
	Timestamp string `json:"timestamp"`
}

// Reasons a signature is not verified, stable for rules and tests to
// compare against.
const (
	ReasonNoSignature      = "no signature"
	ReasonBadSignature     = "signature does not verify"
	ReasonDigestMismatch   = "payload digest mismatch"
	ReasonMalformed        = "malformed signature"
	ReasonNoBundle         = "no transparency log bundle"
	ReasonBadSET           = "transparency log timestamp (SET) does not verify"
	ReasonEntryMismatch    = "transparency log entry does not match the signature"
	ReasonExpired          = "certificate expired at signing time"
	ReasonNotYetValid      = "certificate not yet valid at signing time"
	ReasonUntrustedChain   = "certificate does not chain to the attestor's fulcioRoots"
	ReasonIdentityMismatch = "identity mismatch"
	ReasonRegistryError    = "registry error"
)

// VulnPredicateType is cosign's vulnerability scan predicate type; its
// findings are read at predicate.scanner.result.vulnerabilities (see the
// package documentation).
const VulnPredicateType = "https://cosign.sigstore.dev/attestation/vuln/v1"
