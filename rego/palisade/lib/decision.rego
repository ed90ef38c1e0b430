# Package decision turns rule findings into violations: it selects the
# definition that applies to the subject's namespace and its rules, applies
# exceptions (expired ones no longer apply) and the implicit system
# exception, applies the global audit mode, and writes the messages.
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

# rules is the tab that every rule reads its configuration from: the
# deployment rules for an admission request (input.request), the
# continuous rules for a scan (input.object). A rule that the tab does not
# name finds nothing.
rules := object.get(definition, "deployment", {}) if {
	input.request
} else := object.get(definition, ["continuous", "rules"], {})

exceptions := object.get(definition, "exceptions", [])

# audit mode downgrades block, isolate and terminate to log. (Without a
# mode there is no action, and so no violation.)
effective_action(a) := {true: "log", false: a}[_audit]

_audit := policy.mode == "audit"

# violations groups findings {rule, field, value, container} that no
# exception covers into one violation per (rule, field, value), listing the
# containers. (Without a mode there is no action, and so no violation.)
violations(findings) := vs if {
	vs := _grouped(_kept(findings), _audit)
} else := set()

# When no two findings share a (rule, field, value), as in a pod with one
# container, each finding is a violation of its own and the grouping scan
# over every pair of findings is skipped.
_grouped(kept, audit) := {_violation(f.rule, f.field, f.value, action, containers) |
	some f in kept
	action := {true: "log", false: _action(f)}[audit] # effective_action, inline
	containers := [c | c := f.container; c != ""]
} if {
	count({[f.rule, f.field, f.value] | some f in kept}) == count(kept)
} else := {v |
	some [rule, field, value, rule_action] in {[f.rule, f.field, f.value, _action(f)] | some f in kept}
	action := {true: "log", false: rule_action}[audit] # effective_action, inline
	containers := sort({f.container |
		some f in kept
		f.rule == rule
		f.field == field
		f.value == value
		f.container != ""
	})
	v := _violation(rule, field, value, action, containers)
}

_violation(rule, field, value, action, containers) := {
	"rule": rule,
	"action": action,
	"field": field,
	"value": value,
	"containers": containers,
	"message": concat("", [field, " violates rule ", rule, " \"", value, "\"", _in_containers(containers), " (", action, ")"]),
}

# A finding's action: its rule's in the tab, or its own for the findings of
# verification rules (rules/verification), whose actions depend on the
# outcome (registryUnavailable, unscanned).
_action(f) := f.action if {
	f.verification
} else := rules[f.rule].action

# The findings that no exception covers: all of them, without looking at
# the exceptions, when there are none or no exception applies to the
# subject.
_kept(findings) := findings if {
	count(findings) == 0
} else := findings if {
	_excepts_nothing
} else := {f | some f in findings; not excepted(f)}

_excepts_nothing if {
	subject.namespace != policy.systemNamespace
	count(_system_containers) == 0
	count(_subject_exceptions) == 0
}

_in_containers(containers) := "" if {
	count(containers) == 0
} else := concat("", [` in container(s) "`, concat(`", "`, containers), `"`])

# The system's own namespace and images are never subject to rules.
excepted(_) if subject.namespace == policy.systemNamespace

# The system images are an exception for what runs, not for who gets in:
# naming a Palisade image in kubectl debug is still kubectl access.
excepted(f) if {
	f.rule != "kubectlAccess"
	_covers_containers(_system_containers, f)
}

# The tab's exceptions do not cover verification rules: they have their
# own (covers).
excepted(f) if {
	not f.verification
	some i in _subject_exceptions
	_rule_listed(exceptions[i], f.rule)
	_images_listed(i, f)
}

# What does not depend on the finding is worked out once per decision:
# the containers running system images, the exceptions whose live,
# namespace, label and service account conditions hold for this subject,
# and the containers each one's image conditions match.
_system_containers := {name |
	system := policy.systemImages
	some name, img in subject.container_images
	images.matches_any(system, img.reference)
}

# The conditions that fail most often come first. Pod labels match when
# the pod has every label of the exception, with its value (the values
# are strings, so object.subset compares them as ==).
_subject_exceptions contains i if {
	some i, e in exceptions
	_subject_listed(e)
}

_subject_listed(e) if {
	object.subset(subject.labels, object.get(e, "podLabels", {}))
	subject.in_namespaces(object.get(e, "namespaces", []))
	_service_account_listed(e)
	_live(e)
}

# covers is true when an exception (of a verification rule) covers an
# image of the subject, by its normalised reference: the exception is
# live, lists the subject (namespace, pod labels, service account), and
# its image conditions, if any, match the image.
covers(e, reference) if {
	_subject_listed(e)
	_image_listed(e, reference)
}

_image_listed(e, _) if count(object.get(e, "images", [])) == 0

_image_listed(e, reference) if images.matches_any(e.images, reference)

_exception_containers[i] := {name |
	some name, img in subject.container_images
	images.matches_any(exceptions[i].images, img.reference)
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

_service_account_listed(e) if count(object.get(e, "serviceAccounts", [])) == 0

_service_account_listed(e) if subject.service_account in e.serviceAccounts

# Image conditions say what runs, so they never cover kubectl access: the
# user naming the image in kubectl debug would choose their own exception.
_images_listed(i, _) if count(object.get(exceptions[i], "images", [])) == 0

_images_listed(i, f) if {
	f.rule != "kubectlAccess"
	_covers_containers(_exception_containers[i], f)
}
