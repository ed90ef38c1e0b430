# METADATA
# title: Kubernetes Pod Security Standards
# description: |
#   A pure implementation of the Kubernetes Pod Security Standards (Baseline and
#   Restricted), following the upstream PodSecurity admission controller
#   (k8s.io/pod-security-admission/policy) at policy version "latest" of
#   Kubernetes v1.35/v1.36.
#
#   Entry point: violations(pod_spec, pod_metadata, level).
#
#   Semantics follow the upstream check_*.go files, including:
#   - every container list: containers, initContainers, ephemeralContainers;
#   - "restricted" is cumulative: every baseline control is evaluated too;
#   - Windows pods (spec.os.name == "windows") are exempt from the Linux-only
#     restricted controls allowPrivilegeEscalation, seccompRestricted and
#     capabilitiesRestricted (policy v1.25+);
#   - user-namespaced pods (spec.hostUsers == false) are exempt from the
#     restricted controls runAsNonRoot and runAsUser, and from the baseline
#     (but not the restricted) procMount control (policy v1.35+);
#   - the baseline control on probe and lifecycle hook hosts (policy v1.34+).
#
#   The module reads neither input nor data and calls no non-deterministic
#   builtin. Missing and null fields count as unset; values of an unexpected
#   type are reported where the standard lists the allowed values.
#
#   Performance notes (this runs in an admission webhook, where the cost is
#   dominated by the number of comprehensions and expressions evaluated):
#   - each control is one comprehension over the pod and its containers,
#     whose first reference fails fast when the field is absent;
#   - the restricted controls sit in one nested comprehension that stops at
#     its first expression at the baseline level;
#   - guards on spec.os / spec.hostUsers come last (they only run for an
#     offending value);
#   - helper functions, rule references and value formatting only run for
#     offending values, never for a compliant pod;
#   - `not f(x.y)` is never written with a reference argument that may be
#     undefined (its meaning differs from `not x.y == v`); object.get is used
#     instead.
package palisade.lib.pss

# METADATA
# title: violations
# description: |
#   Returns the set of Pod Security Standards violations of a pod at a level:
#   "baseline" or "restricted" ("privileged" returns the empty set).
#
#   pod_spec is a core/v1 PodSpec and pod_metadata its ObjectMeta (only
#   annotations are read). Each element is an object
#   {"control": string, "container": string, "value": string}; "container"
#   is "" for pod-level findings. There is at most one element per
#   (control, container) pair: several offending values of one control on
#   one container (or on the pod) are joined with "; ", in sorted order.
#
#   An unknown level fails closed with the single element
#   {"control": "level", "container": "", "value": "unknown level <level>"}.
violations(_, _, "privileged") := set()

violations(_, _, level) := {{"control": "level", "container": "", "value": sprintf("unknown level %v", [level])}} if {
	not level in {"baseline", "restricted", "privileged"}
}

