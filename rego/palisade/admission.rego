# Package admission is the admission webhook's entry point:
# data.palisade.admission.decision for an AdmissionReview request in
# input.request and facts in input.facts. The rules read the deployment
# tab (lib/decision.rules).
package palisade.admission

import data.palisade.lib.decision as lib
import data.palisade.lib.subject
import data.palisade.rules.container
import data.palisade.rules.image
import data.palisade.rules.kubectl
import data.palisade.rules.pod
import data.palisade.rules.verification

# Pod-spec rules run on CREATE and UPDATE of anything that runs pods, and
# on UPDATE of pods/ephemeralcontainers (the pod with its new containers).
_checks_workload if {
	subject.operation in {"CREATE", "UPDATE"}
	subject.sub_resource in {"", "ephemeralcontainers"}
	subject.is_workload
}

workload_findings := ((pod.findings | container.findings) | image.findings) | verification.findings if {
	_checks_workload
} else := set()

findings := workload_findings | kubectl.findings

violations := lib.violations(findings)

# allowed is false when any violation blocks. Log violations become
# warnings (kubectl prints them).
decision := {
	"allowed": count({v | some v in vs; v.action == "block"}) == 0,
	"violations": vs,
	"warnings": sort([v.message | some v in vs; v.action == "log"]),
} if {
	vs := violations
}
