// Package admission is Palisade's validating admission webhook.
//
// A Handler answers admission.k8s.io/v1 AdmissionReviews: it decodes the
// request (a bounded body, parsed once, its objects straight into the AST
// values Rego reads, with internal/jsonast; anything that is not a review
// gets a 4xx naming the field and one log line, never a panic), gathers the facts Rego needs (the
// evaluation time from an injected clock, the namespace's labels from a
// NamespaceLister), evaluates data.palisade.admission.decision on the
// engine an EngineSource has active, and shapes the response: a denial
// whose status message lists every blocking violation, warnings for log
// violations (kubectl prints them), and the violations as an audit
// annotation. Go never decides: every request, whatever its kind or
// operation, is answered by the decision. Before the first bundle, or if
// an evaluation fails, the handler fails closed unless Options.FailOpen.
// Each review writes one decision log line (never the object) and is
// counted in palisade_admission_* metrics.
//
// WebhookConfiguration builds the ValidatingWebhookConfiguration that
// registers the handler, excluding the system namespace and kube-system.
//
// The serving certificate comes from files (CertFiles, re-read on each
// handshake so a renewed certificate is served without a restart) or is
// self-managed (CertManager: a CA and serving certificate in a Secret,
// renewed before expiry, with the caBundle of Palisade's webhook
// configurations patched to match). NewServer serves the handler over
// TLS with probes.
package admission
