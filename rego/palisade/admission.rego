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

# Pod-spec rules run on CREATE of anything that runs pods, on an UPDATE
# that changes what runs, and on UPDATE of pods/ephemeralcontainers (the
# pod with its new containers).
_checks_workload if {
	subject.operation == "CREATE"
	subject.sub_resource == ""
	subject.is_workload
}

_checks_workload if {
	subject.operation == "UPDATE"
	subject.sub_resource in {"", "ephemeralcontainers"}
	subject.is_workload
	_changes_what_runs
}

# An UPDATE that leaves what runs as it was is not checked, as Pod
# Security Admission and Kyverno (allowExistingViolations) do: a label or
# annotation patch on a running pod (the scanner's isolation label, a
# controller's bookkeeping) or scaling a workload starts nothing new, and
# refusing it would make an existing violation impossible to isolate or
# scale down. The continuous scanner re-checks what runs. What runs is a
# Pod's spec, and a workload's pod template (its labels and annotations
# included: they are the new pods').
_changes_what_runs if subject.sub_resource == "ephemeralcontainers"

_changes_what_runs if {
	subject.kind == "Pod"
	subject.pod_spec != object.get(subject.old_template, "spec", null)
}

_changes_what_runs if {
	subject.kind != "Pod"
	subject.template != subject.old_template
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
