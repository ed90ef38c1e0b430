# Package continuous is the scanner's entry point:
# data.palisade.continuous.decision for a running pod in input.object and
# facts in input.facts. It shares every rule with admission; the rules read
# the continuous tab (lib/decision.rules).
package palisade.continuous

import data.palisade.lib.decision as lib
import data.palisade.lib.subject
import data.palisade.rules.container
import data.palisade.rules.image
import data.palisade.rules.pod
import data.palisade.rules.verification

findings := ((pod.findings | container.findings) | image.findings) | verification.findings if {
	subject.is_workload
} else := set()

violations := lib.violations(findings)

decision := {
	"violations": violations,
	"schedule": object.get(lib.definition, ["continuous", "schedule"], "@every 5m"),
}
