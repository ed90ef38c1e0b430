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
// Every rule function returns findings {rule, field, value, container};
// lib/decision turns them into violations {rule, action, field, value,
// containers, message}. Every .rego file has a _test.rego beside it.
package rego
