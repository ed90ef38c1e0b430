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
definition := d if {
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
	some f in kept
	containers := sort({g.container |
		some g in kept
		g.rule == f.rule
		g.field == f.field
		g.value == f.value
		g.container != ""
	})
	action := effective_action(rules[f.rule].action)
	v := {
		"rule": f.rule,
		"action": action,
		"field": f.field,
		"value": f.value,
		"containers": containers,
		"message": message(f, containers, action),
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
	_images_match(policy.systemImages, f)
}

excepted(f) if {
	some e in exceptions
	_applies(e, f)
}

_applies(e, f) if {
	_live(e)
	_rule_listed(e, f.rule)
	_namespace_listed(e)
	_labels_match(e)
	_service_account_listed(e)
	_images_listed(e, f)
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

_images_listed(e, _) if count(object.get(e, "images", [])) == 0

_images_listed(e, f) if _images_match(e.images, f)

# A container finding matches on its container's image; a pod finding
# only when every container's image matches.
_images_match(ms, f) if {
	f.container != ""
	images.matches_any(ms, subject.image_refs[f.container])
}

_images_match(ms, f) if {
	f.container == ""
	count(subject.containers) > 0
	every c in subject.containers {
		images.matches_any(ms, subject.image_refs[c.name])
	}
}
