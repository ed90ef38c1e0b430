// Package imageverifytest makes signed images for tests anywhere in the
// repository: an in-memory OCI registry on loopback, key signers, a test
// Fulcio and Rekor for keyless signatures, and cosign vuln predicates.
//
// What it writes is cosign's own layout (sha256-<hex>.sig and .att tags,
// simple-signing and DSSE layers, cosign's annotations, hashedrekord and
// intoto Rekor entries with a SET), so that the cosign CLI verifies it
// and imageverify is tested against the format, not against itself. It
// does not import imageverify.
//
// Typical use:
//
//	host := imageverifytest.StartRegistry(t)
//	ref, digest := imageverifytest.PushRandomImage(t, host, "app", "v1")
//	key := imageverifytest.NewKeySigner(t, imageverifytest.ECDSAP256)
//	imageverifytest.SignImage(t, ref, key)
//	// attestor spec: keys: [{publicKey: key.PublicKeyPEM()}]
//
// The registry speaks plain HTTP: verifiers need imageverify.Options.Insecure.
package imageverifytest
