// Package policy owns the policy language: the Go types of the four kinds
// (Policy, RuntimeRuleset, Attestor, PolicyTest, apiVersion
// palisade.dev/v1alpha1), loading them from a repository's YAML files,
// validation and normalisation.
//
// Load is strict and exhaustive: unknown fields, duplicate keys, type
// mismatches and semantic mistakes are all reported in one ErrorList, each
// with file, line, column and field path, so that an admin fixes a pull
// request in one round. A repository that does not load never becomes a
// bundle. Normalisation (defaults, image references, capability names,
// expiry times, continuous rules inheriting deployment parameters) happens
// here once, so that Rego reads one canonical form.
//
// The package decides nothing about workloads: what a rule means is
// defined in Rego (package rego). It imports no other Palisade package.
package policy
