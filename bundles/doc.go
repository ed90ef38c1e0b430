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
// revision is replacing one pointer.
package bundles
