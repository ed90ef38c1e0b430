package palisade.lib.pss_test

import data.palisade.lib.pss

# Tests for data.palisade.lib.pss.violations. Names: test_<case>_<outcome>,
# outcome being "allowed" (no violation of the control under test) or
# "denied". Most denied cases compare the complete result, so that the value
# strings are pinned.

#
# Fixtures.
#

# A container compliant with the restricted level on its own.
restricted_container(name) := {
	"name": name,
	"image": "registry.example/app:1.0",
	"ports": [{"containerPort": 8080, "protocol": "TCP"}],
	"livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
	"readinessProbe": {"tcpSocket": {"port": 8080}},
	"securityContext": {
		"allowPrivilegeEscalation": false,
		"capabilities": {"drop": ["ALL"]},
		"readOnlyRootFilesystem": true,
	},
}

# A typical two-container pod compliant with the restricted level: runAsNonRoot,
# runAsUser and seccomp at pod level, the rest on every container.
restricted_spec := {
	"securityContext": {
		"runAsNonRoot": true,
		"runAsUser": 1000,
		"runAsGroup": 1000,
		"fsGroup": 1000,
		"seccompProfile": {"type": "RuntimeDefault"},
	},
	"containers": [
		restricted_container("app"),
		object.union(restricted_container("sidecar"), {"securityContext": {"capabilities": {"add": ["NET_BIND_SERVICE"]}}}),
	],
	"volumes": [
		{"name": "config", "configMap": {"name": "app-config"}},
		{"name": "cache", "emptyDir": {}},
		{"name": "kube-api-access", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}},
	],
}

restricted_meta := {"name": "web", "namespace": "prod", "annotations": {"checksum/config": "abc"}}

# A pod compliant with the baseline level only: default security contexts.
baseline_spec := {
	"containers": [{"name": "app", "image": "nginx", "ports": [{"containerPort": 80}]}],
	"volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
}

# with_container replaces the containers of spec by the single container c.
with_container(spec, c) := object.union(spec, {"containers": [c]})

# with_security_context merges sc into the securityContext of container c.
with_security_context(c, sc) := object.union(c, {"securityContext": sc})

# A restricted spec whose only container has sc merged into its securityContext.
restricted_with(sc) := with_container(restricted_spec, with_security_context(restricted_container("app"), sc))

# A restricted spec whose pod securityContext has sc merged in.
restricted_pod_with(sc) := object.union(restricted_spec, {"securityContext": sc})

v(control, container, value) := {"control": control, "container": container, "value": value}

baseline(spec) := pss.violations(spec, {}, "baseline")

restricted(spec) := pss.violations(spec, {}, "restricted")

#
# Whole-pod cases.
#

test_restricted_compliant_pod_baseline_allowed if {
	pss.violations(restricted_spec, restricted_meta, "baseline") == set()
}

test_restricted_compliant_pod_restricted_allowed if {
	pss.violations(restricted_spec, restricted_meta, "restricted") == set()
}

test_baseline_compliant_pod_baseline_allowed if {
	baseline(baseline_spec) == set()
}

test_baseline_compliant_pod_restricted_denied if {
	restricted(baseline_spec) == {
		v("allowPrivilegeEscalation", "app", "allowPrivilegeEscalation unset"),
		v("capabilitiesRestricted", "app", "capabilities.drop missing ALL"),
		v("runAsNonRoot", "app", "runAsNonRoot unset"),
		v("seccompRestricted", "app", "seccompProfile unset"),
	}
}

test_empty_spec_allowed if {
	baseline({}) == set()
	restricted({}) == set()
}

test_privileged_level_allowed if {
	pss.violations(object.union(baseline_spec, {"hostNetwork": true}), {}, "privileged") == set()
}

test_unknown_level_denied if {
	pss.violations(restricted_spec, {}, "Restricted") == {v("level", "", "unknown level Restricted")}
}

