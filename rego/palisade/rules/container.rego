# Package container holds the container-level rules: privileged,
# capabilities, privilege escalation, run as root, read-only root file
# system, resource requests and limits. Pod-level security context settings
# apply where the container leaves them unset.
package palisade.rules.container

import data.palisade.lib.subject

findings(rules) := ((((privileged(rules) | capabilities(rules)) | allow_privilege_escalation(rules)) | run_as_root(rules)) | read_only_root_filesystem(rules)) | resources(rules)

_sc(c) := _object(object.get(c.spec, "securityContext", {}))

_pod_sc := _object(object.get(subject.pod_spec, "securityContext", {}))

# A field left empty in YAML (securityContext:) is null; like the API
# server, read it as unset.
_object(x) := x if is_object(x)

else := {}

privileged(rules) := {f |
	rules.privileged
	some c in subject.containers
	_sc(c).privileged == true
	f := {"rule": "privileged", "field": "containerSecurityContext", "value": "true", "container": c.name}
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
	caps := _object(object.get(_sc(c), "capabilities", {}))
	drops := {upper(d) | some d in object.get(caps, "drop", [])}
	adds := {normalize(a) | some a in object.get(caps, "add", [])}
}

_kept(drops) := set() if "ALL" in drops

_kept(drops) := runtime_defaults - drops if not "ALL" in drops

_denied(cap, deny) if cap in deny

_denied(_, deny) if "ALL" in deny

_denied("ALL", deny) if count(deny) > 0

capabilities(rules) := {f |
	cfg := rules.capabilities
	some c in subject.containers
	some cap in effective_capabilities(c)
	_capability_violates(cfg, cap)
	f := {"rule": "capabilities", "field": "containerSecurityContext", "value": cap, "container": c.name}
}

_capability_violates(cfg, cap) if not cap in presets[cfg.preset]

_capability_violates(cfg, cap) if _denied(cap, {normalize(d) | some d in cfg.deny})

allow_privilege_escalation(rules) := {f |
	rules.allowPrivilegeEscalation
	some c in subject.containers
	value := object.get(_sc(c), "allowPrivilegeEscalation", "unset")
	value != false
	f := {"rule": "allowPrivilegeEscalation", "field": "containerSecurityContext", "value": sprintf("allowPrivilegeEscalation=%v", [value]), "container": c.name}
}

# The container's setting, else the pod's.
_effective(c, key) := v if {
	v := _sc(c)[key]
} else := v if {
	v := _pod_sc[key]
}

run_as_root(rules) := {f |
	rules.runAsRoot
	some c in subject.containers
	value := _root_reason(c)
	f := {"rule": "runAsRoot", "field": "containerSecurityContext", "value": value, "container": c.name}
}

_root_reason(c) := "runAsUser=0" if _effective(c, "runAsUser") == 0

_root_reason(c) := "runAsNonRoot unset" if {
	not _effective(c, "runAsUser")
	not _has_effective(c, "runAsNonRoot")
}

_root_reason(c) := "runAsNonRoot=false" if {
	not _effective(c, "runAsUser")
	_effective(c, "runAsNonRoot") == false
}

_has_effective(c, key) if _effective(c, key) != null

read_only_root_filesystem(rules) := {f |
	rules.readOnlyRootFilesystem
	some c in subject.containers
	value := object.get(_sc(c), "readOnlyRootFilesystem", "unset")
	value != true
	f := {"rule": "readOnlyRootFilesystem", "field": "containerSecurityContext", "value": sprintf("readOnlyRootFilesystem=%v", [value]), "container": c.name}
}

_resource_paths := {
	"cpuRequests": ["requests", "cpu"],
	"cpuLimits": ["limits", "cpu"],
	"memoryRequests": ["requests", "memory"],
	"memoryLimits": ["limits", "memory"],
}

resources(rules) := {f |
	some required in rules.resources.require
	path := _resource_paths[required]
	some c in subject.containers
	c.kind != "ephemeralContainer" # ephemeral containers cannot set resources
	object.get(_object(object.get(c.spec, "resources", {})), path, null) == null
	f := {"rule": "resources", "field": "resources", "value": concat("", [concat(".", path), " missing"]), "container": c.name}
}
