# Package runtime is the node sensor's entry point:
# data.palisade.runtime.decision for one file or process event inside a
# container. It is the meaning of RuntimeRulesets (Elastic Defend for
# Containers selectors and responses plus a mode); the sensor's native
# matcher (sensor/match) must decide exactly as this package does, and a
# differential test and a fuzz test hold it to that.
#
# Input:
#
#	{"event": {
#	   "kind": "file" | "process",       the section whose rules apply
#	   "operation": "exec" | "fork" | "createExecutable" | "modifyExecutable"
#	              | "createFile" | "modifyFile" | "deleteFile",
#	   "path": "/etc/passwd",            file target; the executable for process events
#	   "processExecutable": "/bin/sh",   the acting process (after exec, for exec)
#	   "processName": "sh",
#	   "interactive": false,             the session leader has a controlling TTY
#	   "onVolume": false,                path is on a volume mount
#	   "onVolumeFile": false},           path is a file mount (ConfigMap/Secret subPath)
#	 "facts": {"container": {            absent for host processes
#	   "imageFullName": "ghcr.io/acme/app",  registry/repository
#	   "imageName": "acme/app", "imageTag": "1.0",
#	   "namespace": "shop", "podName": "web-7f9c", "podLabels": {"app": "web"},
#	   "clusterId": "…", "clusterName": "prod",
#	   "workload": "Deployment/web",      the pod's top controller, <Kind>/<name>
#	   "containerName": "app"}}}          the container's name in the pod spec
#
# Decision:
#
#	{"actions": ["alert", "block"],  sorted union of the matches' actions
#	 "matches": {{"ruleset": "baseline_runtime", "response": 0,  index in the section
#	              "mode": "enforce", "actions": ["alert", "block"],
#	              "selectors": ["new_executables"]}},  the response's match selectors that hit
#	 "observe": false}                 a learning ruleset matched: feed the profile
#
# kubernetesWorkload (exact or trailing `*`) and containerName (exact) are
# Palisade's extensions of the Defend for Containers conditions; learned
# rules (the LearnedRules kind, compiled by the policy loader into
# ordinary selectors) select their workload's container with them.
#
# Meaning: the rulesets are those of the definition that applies to the
# container's namespace (lib/decision.definition: a namespaced definition
# takes precedence). A selector holds when every condition it gives holds
# and each condition's list matches when any value does; a response
# matches when any selector of `match` holds and none of `exclude`. Modes:
# audit turns block into alert; learning keeps only log and sets observe;
# the Policy's global audit mode makes enforce rulesets audit. Host
# processes and the system namespace are never matched: the sensor must
# not block what runs outside the workloads it guards, nor itself.
package palisade.runtime

import data.palisade.lib.decision as lib

policy := data.palisade.policy

event := object.get(input, "event", {})

container := input.facts.container

# The namespace as lib/subject reads it for pods: empty means default.
namespace := ns if {
	ns := object.get(container, "namespace", "")
	ns != ""
} else := "default"

# lib/decision.definition reads the namespace of an admission request:
# give it the container's, so that runtime precedence is the same code.
definition := d if {
	ns := namespace
	d := lib.definition with input as {"request": {"namespace": ns}}
}

# The rulesets that apply, by name. Only file and process events are
# matched (the section's key is the event's kind).
rulesets contains name if {
	is_object(container)
	namespace != object.get(policy, "systemNamespace", "")
	event.kind in {"file", "process"}
	some name in object.get(definition, ["runtime", "rulesets"], [])
	is_object(policy.rulesets[name])
}

# _hit holds [ruleset, selector name] for every selector of the event's
# section that holds: each selector is evaluated once per event.
_hit contains [name, sel.name] if {
	some name in rulesets
	some sel in policy.rulesets[name][event.kind].selectors
	_selects(sel)
}

matches contains m if {
	some name in rulesets
	rs := policy.rulesets[name]
	some i, r in rs[event.kind].responses
	hits := {s | some s in r.match; [name, s] in _hit}
	count(hits) > 0
	not _excluded(name, r)
	mode := _mode(rs)
	m := {
		"ruleset": name,
		"response": i,
		"mode": mode,
		"actions": sort({a | some x in r.actions; a := _effect[mode][x]}),
		"selectors": sort(hits),
	}
}

