package bundles

import "github.com/open-policy-agent/opa/v1/ast"

// The keys of the inputs this package builds and of the decisions it
// reads are interned as OPA string terms (ast.InternStringTerm, which is
// for start-up only): ast.InternedTerm then returns one shared term for
// each instead of allocating it on every decision.
func init() {
	ast.InternStringTerm(
		// input.request (requestValue) and input.object
		"request", "object", "oldObject", "uid", "kind", "group", "version", "namespace", "name",
		"operation", "subResource", "userInfo", "username", "groups",
		// input.facts (Facts.value, imageFacts)
		"facts", "namespaceLabels", "images", "now", "verification",
		"registry", "repository", "tag", "digest", "reference", "valid",
		// the decision (eval)
		"allowed", "warnings", "violations", "rule", "action", "field", "value", "message", "containers",
	)
}
