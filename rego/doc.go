// Package rego is the Rego library of Palisade: the single definition of
// what every rule means.
//
// The library is pure: a decision depends only on input (the request and
// the facts Go gathered, evaluation time included) and on data.palisade.policy
// (the validated, normalised policy of one cluster). It never calls out of
// the sandbox (no http.send) and never reads the clock.
//
// Layout, under palisade/:
//
//	admission.rego     data.palisade.admission.decision: the webhook's entry point
//	continuous.rego    data.palisade.continuous.decision: the scanner's entry point
//	lib/subject.rego   what is evaluated: the object, its pod template, containers, facts
//	lib/images.rego    image references normalised as the container runtime does
//	lib/decision.rego  definition selection, exceptions, audit mode, violation shape
//	lib/pss.rego       the Pod Security Standards controls
//	rules/*.rego       the rule catalog, one family per file
//
// Each rules package has one partial set, findings, of findings {rule,
// field, value, container}: one body per rule (or case of a rule), guarded
// by the rule's configuration in data.palisade.lib.decision.rules (the
// deployment tab for an admission request, the continuous tab for a scan).
// lib/decision turns them into violations {rule, action, field, value,
// containers, message}. Every .rego file has a _test.rego beside it.
//
// The library runs in an admission webhook, and OPA's evaluator costs about
// a microsecond per rule, function call or comprehension it enters, and a
// fraction of that per expression. So the hot path enters few of them:
// rules rather than functions of the configuration (OPA caches a rule once
// per query), bodies of one rule rather than one rule per catalog entry,
// rule values bound to a local before a loop, no helper call per container
// where an expression does. bundles.BenchmarkDecisionParts measures each
// part.
package rego