test_many_violations_one_element_per_control_and_container_denied if {
	spec := {
		"hostNetwork": true,
		"hostIPC": true,
		"containers": [{
			"name": "app",
			"ports": [{"hostPort": 80}, {"hostPort": 443}],
			"securityContext": {
				"privileged": true,
				"capabilities": {"add": ["SYS_ADMIN", "NET_ADMIN"]},
				"seLinuxOptions": {"type": "spc_t", "user": "system_u", "role": "system_r", "level": "s0"},
			},
		}],
	}
	baseline(spec) == {
		v("hostNamespaces", "", "hostIPC=true; hostNetwork=true"),
		v("hostPorts", "app", "hostPort=443; hostPort=80"),
		v("privileged", "app", "privileged=true"),
		v("capabilities", "app", "capabilities.add=NET_ADMIN,SYS_ADMIN"),
		v("seLinux", "app", "seLinuxOptions.role=system_r; seLinuxOptions.type=spc_t; seLinuxOptions.user=system_u"),
	}
}

test_malformed_inputs_allowed if {
	# Malformed or partial input never raises an error.
	baseline(null) == set()
	restricted("pod") == set()
	restricted({"containers": null, "volumes": "x", "securityContext": "x"}) == set()
	baseline({"containers": [null, 1, "x", {"name": "app", "securityContext": null}]}) == set()
	pss.violations(baseline_spec, null, "baseline") == set()
	pss.violations(baseline_spec, {"annotations": "x"}, "baseline") == set()
}

test_malformed_values_denied if {
	# Values of an unexpected type fail closed where allowed values are listed.
	spec := {
		"hostPID": "yes",
		"containers": [{
			"name": "app",
			"ports": [{"hostPort": "80"}],
			"securityContext": {
				"capabilities": {"add": [7]},
				"seccompProfile": "RuntimeDefault",
			},
		}],
	}
	baseline(spec) == {
		v("hostNamespaces", "", "hostPID=yes"),
		v("hostPorts", "app", "hostPort=80"),
		v("capabilities", "app", "capabilities.add=7"),
		v("seccomp", "app", "seccompProfile.type unset"),
	}
}

test_null_container_security_context_restricted_denied if {
	spec := with_container(restricted_spec, {"name": "app", "securityContext": null})
	restricted(spec) == {
		v("allowPrivilegeEscalation", "app", "allowPrivilegeEscalation unset"),
		v("capabilitiesRestricted", "app", "capabilities.drop missing ALL"),
	}
}

#
# Baseline: hostProcess.
#

test_host_process_false_baseline_allowed if {
	spec := object.union(baseline_spec, {"securityContext": {"windowsOptions": {"hostProcess": false}}})
	baseline(spec) == set()
}

test_host_process_pod_baseline_denied if {
	spec := object.union(baseline_spec, {"securityContext": {"windowsOptions": {"hostProcess": true}}})
	baseline(spec) == {v("hostProcess", "", "hostProcess=true")}
}

test_host_process_container_baseline_denied if {
	c := {"name": "win", "securityContext": {"windowsOptions": {"hostProcess": true, "runAsUserName": "NT AUTHORITY\\SYSTEM"}}}
	baseline(with_container(baseline_spec, c)) == {v("hostProcess", "win", "hostProcess=true")}
}

#
# Baseline: hostNamespaces.
#

test_host_namespaces_false_baseline_allowed if {
	baseline(object.union(baseline_spec, {"hostNetwork": false, "hostPID": false, "hostIPC": false})) == set()
}

test_host_network_baseline_denied if {
	baseline(object.union(baseline_spec, {"hostNetwork": true})) == {v("hostNamespaces", "", "hostNetwork=true")}
}

test_host_pid_restricted_denied if {
	restricted(object.union(restricted_spec, {"hostPID": true})) == {v("hostNamespaces", "", "hostPID=true")}
}

test_host_ipc_baseline_denied if {
	baseline(object.union(baseline_spec, {"hostIPC": true})) == {v("hostNamespaces", "", "hostIPC=true")}
}

#
# Baseline: privileged.
#

test_privileged_false_baseline_allowed if {
	baseline(with_container(baseline_spec, {"name": "app", "securityContext": {"privileged": false}})) == set()
}

test_privileged_container_baseline_denied if {
	baseline(with_container(baseline_spec, {"name": "app", "securityContext": {"privileged": true}})) == {v("privileged", "app", "privileged=true")}
}

