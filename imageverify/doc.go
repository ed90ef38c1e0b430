// Package imageverify gathers the facts of image signatures and
// attestations that Rego rules decide on: the digest an image reference
// resolves to, which attestors signed it (cosign signatures), and their
// verified in-toto attestations (cosign attestations, vulnerability scans
// among them). Go gathers, Rego decides: Verify never fails, it reports.
//
// # What is read
//
// Cosign's registry layout, in the image's own repository: the tag
// sha256-<hex>.sig holds one layer per signature, a simple-signing payload
// (application/vnd.dev.cosign.simplesigning.v1+json) whose
// critical.image.docker-manifest-digest must be the image's digest, with
// the signature in the dev.cosignproject.cosign/signature annotation; the
// tag sha256-<hex>.att holds DSSE envelopes
// (application/vnd.dsse.envelope.v1+json) of in-toto statements whose
// subject must name the digest. Keyless layers add the Fulcio certificate
// (dev.sigstore.cosign/certificate), its chain (dev.sigstore.cosign/chain)
// and the Rekor bundle (dev.sigstore.cosign/bundle).
//
// # Verification, offline
//
// A key attestor verifies the signature (over the payload, or over the
// DSSE pre-authentication encoding) with its ECDSA, Ed25519 or RSA key.
// A keyless identity needs no network either: the certificate's key
// verifies the signature; the bundle's Signed Entry Timestamp verifies
// with the identity's rekorPublicKey over the RFC 8785 form of the entry;
// the entry (hashedrekord, intoto or dsse) is this signature, this
// certificate and this content; the certificate was valid at the entry's
// integrated time and chains to the identity's fulcioRoots; its issuer
// (Fulcio extension 1.3.6.1.4.1.57264.1.8, else .1.1) equals the
// identity's and one of its subject alternative names (e-mail, URI)
// equals subject or matches subjectRegExp, anchored at both ends.
//
// The older cosign bundle carries a SET, not a Merkle inclusion proof: it
// is the log's signed promise that the entry was integrated at that time.
// That is enough to date the signature inside the certificate's ten
// minutes of validity, but it does not show that the entry is still in the
// log that monitors watch; a compromised Rekor key could date a signature
// it never logged. Cosign's offline verification of these bundles trusts
// the SET the same way.
//
// # Facts
//
// ImageFacts lists every attestor asked under Signatures, verified or with
// a reason, and under Attestations the verified statements only. A
// registry that cannot be asked (unreachable, timeout, authentication,
// missing image) sets Error: the rule decides whether that blocks.
//
// Vulnerability scans are cosign vuln attestations (predicate type
// https://cosign.sigstore.dev/attestation/vuln/v1). Rules read the
// findings, Trivy-like, at
//
//	predicate.scanner.result.vulnerabilities = [{"id": "CVE-2024-1234", "severity": "HIGH"}, ...]
//
// (severity one of CRITICAL, HIGH, MEDIUM, LOW, UNKNOWN) and the scan time
// from Attestation.Timestamp (predicate.metadata.scanFinishedOn).
// imageverifytest.Vuln builds that shape.
//
// # Cache and budget
//
// Facts are cached by repository, digest and the content of the attestors
// asked (CacheTTL), tag resolutions by reference (TagTTL), both bounded in
// size; a registry failure is kept ErrorTTL so that an outage is retried
// soon without being hammered, and failures that depend on the caller's
// credentials are not kept at all. Concurrent calls for the same facts
// share one fetch. Every call is bounded by Options.Timeout, well inside
// the admission webhook's timeout.
package imageverify