decision := {
	"actions": sort({a | some m in matches; some a in m.actions}),
	"matches": matches,
	"observe": count({m | some m in matches; m.mode == "learning"}) > 0,
}

_excluded(name, r) if {
	some s in object.get(r, "exclude", [])
	[name, s] in _hit
}

# What each action becomes in each mode; an action a mode drops is absent.
_effect := {
	"enforce": {"log": "log", "alert": "alert", "block": "block"},
	"audit": {"log": "log", "alert": "alert", "block": "alert"},
	"learning": {"log": "log"},
}

# A ruleset's mode: enforce when unset, and audit when the Policy's global
# mode is audit (a global audit never blocks, as for admission).
_mode(rs) := "audit" if {
	_base_mode(rs) == "enforce"
	policy.mode == "audit"
} else := _base_mode(rs)

_base_mode(rs) := m if {
	m := object.get(rs, "mode", "")
	m != ""
} else := "enforce"

# The conditions that fail most often come first.
_selects(sel) if {
	_any_equal(sel, "operation", _event("operation"))
	_any_path(sel, "targetFilePath", _event("path"))
	_any_equal(sel, "processName", _event("processName"))
	_any_path(sel, "processExecutable", _event("processExecutable"))
	_any_equal(sel, "kubernetesNamespace", namespace)
	_any_equal(sel, "containerImageFullName", _fact("imageFullName"))
	_any_equal(sel, "containerImageName", _fact("imageName"))
	_any_equal(sel, "containerImageTag", _fact("imageTag"))
	_any_equal(sel, "kubernetesClusterId", _fact("clusterId"))
	_any_equal(sel, "kubernetesClusterName", _fact("clusterName"))
	_any_equal(sel, "containerName", _fact("containerName"))
	_any_wildcard(sel, "kubernetesPodName", _fact("podName"))
	_any_wildcard(sel, "kubernetesWorkload", _fact("workload"))
	_any_label(sel)
	_interactive(sel)
	not _ignored(sel)
}

_event(key) := object.get(event, key, "")

_fact(key) := object.get(container, key, "")

# A condition left out (or empty) matches everything.
_any_equal(sel, key, _) if count(object.get(sel, key, [])) == 0

_any_equal(sel, key, value) if value in sel[key]

# Paths: `*` within one segment, `**` across segments (glob.match with
# the / delimiter; policy validation compiled the same patterns).
_any_path(sel, key, _) if count(object.get(sel, key, [])) == 0

_any_path(sel, key, path) if {
	some p in sel[key]
	glob.match(p, ["/"], path)
}

# Pod names and workloads: exact, or a prefix ending with `*`.
_any_wildcard(sel, key, _) if count(object.get(sel, key, [])) == 0

_any_wildcard(sel, key, value) if {
	some p in sel[key]
	trailing_wildcard(p, value)
}

# Labels are key:value (split at the first colon); the value may end
# with `*`. A label without a colon matches nothing.
_any_label(sel) if count(object.get(sel, "kubernetesPodLabel", [])) == 0

_any_label(sel) if {
	labels := object.get(container, "podLabels", {})
	some l in sel.kubernetesPodLabel
	i := indexof(l, ":")
	i >= 0
	trailing_wildcard(substring(l, i + 1, -1), labels[substring(l, 0, i)])
}

# trailing_wildcard matches a value against a pattern that is exact or
# ends with one `*` (a prefix); a `*` elsewhere is a literal character.
trailing_wildcard(pattern, value) if {
	endswith(pattern, "*")
	startswith(value, trim_suffix(pattern, "*"))
}

trailing_wildcard(pattern, value) if {
	not endswith(pattern, "*")
	pattern == value
}

_interactive(sel) if object.get(sel, "sessionLeaderInteractive", null) == null

_interactive(sel) if sel.sessionLeaderInteractive == object.get(event, "interactive", false)

# ignoreVolumeMounts skips events on any volume; ignoreVolumeFiles those
# on file mounts only.
_ignored(sel) if {
	sel.ignoreVolumeMounts
	event.onVolume
}

_ignored(sel) if {
	sel.ignoreVolumeFiles
	event.onVolumeFile
}
