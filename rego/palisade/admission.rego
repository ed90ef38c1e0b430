# Package admission is the admission webhook's entry point:
# data.palisade.admission.decision for an AdmissionReview request in
# input.request and facts in input.facts.
package palisade.admission

import data.palisade.lib.decision as lib
import data.palisade.lib.subject
import data.palisade.rules.container
import data.palisade.rules.image
import data.palisade.rules.kubectl
import data.palisade.rules.pod

rules := object.get(lib.definition, "deployment", {})

# Pod-spec rules run on CREATE and UPDATE of anything that runs pods, and
# on UPDATE of pods/ephemeralcontainers (the pod with its new containers).
_checks_workload if {
	subject.operation in {"CREATE", "UPDATE"}
	subject.sub_resource in {"", "ephemeralcontainers"}
	subject.is_workload
}

workload_findings := (pod.findings(rules) | container.findings(rules)) | image.findings(rules) if _checks_workload

workload_findings := set() if not _checks_workload

findings := workload_findings | kubectl.findings(rules)

violations := lib.violations(findings, rules)

# allowed is false when any violation blocks. Log violations become
# warnings (kubectl prints them).
allowed := count({v | some v in violations; v.action == "block"}) == 0

warnings := sort([v.message | some v in violations; v.action == "log"])

decision := {
	"allowed": allowed,
	"violations": violations,
	"warnings": warnings,
}