# The baseline and restricted levels; restricted is true for the latter.
#
# cs lists every container, init container and ephemeral container; subjects
# prepends the PodSpec itself, for the controls that apply to the pod and
# container security contexts alike (both sit under "securityContext"). The
# name of a subject is read with object.get(x, "name", ""), which is "" for
# the PodSpec (a PodSpec has no "name" field). A pod_spec that is not an
# object has no containers and yields no findings; references into it fail
# instead of raising errors.
#
# Each comprehension yields [control, container, value] findings; the head of
# the rule merges the values of one (control, container) pair.
violations(spec, meta, level) := {{"control": f[0], "container": f[1], "value": concat("; ", [g[2] |
	some g in findings
	g[0] == f[0]
	g[1] == f[1]
])} |
	some f in findings
} if {
	restricted := {"baseline": false, "restricted": true}[level]
	cs := [c |
		some key in ["initContainers", "containers", "ephemeralContainers"]
		some c in spec[key]
		is_object(c)
	]
	subjects := array.concat([spec], cs)
	findings := {f |
		some found in [
			# HostProcess: windowsOptions.hostProcess must be unset or false.
			{["hostProcess", object.get(p, "name", ""), sprintf("hostProcess=%v", [v])] |
				some p in subjects
				v := p.securityContext.windowsOptions.hostProcess
				v != false
				v != null
			},
			# Host namespaces: hostNetwork, hostPID and hostIPC must be unset or
			# false.
			{["hostNamespaces", "", sprintf("%s=%v", [key, v])] |
				some key in ["hostNetwork", "hostPID", "hostIPC"]
				v := spec[key]
				v != false
				v != null
			},
			# Privileged containers: privileged must be unset or false.
			{["privileged", object.get(c, "name", ""), sprintf("privileged=%v", [v])] |
				some c in cs
				v := c.securityContext.privileged
				v != false
				v != null
			},
			# Capabilities: capabilities.add is limited to the baseline
			# allow-list (names compared after normalisation, see
			# _capability_name).
			{["capabilities", object.get(c, "name", ""), sprintf("capabilities.add=%s", [concat(",", bad)])] |
				some c in cs
				add := c.securityContext.capabilities.add
				unusual := {cap | some cap in add; not cap in _baseline_capabilities}
				count(unusual) > 0
				bad := _disallowed_capabilities(unusual, _baseline_capabilities)
				count(bad) > 0
			},
			# HostPath volumes: volumes[*].hostPath must be unset.
			{["hostPathVolumes", "", sprintf("volume %v hostPath", [object.get(v, "name", "")])] |
				some v in spec.volumes
				v.hostPath != null
			},
			# Host ports: ports[*].hostPort must be unset or 0.
			{["hostPorts", object.get(c, "name", ""), sprintf("hostPort=%v", [hp])] |
				some c in cs
				some port in c.ports
				hp := port.hostPort
				hp != 0
				hp != null
			},
			# AppArmor and seccomp profiles: when appArmorProfile or
			# seccompProfile is set, its type must be RuntimeDefault or
			# Localhost. The seccomp finding is reported by the baseline
			# control "seccomp" and, for restricted Linux pods, by
			# "seccompRestricted".
			{[control, object.get(p, "name", ""), _describe(sprintf("%s.type", [key]), t)] |
				some p in subjects
				some key in ["appArmorProfile", "seccompProfile"]
				p.securityContext[key] != null
				t := object.get(p, ["securityContext", key, "type"], null)
				not t in {"RuntimeDefault", "Localhost"}
				some control in _profile_controls(key, restricted, spec)
			},
			# AppArmor (deprecated annotations): the values of
			# container.apparmor.security.beta.kubernetes.io/<container> must be
			# empty, runtime/default or localhost/<profile>.
			{["appArmor", trim_prefix(key, "container.apparmor.security.beta.kubernetes.io/"), sprintf("annotation=%v", [value])] |
				annotations := meta.annotations
				is_object(annotations)
				strings.any_prefix_match(object.keys(annotations), "container.apparmor.security.beta.kubernetes.io/")
				some key, value in annotations
				startswith(key, "container.apparmor.security.beta.kubernetes.io/")
				not _app_armor_annotation_allowed(value)
			},
			# SELinux: seLinuxOptions.type must be empty or a container type,
			# seLinuxOptions.user and .role must be empty.
			{["seLinux", object.get(p, "name", ""), sprintf("seLinuxOptions.%s=%v", [key, v])] |
				some p in subjects
				some key, v in p.securityContext.seLinuxOptions
				allowed := {
					"type": {null, "", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"},
					"user": {null, ""},
					"role": {null, ""},
				}[key]
				not v in allowed
			},
			# /proc mount type: procMount must be unset or Default.
			{["procMount", object.get(c, "name", ""), sprintf("procMount=%v", [v])] |
				some c in cs
				v := c.securityContext.procMount
				v != "Default"
				v != null
				_proc_mount_enforced(restricted, spec)
			},
			# Sysctls: only the safe sysctls may be set.
			{["sysctls", "", sprintf("sysctl %v", [name])] |
				some sysctl in spec.securityContext.sysctls
				name := sysctl.name
				not name in {
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
			},
			# Host probes: the host of probe handlers must be unset or empty.
			{["hostProbesAndLifecycleHooks", object.get(c, "name", ""), sprintf("%s.%s.host=%v", [key, action, host])] |
				some c in cs
				some key in ["livenessProbe", "readinessProbe", "startupProbe"]
				handler := c[key]
				some action in ["httpGet", "tcpSocket"]
				host := handler[action].host
				host != ""
				host != null
			},
			# Host lifecycle hooks: the host of lifecycle handlers (postStart,
			# preStop) must be unset or empty.
			{["hostProbesAndLifecycleHooks", object.get(c, "name", ""), sprintf("lifecycle.%s.%s.host=%v", [key, action, host])] |
				some c in cs
				some key, handler in c.lifecycle
				some action in ["httpGet", "tcpSocket"]
				host := handler[action].host
				host != ""
				host != null
			},
			# The restricted controls: this nested comprehension stops at its first
			# expression at the baseline level, so none of them is evaluated.
			{finding |
				restricted

				# The volume keys other than the name and the allowed sources
				# (image volumes are allowed since Kubernetes v1.33); usually none.
				odd_volume_keys := {key | some v in spec.volumes; some key, _ in v} - {
					"name", "configMap", "csi", "downwardAPI", "emptyDir",
					"ephemeral", "image", "persistentVolumeClaim", "projected", "secret",
				}
				some restricted_found in [
					# Restricted, volume types: a volume must use an allowed source. A
					# volume without any source is defaulted to emptyDir by the API
					# server.
					{["volumeTypes", "", sprintf("volume %v %v", [object.get(v, "name", ""), key])] |
						some key in odd_volume_keys
						some v in spec.volumes
						v[key] != null
						is_object(v)
						not _has_allowed_volume_source(v)
					},
					# Restricted, privilege escalation: allowPrivilegeEscalation must
					# be false.
					{["allowPrivilegeEscalation", object.get(c, "name", ""), _describe("allowPrivilegeEscalation", object.get(c, ["securityContext", "allowPrivilegeEscalation"], null))] |
						some c in cs
						not c.securityContext.allowPrivilegeEscalation == false
						not spec.os.name == "windows"
					},
					# Restricted, running as non-root: an explicit runAsNonRoot must be
					# true, on the pod and on every container.
					{["runAsNonRoot", object.get(p, "name", ""), sprintf("runAsNonRoot=%v", [v])] |
						some p in subjects
						v := p.securityContext.runAsNonRoot
						v != true
						v != null
						not spec.hostUsers == false
					},
					# Restricted, running as non-root: a container that does not set
					# runAsNonRoot inherits it from the pod, which must then set true.
					{["runAsNonRoot", object.get(c, "name", ""), "runAsNonRoot unset"] |
						not spec.securityContext.runAsNonRoot == true
						some c in cs
						object.get(c, ["securityContext", "runAsNonRoot"], null) == null
						not spec.hostUsers == false
					},
					# Restricted, running as non-root user: runAsUser must not be 0.
					{["runAsUser", object.get(p, "name", ""), "runAsUser=0"] |
						some p in subjects
						p.securityContext.runAsUser == 0
						not spec.hostUsers == false
					},
					# Restricted, seccomp: a container that does not set seccompProfile
					# inherits it from the pod, which must then set a valid one.
					{["seccompRestricted", object.get(c, "name", ""), "seccompProfile unset"] |
						not spec.securityContext.seccompProfile.type == "RuntimeDefault"
						not spec.securityContext.seccompProfile.type == "Localhost"
						some c in cs
						object.get(c, ["securityContext", "seccompProfile"], null) == null
						not spec.os.name == "windows"
					},
					# Restricted, capabilities: capabilities.drop must contain "ALL".
					# Compared exactly, like upstream PodSecurity: see
					# _disallowed_capabilities.
					{["capabilitiesRestricted", object.get(c, "name", ""), "capabilities.drop missing ALL"] |
						some c in cs
						not "ALL" in object.get(c, ["securityContext", "capabilities", "drop"], [])
						not spec.os.name == "windows"
					},
					# Restricted, capabilities: capabilities.add may only hold
					# NET_BIND_SERVICE.
					{["capabilitiesRestricted", object.get(c, "name", ""), sprintf("capabilities.add=%s", [concat(",", bad)])] |
						some c in cs
						add := c.securityContext.capabilities.add
						unusual := {cap | some cap in add; cap != "NET_BIND_SERVICE"}
						count(unusual) > 0
						bad := _disallowed_capabilities(unusual, {"NET_BIND_SERVICE"})
						count(bad) > 0
						not spec.os.name == "windows"
					},
				]
				some finding in restricted_found
			},
		]
		some f in found
	}
}

# The capabilities a baseline container may add.
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

# _disallowed_capabilities returns the capabilities of add (as written) that
# are not in allowed once normalised by _capability_name.
#
# Only added capabilities are normalised. The drop list is compared exactly,
# as upstream PodSecurity does (check_capabilities_restricted.go compares each
# entry with "ALL"), so drop: ["all"] does NOT satisfy capabilitiesRestricted.
# The CRI API defines no lower-case spelling and runtimes differ (containerd
# happens to compare "all" case-insensitively): accepting it would disagree
# with PodSecurity admission and rely on runtime-specific behaviour.
_disallowed_capabilities(add, allowed) := {sprintf("%v", [cap]) |
	some cap in add
	not _capability_name(cap) in allowed
}

# _capability_name normalises a capability name: upper case, without a "CAP_"
# prefix. A non-string is returned unchanged and so matches no allowed name.
_capability_name(cap) := trim_prefix(upper(cap), "CAP_") if is_string(cap)

else := cap

# _profile_controls lists the controls reporting an invalid profile type.
_profile_controls("appArmorProfile", _, _) := ["appArmor"]

_profile_controls("seccompProfile", restricted, spec) := ["seccomp", "seccompRestricted"] if {
	restricted
	not spec.os.name == "windows"
} else := ["seccomp"]

# _proc_mount_enforced: restricted always enforces procMount; baseline does
# not for user-namespaced pods (hostUsers: false), since policy v1.35.
_proc_mount_enforced(true, _)

_proc_mount_enforced(false, spec) if not spec.hostUsers == false

# An annotation value of null is read as empty, like the API server does.
_app_armor_annotation_allowed(value) if value in {null, "", "runtime/default"}

_app_armor_annotation_allowed(value) if {
	is_string(value)
	startswith(value, "localhost/")
}

_has_allowed_volume_source(v) if {
	some key in [
		"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
		"image", "persistentVolumeClaim", "projected", "secret",
	]
	v[key] != null
}

_describe(field, null) := sprintf("%s unset", [field])

_describe(field, v) := sprintf("%s=%v", [field, v]) if v != null
