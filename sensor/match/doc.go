// Package match is the sensor's hot path: it compiles the RuntimeRulesets
// of a bundle into a native matcher that decides on a file or process
// event without evaluating Rego.
//
// The meaning of every rule is data.palisade.runtime.decision
// (rego/palisade/runtime.rego); this package must decide exactly as it
// does, field for field (bundles.RuntimeDecision). A differential test
// against the real compiled bundle and FuzzMatch hold it to that: a
// change of meaning goes into the Rego first, then here.
//
// Learned rules (policy.LearnedRules) reach it as ordinary selectors,
// compiled by the policy loader, with Palisade's kubernetesWorkload and
// containerName conditions; the generators of the differential and fuzz
// tests compile random learned rules into their rulesets the same way.
//
// A Matcher is immutable once compiled and safe for concurrent use; a new
// bundle compiles a new Matcher, which replaces the old one whole.
package match
