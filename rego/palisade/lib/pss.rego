# METADATA
# title: Kubernetes Pod Security Standards
# description: |
#   A pure implementation of the Kubernetes Pod Security Standards (Baseline and
#   Restricted) as enforced by the upstream PodSecurity admission controller at
#   policy version "latest" of Kubernetes v1.35/v1.36
#   (k8s.io/pod-security-admission/policy).
#
#   Entry point: violations(pod_spec, pod_metadata, level).
#
#   Semantics follow the upstream check_*.go files, including:
#   - every container list (containers, initContainers, ephemeralContainers);
#   - "restricted" is cumulative: every baseline control is also evaluated;
#   - Windows pods (spec.os.name == "windows") are exempt from the Linux-only
#     restricted controls allowPrivilegeEscalation, seccompRestricted and
#     capabilitiesRestricted (policy v1.25+);
#   - user-namespaced pods (spec.hostUsers == false) are exempt from the
#     restricted controls runAsNonRoot and runAsUser, and from the baseline
#     (not the restricted) procMount control (policy v1.35+);
#   - the v1.34 baseline control forbidding probe / lifecycle hook hosts.
#
#   The module reads no input, no data and calls no non-deterministic builtin.
#   Missing or null fields are treated as unset; malformed values fail closed
#   (they are reported) rather than raising errors.
package palisade.lib.pss

# METADATA
# title: violations
# description: |
#   Returns the set of Pod Security Standards violations of a pod at the given
#   level ("baseline" or "restricted"; "privileged" yields the empty set).
#
#   pod_spec is a core/v1 PodSpec, pod_metadata its ObjectMeta (only
#   metadata.annotations is read). Each element is
#   {"control": string, "container": string, "value": string}; "container" is
#   "" for pod-level findings. There is at most one element per
#   (control, container) pair: several offending values of one control on one
#   container (or on the pod) are joined into "value" with "; ", sorted.
#
#   An unknown level fails closed with a single element of control "level".
violations(pod_spec, pod_metadata, level) := _group(_findings(_object(pod_spec), _object(pod_metadata), level))

# Findings are [control, container, value] triples; _group merges the values
# of one (control, container) pair into a single violation object.
_group(findings) := {{"control": f[0], "container": f[1], "value": concat("; ", [g[2] |
	some g in findings
	g[0] == f[0]
	g[1] == f[1]
])} |
	some f in findings
}

_findings(spec, meta, "baseline") := _baseline(spec, meta, cs, array.concat([["", spec]], cs), false) if {
	cs := _containers(spec)
}

_findings(spec, meta, "restricted") := _baseline(spec, meta, cs, subjects, true) | _restricted(spec, cs, subjects) if {
	cs := _containers(spec)
	subjects := array.concat([["", spec]], cs)
}

_findings(_, _, "privileged") := set()

_findings(_, _, level) := {["level", "", sprintf("unknown level %v", [level])]} if {
	not level in {"baseline", "restricted", "privileged"}
}

# _containers returns [name, container] pairs for all regular, init and
# ephemeral containers. "subjects" (built by the callers) prepends the pod
# itself as ["", pod_spec]: both a PodSpec and a Container carry the fields
# shared by pod and container security contexts under "securityContext".
_containers(spec) := [[object.get(c, "name", ""), c] |
	some key in ["initContainers", "containers", "ephemeralContainers"]
	some c in _array(object.get(spec, key, []))
	is_object(c)
]

_baseline(spec, meta, cs, subjects, restricted) := ((((((((((_host_process(subjects) | _host_namespaces(spec)) | _privileged(cs)) | _capabilities(cs)) | _host_path_volumes(spec)) | _host_ports(cs)) | _app_armor(meta, subjects)) | _se_linux(subjects)) | _proc_mount(spec, cs, restricted)) | _seccomp(subjects)) | _sysctls(spec)) | _host_probes(cs)

_restricted(spec, cs, subjects) := ((((_volume_types(spec) | _allow_privilege_escalation(spec, cs)) | _run_as_non_root(spec, cs)) | _run_as_user(spec, subjects)) | _seccomp_restricted(spec, cs)) | _capabilities_restricted(spec, cs)

#
# Baseline controls.
#

