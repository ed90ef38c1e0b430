// Package bundles builds, serves and fetches OPA bundles, and evaluates
// decisions against the active one.
//
// A bundle carries the policy of one cluster: a .manifest whose revision
// is the Git commit and whose only root is "palisade", the Rego library
// (package rego, tests left out) under palisade/, and data.json holding
// the validated, normalised policy at data.palisade.policy. Build is
// deterministic: the same repository and revision give the same bytes.
// A bundle is a standard OPA bundle; a plain `opa run --server` loads it.
//
// An Engine is a compiled bundle with prepared queries for the entry
// points; it is immutable and safe for concurrent use, so activating a new
// revision is replacing one pointer. Admission, continuous and
// verification decisions run OPA's plan of the bundle in internal/irvm,
// with OPA's topdown as the reference they are tested against and the
// fallback (evaluator.go; PALISADE_EVALUATOR chooses).
//
// A Server serves one bundle per cluster over OPA's bundle service API
// (GET /bundles/{cluster}.tar.gz, strong ETags, long polling with
// "Prefer: wait"), behind a bearer token or mTLS, optionally signing each
// bundle with OPA's bundle signing. Publish swaps the whole set in one
// step; a cluster whose content did not change keeps its revision and
// ETag. Close ends pending long polls before the HTTP server shuts down.
//
// A Client keeps one cluster's bundle active for an enforcement point. It
// verifies a bundle's signature before parsing anything else, activates
// it only once NewEngine compiled it, and then persists it to its cache
// directory; a refused bundle leaves the last good one active. At start
// it loads (and verifies and compiles again) the cached bundle, so it
// serves while the server is unreachable.
package bundles
