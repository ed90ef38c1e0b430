# Package decision turns rule findings into violations: it selects the
# definition that applies to the subject's namespace, applies exceptions
# (expired ones no longer apply) and the implicit system exception, applies
# the global audit mode, and writes the messages.
package palisade.lib.decision

import data.palisade.lib.images
import data.palisade.lib.subject

policy := data.palisade.policy

# A namespaced definition that lists the namespace takes precedence over
# the cluster-wide one, as a whole.
# The bundle carries namespaceIndex (namespace → position in namespaced)
# so that the lookup does not scan; data without it is scanned.
definition := policy.namespaced[i] if {
	i := policy.namespaceIndex[subject.namespace]
} else := policy.clusterWide if {
	is_object(policy.namespaceIndex)
} else := d if {
	some d in policy.namespaced
	subject.namespace in d.namespaces
} else := policy.clusterWide

exceptions := object.get(definition, "exceptions", [])

# audit mode downgrades block, isolate and terminate to log.
effective_action(_) := "log" if policy.mode == "audit"

effective_action(a) := a if policy.mode != "audit"

# violations groups findings {rule, field, value, container} that no
# exception covers into one violation per (rule, field, value), listing the
# containers.
violations(findings, rules) := {v |
	kept := {f | some f in findings; not excepted(f)}
	some key in {[f.rule, f.field, f.value] | some f in kept}
	containers := sort({f.container |
		some f in kept
		[f.rule, f.field, f.value] == key
		f.container != ""
	})
	[rule, field, value] := key
	action := effective_action(rules[rule].action)
	v := {
		"rule": rule,
		"action": action,
		"field": field,
		"value": value,
		"containers": containers,
		"message": message({"rule": rule, "field": field, "value": value}, containers, action),
	}
}

message(f, [], action) := sprintf("%s violates rule %s %s (%s)", [f.field, f.rule, _quote(f.value), action])

message(f, containers, action) := sprintf("%s violates rule %s %s in container(s) %s (%s)", [
	f.field, f.rule, _quote(f.value),
	concat(", ", [_quote(c) | some c in containers]),
	action,
]) if count(containers) > 0

_quote(s) := concat("", ["\"", s, "\""])

# The system's own namespace and images are never subject to rules.
excepted(_) if subject.namespace == policy.systemNamespace

# The system images are an exception for what runs, not for who gets in:
# naming a Palisade image in kubectl debug is still kubectl access.
excepted(f) if {
	f.rule != "kubectlAccess"
	_covers_containers(_system_containers, f)
}

excepted(f) if {
	some i in _subject_exceptions
	_rule_listed(exceptions[i], f.rule)
	_images_listed(i, f)
}

# What does not depend on the finding is worked out once per decision:
# the containers running system images, the exceptions whose live,
# namespace, label and service account conditions hold for this subject,
# and the containers each one's image conditions match.
_system_containers := {c.name |
	some c in subject.containers
	images.matches_any(policy.systemImages, subject.image_refs[c.name])
}

_subject_exceptions contains i if {
	some i, e in exceptions
	_live(e)
	_namespace_listed(e)
	_labels_match(e)
	_service_account_listed(e)
}

_exception_containers[i] := {c.name |
	some c in subject.containers
	images.matches_any(exceptions[i].images, subject.image_refs[c.name])
} if some i in _subject_exceptions

# A container finding is covered when its container is; a pod finding
# only when every container is.
_covers_containers(names, f) if {
	f.container != ""
	f.container in names
}

_covers_containers(names, f) if {
	f.container == ""
	count(subject.containers) > 0
	count(names) == count(subject.containers)
}

_live(e) if not e.expiresNs

_live(e) if e.expiresNs > subject.now_ns

_rule_listed(e, _) if count(object.get(e, "rules", [])) == 0

_rule_listed(e, rule) if rule in e.rules

_namespace_listed(e) if count(object.get(e, "namespaces", [])) == 0

_namespace_listed(e) if subject.namespace in e.namespaces

_labels_match(e) if {
	every k, v in object.get(e, "podLabels", {}) {
		subject.labels[k] == v
	}
}

_service_account_listed(e) if count(object.get(e, "serviceAccounts", [])) == 0

_service_account_listed(e) if subject.service_account in e.serviceAccounts

# Image conditions say what runs, so they never cover kubectl access: the
# user naming the image in kubectl debug would choose their own exception.
_images_listed(i, _) if count(object.get(exceptions[i], "images", [])) == 0

_images_listed(i, f) if {
	f.rule != "kubectlAccess"
	_covers_containers(_exception_containers[i], f)
}