# HostProcess: securityContext.windowsOptions.hostProcess must be unset or false.
_host_process(subjects) := {["hostProcess", s[0], sprintf("hostProcess=%v", [v])] |
	some s in subjects
	v := object.get(s[1], ["securityContext", "windowsOptions", "hostProcess"], null)
	not v in {false, null}
}

# Host namespaces: hostNetwork, hostPID and hostIPC must be unset or false.
_host_namespaces(spec) := {["hostNamespaces", "", sprintf("%s=%v", [key, v])] |
	some key in ["hostNetwork", "hostPID", "hostIPC"]
	v := object.get(spec, key, null)
	not v in {false, null}
}

# Privileged containers: securityContext.privileged must be unset or false.
_privileged(cs) := {["privileged", n, sprintf("privileged=%v", [v])] |
	some [n, c] in cs
	v := object.get(c, ["securityContext", "privileged"], null)
	not v in {false, null}
}

# Capabilities: capabilities.add may only hold the baseline allow-list
# (compared after upper-casing and stripping a "CAP_" prefix).
_capabilities(cs) := {["capabilities", n, sprintf("capabilities.add=%s", [concat(",", bad)])] |
	some [n, c] in cs
	add := object.get(c, ["securityContext", "capabilities", "add"], [])
	add != []
	bad := {sprintf("%v", [cap]) |
		some cap in _array(add)
		not _capability_name(cap) in _baseline_capabilities
	}
	count(bad) > 0
}

_baseline_capabilities := {
	"AUDIT_WRITE",
	"CHOWN",
	"DAC_OVERRIDE",
	"FOWNER",
	"FSETID",
	"KILL",
	"MKNOD",
	"NET_BIND_SERVICE",
	"SETFCAP",
	"SETGID",
	"SETPCAP",
	"SETUID",
	"SYS_CHROOT",
}

# _capability_name normalises a capability name: upper case, no "CAP_" prefix.
# A non-string is returned as is, so that it matches no allowed name.
_capability_name(cap) := trim_prefix(upper(cap), "CAP_") if is_string(cap)

else := cap

# HostPath volumes: volumes[*].hostPath must be unset.
_host_path_volumes(spec) := {["hostPathVolumes", "", sprintf("volume %v hostPath", [object.get(v, "name", "")])] |
	some v in _array(object.get(spec, "volumes", []))
	is_object(v)
	object.get(v, "hostPath", null) != null
}

# Host ports: ports[*].hostPort must be unset or 0.
_host_ports(cs) := {["hostPorts", n, sprintf("hostPort=%v", [hp])] |
	some [n, c] in cs
	some port in _array(object.get(c, "ports", []))
	is_object(port)
	hp := object.get(port, "hostPort", null)
	not hp in {0, null}
}

# AppArmor: securityContext.appArmorProfile.type (pod and containers) must be
# RuntimeDefault or Localhost when appArmorProfile is set; the deprecated
# annotations container.apparmor.security.beta.kubernetes.io/<container> must
# be empty, runtime/default or localhost/<profile>.
_app_armor(meta, subjects) := {["appArmor", s[0], _describe("appArmorProfile.type", t)] |
	some s in subjects
	object.get(s[1], ["securityContext", "appArmorProfile"], null) != null
	t := object.get(s[1], ["securityContext", "appArmorProfile", "type"], null)
	not t in {"RuntimeDefault", "Localhost"}
} | {["appArmor", trim_prefix(key, _app_armor_prefix), sprintf("annotation=%v", [value])] |
	some key, value in _object(object.get(meta, "annotations", {}))
	is_string(key)
	startswith(key, _app_armor_prefix)
	not _app_armor_annotation_allowed(value)
}

_app_armor_prefix := "container.apparmor.security.beta.kubernetes.io/"

_app_armor_annotation_allowed(value) if value in {"", "runtime/default"}

_app_armor_annotation_allowed(value) if {
	is_string(value)
	startswith(value, "localhost/")
}

# SELinux: seLinuxOptions.type must be empty or one of the container types;
# seLinuxOptions.user and seLinuxOptions.role must be empty (pod and containers).
_se_linux(subjects) := {["seLinux", s[0], sprintf("seLinuxOptions.type=%v", [t])] |
	some s in subjects
	t := object.get(s[1], ["securityContext", "seLinuxOptions", "type"], null)
	not t in _se_linux_types
} | {["seLinux", s[0], sprintf("seLinuxOptions.%s=%v", [key, v])] |
	some s in subjects
	some key in ["user", "role"]
	v := object.get(s[1], ["securityContext", "seLinuxOptions", key], null)
	not v in {"", null}
}

