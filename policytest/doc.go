// Package policytest evaluates Kubernetes manifests offline, exactly as
// the admission webhook and the scanner would, and runs the PolicyTests of
// a policy repository against bundles built as production builds them.
//
// It backs `palisade eval` and `palisade test`. It holds no rule logic:
// every decision comes from the bundle's Rego.
package policytest
