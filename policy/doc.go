// Package policy owns the policy language: the Go types of the five kinds
// (Policy, RuntimeRuleset, Attestor, PolicyTest, LearnedRules, apiVersion
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
// LearnedRules (what learning mode proposes, in learned/<ruleset>.yaml by
// convention; like every kind it is found in any YAML file of the
// repository) are compiled here too, into ordinary selectors of the
// ruleset they extend (CompileLearned), so that the bundle, Rego and the
// sensor's native matcher know nothing of them. Decisions:
//   - Selector names starting with "learned." are reserved for them: a
//     RuntimeRuleset naming its own selectors so is invalid.
//   - Learned rules for a section (process or file) the ruleset does not
//     have are an error, not a warning: they would silently change
//     nothing, and Load has no warnings (a repository loads or it does
//     not). The reviewer deletes them or adds the section.
//   - One LearnedRules per ruleset (a second is a duplicate name), and
//     one entry per namespace, workload and container in it.
//   - Executables are exact (glob characters are escaped when compiled);
//     file paths are D4C path patterns, so a writer of learned files
//     escapes with \ the glob characters (*?[]{}\) of an exact path. Process entries whose interactive
//     is true or absent share a selector: both allow the executable with
//     or without a terminal.
//   - Evidence is validated (count ≥ 1, RFC 3339 times, firstSeen not
//     after lastSeen) and otherwise ignored.
//
// The package decides nothing about workloads: what a rule means is
// defined in Rego (package rego). It imports no other Palisade package.
package policy