_se_linux_types := {null, "", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}

# /proc mount type: procMount must be unset or Default. Since policy v1.35 the
# baseline check (only) allows any value for user-namespaced pods.
_proc_mount(spec, cs, restricted) := {["procMount", n, sprintf("procMount=%v", [v])] |
	_proc_mount_enforced(spec, restricted)
	some [n, c] in cs
	v := object.get(c, ["securityContext", "procMount"], null)
	not v in {"Default", null}
}

_proc_mount_enforced(_, true)

_proc_mount_enforced(spec, false) if not _user_namespaced(spec)

# Seccomp (baseline): when seccompProfile is set, its type must be
# RuntimeDefault or Localhost (pod and containers).
_seccomp(subjects) := {["seccomp", s[0], _describe("seccompProfile.type", t)] |
	some s in subjects
	object.get(s[1], ["securityContext", "seccompProfile"], null) != null
	t := object.get(s[1], ["securityContext", "seccompProfile", "type"], null)
	not t in _seccomp_types
}

_seccomp_types := {"RuntimeDefault", "Localhost"}

# Sysctls: only the safe sysctls may be set.
_sysctls(spec) := {["sysctls", "", sprintf("sysctl %v", [name])] |
	some sysctl in _array(object.get(spec, ["securityContext", "sysctls"], []))
	is_object(sysctl)
	name := object.get(sysctl, "name", null)
	not name in _safe_sysctls
}

_safe_sysctls := {
	"kernel.shm_rmid_forced",
	"net.ipv4.ip_local_port_range",
	"net.ipv4.ip_unprivileged_port_start",
	"net.ipv4.tcp_syncookies",
	"net.ipv4.ping_group_range",
	"net.ipv4.ip_local_reserved_ports",
	"net.ipv4.tcp_keepalive_time",
	"net.ipv4.tcp_fin_timeout",
	"net.ipv4.tcp_keepalive_intvl",
	"net.ipv4.tcp_keepalive_probes",
	"net.ipv4.tcp_rmem",
	"net.ipv4.tcp_wmem",
}

# Host probes / lifecycle hooks (policy v1.34+): the host field of probe and
# lifecycle handlers must be unset or empty.
_host_probes(cs) := {["hostProbesAndLifecycleHooks", n, sprintf("%s=%v", [concat(".", path), host])] |
	some [n, c] in cs
	some path in _host_paths
	host := object.get(c, path, null)
	not host in {"", null}
}

_host_paths := [
	["livenessProbe", "httpGet", "host"],
	["livenessProbe", "tcpSocket", "host"],
	["readinessProbe", "httpGet", "host"],
	["readinessProbe", "tcpSocket", "host"],
	["startupProbe", "httpGet", "host"],
	["startupProbe", "tcpSocket", "host"],
	["lifecycle", "postStart", "httpGet", "host"],
	["lifecycle", "postStart", "tcpSocket", "host"],
	["lifecycle", "preStop", "httpGet", "host"],
	["lifecycle", "preStop", "tcpSocket", "host"],
]

#
# Restricted controls.
#

# Volume types: every volume must be of an allowed type. A volume with no
# source at all is defaulted to emptyDir by the API server, so it is allowed.
_volume_types(spec) := {["volumeTypes", "", sprintf("volume %v %s", [object.get(v, "name", ""), concat(",", types)])] |
	some v in _array(object.get(spec, "volumes", []))
	is_object(v)
	types := {sprintf("%v", [k]) | some k, x in v; k != "name"; x != null}
	count(types) > 0
	not _allowed_volume(v)
}

_allowed_volume(v) if {
	some key in _restricted_volume_types
	object.get(v, key, null) != null
}

_restricted_volume_types := [
	"configMap",
	"csi",
	"downwardAPI",
	"emptyDir",
	"ephemeral",
	"image",
	"persistentVolumeClaim",
	"projected",
	"secret",
]

