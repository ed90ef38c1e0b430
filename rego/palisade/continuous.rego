# Package continuous is the scanner's entry point:
# data.palisade.continuous.decision for a running pod in input.object and
# facts in input.facts. It shares every rule with admission.
package palisade.continuous

import data.palisade.lib.decision as lib
import data.palisade.lib.subject
import data.palisade.rules.container
import data.palisade.rules.image
import data.palisade.rules.pod

rules := object.get(lib.definition, ["continuous", "rules"], {})

findings := (pod.findings(rules) | container.findings(rules)) | image.findings(rules) if subject.is_workload

findings := set() if not subject.is_workload

violations := lib.violations(findings, rules)

decision := {
	"violations": violations,
	"schedule": object.get(lib.definition, ["continuous", "schedule"], "@every 5m"),
}
