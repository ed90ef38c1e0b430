# Package container holds the container-level rules: privileged,
# capabilities, privilege escalation, run as root, read-only root file
# system, resource requests and limits. Pod-level security context settings
# apply where the container leaves them unset.
#
# findings has one body per rule (or per case of a rule), each guarded by
# the rule's configuration in lib/decision.rules: one rule to evaluate, not
# one per catalog entry. Settings are read by path
# (object.get(c.spec, ["securityContext", key], default)), which reads a
# securityContext left empty in YAML (securityContext:, so null) as unset,
# like the API server.
package palisade.rules.container

import data.palisade.lib.decision
import data.palisade.lib.subject

# privileged: privileged: true.
findings contains f if {
	decision.rules.privileged
	some c in subject.containers
	c.spec.securityContext.privileged == true
	f := {"rule": "privileged", "field": "containerSecurityContext", "value": "true", "container": c.name}
}

# capabilities: every effective capability outside the preset or denied.
# A container that drops ALL has its added capabilities only: the second
# body finds those, the first every capability of the other containers.
findings contains f if {
	decision.rules.capabilities
	some c in subject.containers
	not "ALL" in object.get(c.spec, ["securityContext", "capabilities", "drop"], [])
	some cap in _violating(effective_capabilities(c))
	f := {"rule": "capabilities", "field": "containerSecurityContext", "value": cap, "container": c.name}
}

findings contains f if {
	decision.rules.capabilities
	some c in subject.containers
	added := {normalize(a) | some a in object.get(c.spec, ["securityContext", "capabilities", "add"], [])}
	count(added) > 0 # most containers add none: the preset and deny list stay unread
	some cap in _violating(added)
	f := {"rule": "capabilities", "field": "containerSecurityContext", "value": cap, "container": c.name}
}

# allowPrivilegeEscalation: anything but allowPrivilegeEscalation: false.
findings contains f if {
	decision.rules.allowPrivilegeEscalation
	some c in subject.containers
	value := object.get(c.spec, ["securityContext", "allowPrivilegeEscalation"], "unset")
	value != false
	f := {"rule": "allowPrivilegeEscalation", "field": "containerSecurityContext", "value": sprintf("allowPrivilegeEscalation=%v", [value]), "container": c.name}
}

# runAsRoot: the container's runAsUser and runAsNonRoot, else the pod's.
# An unset runAsUser reads as false and an unset runAsNonRoot as null:
# each case below treats them alike.
findings contains f if {
	decision.rules.runAsRoot
	pod_user := object.get(subject.pod_spec, ["securityContext", "runAsUser"], false)
	some c in subject.containers
	object.get(c.spec, ["securityContext", "runAsUser"], pod_user) == 0
	f := {"rule": "runAsRoot", "field": "containerSecurityContext", "value": "runAsUser=0", "container": c.name}
}

findings contains f if {
	decision.rules.runAsRoot
	pod_user := object.get(subject.pod_spec, ["securityContext", "runAsUser"], false)
	pod_non_root := object.get(subject.pod_spec, ["securityContext", "runAsNonRoot"], null)
	some c in subject.containers
	object.get(c.spec, ["securityContext", "runAsUser"], pod_user) == false
	non_root := object.get(c.spec, ["securityContext", "runAsNonRoot"], pod_non_root)
	value := _non_root_reasons[non_root]
	f := {"rule": "runAsRoot", "field": "containerSecurityContext", "value": value, "container": c.name}
}

# Without runAsUser, a container runs as root unless runAsNonRoot is true.
_non_root_reasons := {null: "runAsNonRoot unset", false: "runAsNonRoot=false"}

# readOnlyRootFilesystem: anything but readOnlyRootFilesystem: true.
findings contains f if {
	decision.rules.readOnlyRootFilesystem
	some c in subject.containers
	value := object.get(c.spec, ["securityContext", "readOnlyRootFilesystem"], "unset")
	value != true
	f := {"rule": "readOnlyRootFilesystem", "field": "containerSecurityContext", "value": sprintf("readOnlyRootFilesystem=%v", [value]), "container": c.name}
}

# resources: each required request or limit that a container leaves unset.
findings contains f if {
	some required in decision.rules.resources.require
	[path, missing] := _resources[required]
	some c in subject.containers
	c.kind != "ephemeralContainer" # ephemeral containers cannot set resources
	object.get(c.spec, path, null) == null
	f := {"rule": "resources", "field": "resources", "value": missing, "container": c.name}
}

# The path of each resource setting in a container, and the finding's value
# when it is missing.
_resources := {
	"cpuRequests": [["resources", "requests", "cpu"], "requests.cpu missing"],
	"cpuLimits": [["resources", "limits", "cpu"], "limits.cpu missing"],
	"memoryRequests": [["resources", "requests", "memory"], "requests.memory missing"],
	"memoryLimits": [["resources", "limits", "memory"], "limits.memory missing"],
}

# The capabilities a container runtime (containerd, CRI-O, Docker) grants
# by default.
runtime_defaults := {
	"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
	"NET_BIND_SERVICE", "NET_RAW", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
}

presets := {
	"restrict-nondefaults": runtime_defaults,
	"baseline": runtime_defaults - {"NET_RAW"},
	"restricted": {"NET_BIND_SERVICE"},
	"restrict-all": set(),
}

normalize(cap) := trim_prefix(upper(trim_space(cap)), "CAP_")

# effective_capabilities: the runtime defaults minus drop (ALL drops all),
# plus add. "ALL" in the result means add: [ALL]. A drop counts only as
# every runtime reads it, case aside: containerd turns drop CAP_X into
# CAP_CAP_X and does not trim, so CAP_NET_RAW, CAP_ALL or " ALL" drop
# nothing there. An add counts in any spelling a runtime may accept.
effective_capabilities(c) := _kept(drops) | adds if {
	drops := {upper(d) | some d in object.get(c.spec, ["securityContext", "capabilities", "drop"], [])}
	adds := {normalize(a) | some a in object.get(c.spec, ["securityContext", "capabilities", "add"], [])}
}

_kept(drops) := set() if {
	"ALL" in drops
} else := runtime_defaults - drops

# _violating is the subset of caps that the rule's configuration refuses:
# those outside its preset, if it names one, and those it denies ("ALL"
# in deny denies every capability, and add ALL is denied by any deny
# list). Set operations over the container's capabilities, with the deny
# list normalised once per decision: a container that keeps the runtime
# defaults has 14 capabilities, and deciding them one call at a time
# (each normalising the deny list again) was 14% of such a pod's review.
_violating(caps) := caps if {
	"ALL" in _deny
} else := (_outside_preset(caps) | (caps & _deny)) | (caps & {"ALL"}) if {
	count(_deny) > 0
} else := _outside_preset(caps)

# A preset name that the catalog lacks allows nothing.
_outside_preset(caps) := caps - presets[p] if {
	p := decision.rules.capabilities.preset
} else := caps if {
	decision.rules.capabilities.preset
} else := set()

_deny := {normalize(d) | some d in decision.rules.capabilities.deny}
