# Package kubectl holds the kubectl access rule: exec, attach, port-forward
# (CONNECT on pods/exec, pods/attach, pods/portforward) and ephemeral
# containers (UPDATE of pods/ephemeralcontainers), with exceptions for
# users and groups.
package palisade.rules.kubectl

import data.palisade.lib.decision
import data.palisade.lib.subject

# findings: the operation is one the rule lists, by a user that neither
# the users nor the groups of the rule exempt.
findings contains f if {
	cfg := decision.rules.kubectlAccess
	operation in cfg.operations
	not _exempt(cfg)
	some c in _containers_or_pod
	f := {"rule": "kubectlAccess", "field": "kubectl", "value": operation, "container": c}
}

_connect_operations := {"exec": "exec", "attach": "attach", "portforward": "portForward"}

operation := _connect_operations[subject.sub_resource] if subject.operation == "CONNECT"

operation := "ephemeralContainers" if {
	subject.operation == "UPDATE"
	subject.sub_resource == "ephemeralcontainers"
}

# The container named in exec/attach options, or the ephemeral containers
# the update adds.
containers contains c if {
	operation in {"exec", "attach"}
	c := input.request.object.container
	c != ""
}

containers contains c.name if {
	operation == "ephemeralContainers"
	old := {e.name | some e in object.get(input.request, ["oldObject", "spec", "ephemeralContainers"], [])}
	some c in object.get(subject.pod_spec, "ephemeralContainers", [])
	not c.name in old
}

_exempt(cfg) if subject.user in object.get(cfg, "users", [])

_exempt(cfg) if {
	some g in subject.groups
	g in object.get(cfg, "groups", [])
}

_containers_or_pod := containers if count(containers) > 0

_containers_or_pod := {""} if count(containers) == 0