# Privilege escalation: allowPrivilegeEscalation must be false (Linux pods).
_allow_privilege_escalation(spec, cs) := {["allowPrivilegeEscalation", n, _describe("allowPrivilegeEscalation", v)] |
	not _windows(spec)
	some [n, c] in cs
	v := object.get(c, ["securityContext", "allowPrivilegeEscalation"], null)
	v != false
}

# Running as non-root: runAsNonRoot must be true on the pod, or on every
# container; an explicit non-true value fails wherever it is set.
_run_as_non_root(spec, cs) := {["runAsNonRoot", "", sprintf("runAsNonRoot=%v", [pod])] |
	not _user_namespaced(spec)
	pod := object.get(spec, ["securityContext", "runAsNonRoot"], null)
	not pod in {true, null}
} | {["runAsNonRoot", n, _describe("runAsNonRoot", v)] |
	not _user_namespaced(spec)
	pod := object.get(spec, ["securityContext", "runAsNonRoot"], null)
	some [n, c] in cs
	v := object.get(c, ["securityContext", "runAsNonRoot"], null)
	_container_run_as_non_root_bad(pod, v)
}

_container_run_as_non_root_bad(_, v) if not v in {true, null}

_container_run_as_non_root_bad(pod, null) if pod != true

# Running as non-root user: runAsUser must not be 0 (pod and containers).
_run_as_user(spec, subjects) := {["runAsUser", s[0], "runAsUser=0"] |
	not _user_namespaced(spec)
	some s in subjects
	object.get(s[1], ["securityContext", "runAsUser"], null) == 0
}

# Seccomp (restricted): seccompProfile.type must be RuntimeDefault or Localhost
# on the pod, or on every container (Linux pods).
_seccomp_restricted(spec, cs) := {["seccompRestricted", "", _describe("seccompProfile.type", t)] |
	not _windows(spec)
	object.get(spec, ["securityContext", "seccompProfile"], null) != null
	t := object.get(spec, ["securityContext", "seccompProfile", "type"], null)
	not t in _seccomp_types
} | {["seccompRestricted", n, value] |
	not _windows(spec)
	pod_ok := object.get(spec, ["securityContext", "seccompProfile", "type"], null) in _seccomp_types
	some [n, c] in cs
	value := _container_seccomp_bad(c, pod_ok)
}

_container_seccomp_bad(c, _) := _describe("seccompProfile.type", t) if {
	object.get(c, ["securityContext", "seccompProfile"], null) != null
	t := object.get(c, ["securityContext", "seccompProfile", "type"], null)
	not t in _seccomp_types
}

_container_seccomp_bad(c, false) := "seccompProfile unset" if {
	object.get(c, ["securityContext", "seccompProfile"], null) == null
}

# Capabilities (restricted): every container must drop "ALL" and may add only
# NET_BIND_SERVICE (Linux pods).
#
# The drop list is compared exactly, as upstream PodSecurity does
# (check_capabilities_restricted.go: `c == "ALL"`): drop: ["all"] or
# ["CAP_ALL"] does NOT satisfy the control. Container runtimes differ on
# whether they honour a lower-case "all" (containerd compares it
# case-insensitively, the CRI API does not define it), so accepting it would
# both disagree with PodSecurity admission and rely on runtime behaviour.
# Added capabilities are normalised like the baseline control.
_capabilities_restricted(spec, cs) := {["capabilitiesRestricted", n, "capabilities.drop missing ALL"] |
	not _windows(spec)
	some [n, c] in cs
	not "ALL" in _array(object.get(c, ["securityContext", "capabilities", "drop"], []))
} | {["capabilitiesRestricted", n, sprintf("capabilities.add=%s", [concat(",", bad)])] |
	not _windows(spec)
	some [n, c] in cs
	add := object.get(c, ["securityContext", "capabilities", "add"], [])
	add != []
	bad := {sprintf("%v", [cap]) |
		some cap in _array(add)
		_capability_name(cap) != "NET_BIND_SERVICE"
	}
	count(bad) > 0
}

#
# Helpers.
#

_windows(spec) if object.get(spec, ["os", "name"], null) == "windows"

_user_namespaced(spec) if object.get(spec, "hostUsers", null) == false

_describe(field, null) := sprintf("%s unset", [field])

_describe(field, v) := sprintf("%s=%v", [field, v]) if v != null

_array(x) := x if is_array(x)

else := []

_object(x) := x if is_object(x)

else := {}