test_privileged_ephemeral_container_restricted_denied if {
	debug := with_security_context(restricted_container("debug"), {"privileged": true})
	restricted(object.union(restricted_spec, {"ephemeralContainers": [debug]})) == {v("privileged", "debug", "privileged=true")}
}

#
# Baseline: capabilities.
#

test_capabilities_allow_list_baseline_allowed if {
	c := {"name": "app", "securityContext": {"capabilities": {"add": [
		"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
		"NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
	]}}}
	baseline(with_container(baseline_spec, c)) == set()
}

test_capabilities_normalised_names_baseline_allowed if {
	# Names are compared upper-cased and without a CAP_ prefix.
	c := {"name": "app", "securityContext": {"capabilities": {"add": ["chown", "CAP_KILL", "cap_net_bind_service"]}}}
	baseline(with_container(baseline_spec, c)) == set()
}

test_capabilities_sys_admin_baseline_denied if {
	c := {"name": "app", "securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}}
	baseline(with_container(baseline_spec, c)) == {v("capabilities", "app", "capabilities.add=SYS_ADMIN")}
}

test_capabilities_cap_sys_admin_lower_case_baseline_denied if {
	# Bypass attempt: a lower-case name with the CAP_ prefix.
	c := {"name": "app", "securityContext": {"capabilities": {"add": ["cap_sys_admin", "CHOWN"]}}}
	baseline(with_container(baseline_spec, c)) == {v("capabilities", "app", "capabilities.add=cap_sys_admin")}
}

test_capabilities_net_raw_and_all_baseline_denied if {
	# NET_RAW is not in the baseline allow-list; neither is ALL.
	c := {"name": "app", "securityContext": {"capabilities": {"add": ["NET_RAW", "ALL"]}}}
	baseline(with_container(baseline_spec, c)) == {v("capabilities", "app", "capabilities.add=ALL,NET_RAW")}
}

test_capabilities_init_container_baseline_denied if {
	# Bypass attempt: the capability is added by an init container.
	init := {"name": "setup", "securityContext": {"capabilities": {"add": ["SYS_PTRACE"]}}}
	baseline(object.union(baseline_spec, {"initContainers": [init]})) == {v("capabilities", "setup", "capabilities.add=SYS_PTRACE")}
}

test_capabilities_ephemeral_container_baseline_denied if {
	# Bypass attempt: the capability is added by an ephemeral (debug) container.
	debug := {"name": "debugger", "targetContainerName": "app", "securityContext": {"capabilities": {"add": ["SYS_PTRACE"]}}}
	baseline(object.union(baseline_spec, {"ephemeralContainers": [debug]})) == {v("capabilities", "debugger", "capabilities.add=SYS_PTRACE")}
}

test_capabilities_ephemeral_container_restricted_denied if {
	debug := with_security_context(restricted_container("debugger"), {"capabilities": {"add": ["SYS_ADMIN"]}})
	restricted(object.union(restricted_spec, {"ephemeralContainers": [debug]})) == {
		v("capabilities", "debugger", "capabilities.add=SYS_ADMIN"),
		v("capabilitiesRestricted", "debugger", "capabilities.add=SYS_ADMIN"),
	}
}

#
# Baseline: hostPathVolumes.
#

test_host_path_volume_absent_baseline_allowed if {
	spec := object.union(baseline_spec, {"volumes": [{"name": "data", "hostPath": null}, {"name": "tmp", "emptyDir": {}}]})
	baseline(spec) == set()
}

test_host_path_volume_baseline_denied if {
	spec := object.union(baseline_spec, {"volumes": [{"name": "data", "hostPath": {"path": "/var/lib"}}]})
	baseline(spec) == {v("hostPathVolumes", "", "volume data hostPath")}
}

test_host_path_volume_restricted_denied if {
	vols := array.concat(restricted_spec.volumes, [{"name": "root", "hostPath": {"path": "/"}}])
	restricted(object.union(restricted_spec, {"volumes": vols})) == {
		v("hostPathVolumes", "", "volume root hostPath"),
		v("volumeTypes", "", "volume root hostPath"),
	}
}

#
# Baseline: hostPorts.
#

test_host_port_zero_baseline_allowed if {
	c := {"name": "app", "ports": [{"containerPort": 80, "hostPort": 0}, {"containerPort": 81}]}
	baseline(with_container(baseline_spec, c)) == set()
}

test_host_port_baseline_denied if {
	c := {"name": "app", "ports": [{"containerPort": 80, "hostPort": 8080}]}
	baseline(with_container(baseline_spec, c)) == {v("hostPorts", "app", "hostPort=8080")}
}

test_host_port_init_container_baseline_denied if {
	init := {"name": "setup", "ports": [{"containerPort": 53, "hostPort": 53, "protocol": "UDP"}]}
	baseline(object.union(baseline_spec, {"initContainers": [init]})) == {v("hostPorts", "setup", "hostPort=53")}
}

#
# Baseline: appArmor.
#

test_app_armor_annotations_baseline_allowed if {
	meta := {"annotations": {
		"container.apparmor.security.beta.kubernetes.io/app": "runtime/default",
		"container.apparmor.security.beta.kubernetes.io/sidecar": "localhost/my-profile",
		"container.apparmor.security.beta.kubernetes.io/other": "",
		"apparmor.example.com/unrelated": "unconfined",
	}}
	pss.violations(baseline_spec, meta, "baseline") == set()
}

test_app_armor_annotation_unconfined_baseline_denied if {
	meta := {"annotations": {"container.apparmor.security.beta.kubernetes.io/app": "unconfined"}}
	pss.violations(baseline_spec, meta, "baseline") == {v("appArmor", "app", "annotation=unconfined")}
}

test_app_armor_annotation_unknown_restricted_denied if {
	meta := {"annotations": {"container.apparmor.security.beta.kubernetes.io/sidecar": "docker-default"}}
	pss.violations(restricted_spec, meta, "restricted") == {v("appArmor", "sidecar", "annotation=docker-default")}
}

test_app_armor_profile_fields_baseline_allowed if {
	spec := {
		"securityContext": {"appArmorProfile": {"type": "RuntimeDefault"}},
		"containers": [{"name": "app", "securityContext": {"appArmorProfile": {"type": "Localhost", "localhostProfile": "k8s-nginx"}}}],
	}
	baseline(spec) == set()
}

test_app_armor_profile_pod_unconfined_baseline_denied if {
	spec := object.union(baseline_spec, {"securityContext": {"appArmorProfile": {"type": "Unconfined"}}})
	baseline(spec) == {v("appArmor", "", "appArmorProfile.type=Unconfined")}
}

test_app_armor_profile_container_unconfined_restricted_denied if {
	restricted(restricted_with({"appArmorProfile": {"type": "Unconfined"}})) == {v("appArmor", "app", "appArmorProfile.type=Unconfined")}
}

test_app_armor_profile_without_type_baseline_denied if {
	c := {"name": "app", "securityContext": {"appArmorProfile": {}}}
	baseline(with_container(baseline_spec, c)) == {v("appArmor", "app", "appArmorProfile.type unset")}
}

#
# Baseline: seLinux.
#

test_se_linux_container_types_baseline_allowed if {
	spec := {
		"securityContext": {"seLinuxOptions": {"type": "container_t", "level": "s0:c123,c456"}},
		"containers": [
			{"name": "a", "securityContext": {"seLinuxOptions": {"type": "container_init_t"}}},
			{"name": "b", "securityContext": {"seLinuxOptions": {"type": "container_kvm_t"}}},
			{"name": "c", "securityContext": {"seLinuxOptions": {"type": "container_engine_t"}}},
			{"name": "d", "securityContext": {"seLinuxOptions": {"type": "", "user": "", "role": ""}}},
		],
	}
	baseline(spec) == set()
}

test_se_linux_type_spc_baseline_denied if {
	c := {"name": "app", "securityContext": {"seLinuxOptions": {"type": "spc_t"}}}
	baseline(with_container(baseline_spec, c)) == {v("seLinux", "app", "seLinuxOptions.type=spc_t")}
}

test_se_linux_pod_user_baseline_denied if {
	spec := object.union(baseline_spec, {"securityContext": {"seLinuxOptions": {"user": "system_u"}}})
	baseline(spec) == {v("seLinux", "", "seLinuxOptions.user=system_u")}
}

test_se_linux_role_init_container_restricted_denied if {
	init := with_security_context(restricted_container("init"), {"seLinuxOptions": {"role": "sysadm_r"}})
	restricted(object.union(restricted_spec, {"initContainers": [init]})) == {v("seLinux", "init", "seLinuxOptions.role=sysadm_r")}
}

#
# Baseline: procMount.
#

test_proc_mount_default_baseline_allowed if {
	baseline(with_container(baseline_spec, {"name": "app", "securityContext": {"procMount": "Default"}})) == set()
}

test_proc_mount_unmasked_baseline_denied if {
	baseline(with_container(baseline_spec, {"name": "app", "securityContext": {"procMount": "Unmasked"}})) == {v("procMount", "app", "procMount=Unmasked")}
}

test_proc_mount_unmasked_user_namespace_baseline_allowed if {
	# Policy v1.35: baseline allows any procMount in a user namespace.
	spec := object.union(baseline_spec, {"hostUsers": false, "containers": [{"name": "app", "securityContext": {"procMount": "Unmasked"}}]})
	baseline(spec) == set()
}

test_proc_mount_unmasked_user_namespace_restricted_denied if {
	# ...but restricted still requires the default /proc masks.
	spec := object.union(restricted_with({"procMount": "Unmasked"}), {"hostUsers": false})
	restricted(spec) == {v("procMount", "app", "procMount=Unmasked")}
}

#
# Baseline: seccomp.
#

test_seccomp_profiles_baseline_allowed if {
	spec := {
		"securityContext": {"seccompProfile": {"type": "Localhost", "localhostProfile": "profiles/audit.json"}},
		"containers": [{"name": "app", "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}}}],
	}
	baseline(spec) == set()
}

test_seccomp_pod_unconfined_baseline_denied if {
	spec := object.union(baseline_spec, {"securityContext": {"seccompProfile": {"type": "Unconfined"}}})
	baseline(spec) == {v("seccomp", "", "seccompProfile.type=Unconfined")}
}

test_seccomp_init_container_unconfined_baseline_denied if {
	init := {"name": "setup", "securityContext": {"seccompProfile": {"type": "Unconfined"}}}
	baseline(object.union(baseline_spec, {"initContainers": [init]})) == {v("seccomp", "setup", "seccompProfile.type=Unconfined")}
}

#
# Baseline: sysctls.
#

test_sysctls_safe_baseline_allowed if {
	sysctls := [{"name": name, "value": "1"} | some name in [
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
	]]
	baseline(object.union(baseline_spec, {"securityContext": {"sysctls": sysctls}})) == set()
}

test_sysctls_unsafe_baseline_denied if {
	sysctls := [
		{"name": "net.ipv4.tcp_syncookies", "value": "1"},
		{"name": "kernel.msgmax", "value": "65536"},
		{"name": "net.core.somaxconn", "value": "1024"},
	]
	baseline(object.union(baseline_spec, {"securityContext": {"sysctls": sysctls}})) == {v("sysctls", "", "sysctl kernel.msgmax; sysctl net.core.somaxconn")}
}

test_sysctls_slash_separator_baseline_denied if {
	# Names are compared as written, like upstream PodSecurity.
	sysctls := [{"name": "net/ipv4/tcp_syncookies", "value": "1"}]
	baseline(object.union(baseline_spec, {"securityContext": {"sysctls": sysctls}})) == {v("sysctls", "", "sysctl net/ipv4/tcp_syncookies")}
}

#
# Baseline: hostProbesAndLifecycleHooks (Kubernetes v1.34+).
#

test_probe_without_host_baseline_allowed if {
	c := {
		"name": "app",
		"livenessProbe": {"httpGet": {"path": "/", "port": 80, "host": ""}},
		"startupProbe": {"exec": {"command": ["true"]}},
		"lifecycle": {"preStop": {"sleep": {"seconds": 5}}, "stopSignal": "SIGTERM"},
	}
	baseline(with_container(baseline_spec, c)) == set()
}

test_probe_host_baseline_denied if {
	c := {
		"name": "app",
		"livenessProbe": {"httpGet": {"path": "/", "port": 80, "host": "169.254.169.254"}},
		"readinessProbe": {"tcpSocket": {"port": 10250, "host": "10.0.0.1"}},
	}
	baseline(with_container(baseline_spec, c)) == {v(
		"hostProbesAndLifecycleHooks", "app",
		"livenessProbe.httpGet.host=169.254.169.254; readinessProbe.tcpSocket.host=10.0.0.1",
	)}
}

test_lifecycle_host_init_container_restricted_denied if {
	init := object.union(restricted_container("init"), {"lifecycle": {
		"postStart": {"httpGet": {"port": 80, "host": "metadata.internal"}},
		"preStop": {"tcpSocket": {"port": 22, "host": "node"}},
	}})
	restricted(object.union(restricted_spec, {"initContainers": [init]})) == {v(
		"hostProbesAndLifecycleHooks", "init",
		"lifecycle.postStart.httpGet.host=metadata.internal; lifecycle.preStop.tcpSocket.host=node",
	)}
}

#
# Restricted: volumeTypes.
#

test_volume_types_allowed_sources_restricted_allowed if {
	vols := [
		{"name": "a", "configMap": {"name": "a"}},
		{"name": "b", "csi": {"driver": "secrets-store.csi.k8s.io"}},
		{"name": "c", "downwardAPI": {"items": []}},
		{"name": "d", "emptyDir": {"medium": "Memory"}},
		{"name": "e", "ephemeral": {"volumeClaimTemplate": {}}},
		{"name": "f", "persistentVolumeClaim": {"claimName": "f"}},
		{"name": "g", "projected": {"sources": []}},
		{"name": "h", "secret": {"secretName": "h"}},
		{"name": "i", "image": {"reference": "registry.example/data:1", "pullPolicy": "IfNotPresent"}},
		{"name": "j"},
	]
	restricted(object.union(restricted_spec, {"volumes": vols})) == set()
}

test_volume_types_nfs_restricted_denied if {
	vols := [{"name": "shared", "nfs": {"server": "nfs.example", "path": "/export"}}, {"name": "cache", "emptyDir": {}}]
	spec := object.union(restricted_spec, {"volumes": vols})
	restricted(spec) == {v("volumeTypes", "", "volume shared nfs")}
	baseline(spec) == set()
}

test_volume_types_several_restricted_denied if {
	vols := [
		{"name": "repo", "gitRepo": {"repository": "https://example.com/repo.git"}},
		{"name": "disk", "awsElasticBlockStore": {"volumeID": "vol-1"}},
		{"name": "flex", "flexVolume": {"driver": "example/driver"}},
	]
	restricted(object.union(restricted_spec, {"volumes": vols})) == {v(
		"volumeTypes", "",
		"volume disk awsElasticBlockStore; volume flex flexVolume; volume repo gitRepo",
	)}
}

test_volume_types_allowed_source_with_host_path_restricted_denied if {
	# Like upstream PodSecurity, a volume with an allowed source passes
	# volumeTypes (the API server rejects several sources anyway), but the
	# hostPath is still reported by hostPathVolumes.
	vols := [{"name": "odd", "secret": {"secretName": "s"}, "hostPath": {"path": "/etc"}}]
	restricted(object.union(restricted_spec, {"volumes": vols})) == {v("hostPathVolumes", "", "volume odd hostPath")}
}

#
# Restricted: allowPrivilegeEscalation.
#

test_allow_privilege_escalation_false_restricted_allowed if {
	restricted(restricted_with({"allowPrivilegeEscalation": false})) == set()
}

test_allow_privilege_escalation_unset_restricted_denied if {
	c := json.remove(restricted_container("app"), ["securityContext/allowPrivilegeEscalation"])
	restricted(with_container(restricted_spec, c)) == {v("allowPrivilegeEscalation", "app", "allowPrivilegeEscalation unset")}
}

test_allow_privilege_escalation_true_restricted_denied if {
	restricted(restricted_with({"allowPrivilegeEscalation": true})) == {v("allowPrivilegeEscalation", "app", "allowPrivilegeEscalation=true")}
}

test_allow_privilege_escalation_true_baseline_allowed if {
	baseline(restricted_with({"allowPrivilegeEscalation": true})) == set()
}

#
# Restricted: runAsNonRoot.
#

test_run_as_non_root_pod_level_restricted_allowed if {
	# Containers that leave runAsNonRoot unset inherit the pod's true.
	restricted(restricted_spec) == set()
}

test_run_as_non_root_every_container_restricted_allowed if {
	spec := {
		"securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
		"containers": [with_security_context(restricted_container("a"), {"runAsNonRoot": true})],
		"initContainers": [with_security_context(restricted_container("b"), {"runAsNonRoot": true})],
	}
	restricted(spec) == set()
}

test_run_as_non_root_container_false_overrides_pod_restricted_denied if {
	# Bypass attempt: the container-level false wins over the pod-level true.
	restricted(restricted_with({"runAsNonRoot": false})) == {v("runAsNonRoot", "app", "runAsNonRoot=false")}
}

test_run_as_non_root_pod_false_restricted_denied if {
	# An explicit false on the pod fails even if every container sets true.
	spec := object.union(restricted_with({"runAsNonRoot": true}), {"securityContext": {"runAsNonRoot": false}})
	restricted(spec) == {v("runAsNonRoot", "", "runAsNonRoot=false")}
}

test_run_as_non_root_unset_container_restricted_denied if {
	spec := {
		"securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
		"containers": [
			with_security_context(restricted_container("a"), {"runAsNonRoot": true}),
			restricted_container("b"),
		],
	}
	restricted(spec) == {v("runAsNonRoot", "b", "runAsNonRoot unset")}
}

test_run_as_non_root_user_namespace_restricted_allowed if {
	# Policy v1.35: runAsNonRoot and runAsUser are not checked for a pod in
	# a user namespace (hostUsers: false).
	spec := object.union(restricted_with({"runAsNonRoot": false, "runAsUser": 0}), {"hostUsers": false})
	restricted(spec) == set()
}

#
# Restricted: runAsUser.
#

test_run_as_user_non_zero_restricted_allowed if {
	restricted(restricted_with({"runAsUser": 65534})) == set()
}

test_run_as_user_pod_root_restricted_denied if {
	restricted(restricted_pod_with({"runAsUser": 0})) == {v("runAsUser", "", "runAsUser=0")}
}

test_run_as_user_container_root_restricted_denied if {
	restricted(restricted_with({"runAsUser": 0})) == {v("runAsUser", "app", "runAsUser=0")}
}

test_run_as_user_root_baseline_allowed if {
	baseline(restricted_with({"runAsUser": 0})) == set()
}

#
# Restricted: seccompRestricted.
#

test_seccomp_every_container_localhost_restricted_allowed if {
	c := with_security_context(restricted_container("app"), {"seccompProfile": {"type": "Localhost", "localhostProfile": "p.json"}})
	spec := json.remove(with_container(restricted_spec, c), ["securityContext/seccompProfile"])
	restricted(spec) == set()
}

test_seccomp_unset_restricted_denied if {
	spec := object.union(json.remove(restricted_spec, ["securityContext/seccompProfile"]), {
		"initContainers": [with_security_context(restricted_container("init"), {"seccompProfile": {"type": "RuntimeDefault"}})],
	})
	restricted(spec) == {
		v("seccompRestricted", "app", "seccompProfile unset"),
		v("seccompRestricted", "sidecar", "seccompProfile unset"),
	}
}

test_seccomp_container_unconfined_restricted_denied if {
	# An Unconfined container fails even though the pod sets RuntimeDefault.
	restricted(restricted_with({"seccompProfile": {"type": "Unconfined"}})) == {
		v("seccomp", "app", "seccompProfile.type=Unconfined"),
		v("seccompRestricted", "app", "seccompProfile.type=Unconfined"),
	}
}

test_seccomp_pod_unconfined_restricted_denied if {
	restricted(restricted_pod_with({"seccompProfile": {"type": "Unconfined"}})) == {
		v("seccomp", "", "seccompProfile.type=Unconfined"),
		v("seccompRestricted", "", "seccompProfile.type=Unconfined"),
		v("seccompRestricted", "app", "seccompProfile unset"),
		v("seccompRestricted", "sidecar", "seccompProfile unset"),
	}
}

#
# Restricted: capabilitiesRestricted.
#

test_capabilities_drop_all_add_net_bind_service_restricted_allowed if {
	restricted(restricted_with({"capabilities": {"drop": ["ALL", "NET_RAW"], "add": ["NET_BIND_SERVICE"]}})) == set()
}

test_capabilities_add_net_bind_service_normalised_restricted_allowed if {
	restricted(restricted_with({"capabilities": {"drop": ["ALL"], "add": ["cap_net_bind_service"]}})) == set()
}

test_capabilities_drop_missing_restricted_denied if {
	restricted(restricted_with({"capabilities": {"drop": ["NET_RAW"]}})) == {v("capabilitiesRestricted", "app", "capabilities.drop missing ALL")}
}

test_capabilities_drop_all_lower_case_restricted_denied if {
	# Bypass attempt: Kubernetes PodSecurity compares the drop list exactly
	# (`c == "ALL"` in check_capabilities_restricted.go), so "all" does not
	# drop every capability as far as the standard is concerned.
	restricted(restricted_with({"capabilities": {"drop": ["all"]}})) == {v("capabilitiesRestricted", "app", "capabilities.drop missing ALL")}
	baseline(restricted_with({"capabilities": {"drop": ["all"]}})) == set()
}

test_capabilities_add_restricted_denied if {
	restricted(restricted_with({"capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE", "CHOWN"]}})) == {v("capabilitiesRestricted", "app", "capabilities.add=CHOWN")}
}

test_capabilities_add_cap_sys_admin_init_container_restricted_denied if {
	init := with_security_context(restricted_container("init"), {"capabilities": {"add": ["cap_sys_admin"]}})
	restricted(object.union(restricted_spec, {"initContainers": [init]})) == {
		v("capabilities", "init", "capabilities.add=cap_sys_admin"),
		v("capabilitiesRestricted", "init", "capabilities.add=cap_sys_admin"),
	}
}

#
# Windows pods.
#

windows_spec := {
	"os": {"name": "windows"},
	"securityContext": {"runAsNonRoot": true, "windowsOptions": {"runAsUserName": "ContainerUser"}},
	"containers": [{"name": "iis", "image": "mcr.microsoft.com/windows/servercore/iis"}],
}

test_windows_pod_restricted_allowed if {
	# allowPrivilegeEscalation, seccomp and capabilities are Linux-only
	# restricted controls (policy v1.25+).
	restricted(windows_spec) == set()
}

test_windows_pod_invalid_linux_fields_restricted_allowed if {
	c := {"name": "iis", "securityContext": {"allowPrivilegeEscalation": true, "capabilities": {"add": ["NET_ADMIN"]}}}
	spec := with_container(windows_spec, c)

	# Only the baseline capabilities control applies.
	restricted(spec) == {v("capabilities", "iis", "capabilities.add=NET_ADMIN")}
}

test_windows_pod_run_as_non_root_restricted_denied if {
	spec := json.remove(windows_spec, ["securityContext/runAsNonRoot"])
	restricted(spec) == {v("runAsNonRoot", "iis", "runAsNonRoot unset")}
}

test_windows_pod_unconfined_seccomp_restricted_denied if {
	# The baseline seccomp control has no Windows exemption.
	spec := object.union(windows_spec, {"securityContext": {"seccompProfile": {"type": "Unconfined"}}})
	restricted(spec) == {v("seccomp", "", "seccompProfile.type=Unconfined")}
}

test_windows_host_process_baseline_denied if {
	spec := object.union(windows_spec, {"hostNetwork": true, "securityContext": {"windowsOptions": {"hostProcess": true}}})
	baseline(spec) == {
		v("hostNamespaces", "", "hostNetwork=true"),
		v("hostProcess", "", "hostProcess=true"),
	}
}
