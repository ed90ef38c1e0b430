package palisade.rules.pod_test

import data.palisade.rules.pod
import data.palisade.test.fixtures as fx

# _findings returns pod.findings under these rules (the tab's rules,
# lib/decision.rules); _rule, the findings of one rule of the catalog.
_findings(rules) := fs if {
	fs := pod.findings with data.palisade.lib.decision.rules as rules
}

_rule(name, rules) := {f | some f in _findings(rules); f.rule == name}

_c := fx.container("c", "nginx:1.25")

_block := {"action": "block"}

#
# hostNamespaces
#

_host_ns(rules, spec) := fs if {
	fs := _rule("hostNamespaces", rules) with input as fx.spec_input(object.union({"containers": [_c]}, spec))
}

test_host_network_denied if {
	_host_ns({"hostNamespaces": _block}, {"hostNetwork": true}) == {{
		"rule": "hostNamespaces",
		"field": "podSpec",
		"value": "hostNetwork=true",
		"container": "",
	}}
}

test_host_pid_denied if {
	fx.pairs(_host_ns({"hostNamespaces": _block}, {"hostPID": true})) == {["", "hostPID=true"]}
}

test_host_ipc_denied if {
	fx.pairs(_host_ns({"hostNamespaces": _block}, {"hostIPC": true})) == {["", "hostIPC=true"]}
}

test_host_namespaces_all_three_denied if {
	spec := {"hostNetwork": true, "hostPID": true, "hostIPC": true}
	fx.pairs(_host_ns({"hostNamespaces": _block}, spec)) == {
		["", "hostNetwork=true"],
		["", "hostPID=true"],
		["", "hostIPC=true"],
	}
}

test_host_namespaces_false_allowed if {
	_host_ns({"hostNamespaces": _block}, {"hostNetwork": false, "hostPID": false, "hostIPC": false}) == set()
}

test_host_namespaces_unset_allowed if {
	_host_ns({"hostNamespaces": _block}, {}) == set()
}

test_host_namespaces_parameter_unlisted_allowed if {
	rules := {"hostNamespaces": {"action": "block", "namespaces": ["hostPID"]}}
	_host_ns(rules, {"hostNetwork": true, "hostIPC": true}) == set()
}

test_host_namespaces_parameter_listed_denied if {
	rules := {"hostNamespaces": {"action": "block", "namespaces": ["hostPID", "hostIPC"]}}
	fx.pairs(_host_ns(rules, {"hostNetwork": true, "hostPID": true, "hostIPC": true})) == {
		["", "hostPID=true"],
		["", "hostIPC=true"],
	}
}

test_host_namespaces_rule_off_allowed if {
	_host_ns({}, {"hostNetwork": true}) == set()
}

test_host_network_in_deployment_template_denied if {
	deployment := {
		"kind": "Deployment",
		"metadata": {"name": "d", "namespace": "default"},
		"spec": {"template": {"spec": {"hostNetwork": true, "containers": [_c]}}},
	}
	fx.pairs(_rule("hostNamespaces", {"hostNamespaces": _block})) == {["", "hostNetwork=true"]} with input as fx.create(deployment)
}

#
# hostPorts
#

_port(host_port) := {"name": "c", "image": "nginx:1.25", "ports": [{"containerPort": 80, "hostPort": host_port}]}

_host_ports(rules, containers) := fs if {
	fs := _rule("hostPorts", rules) with input as fx.containers_input(containers)
}

test_host_port_denied if {
	_host_ports({"hostPorts": _block}, [_port(80)]) == {{
		"rule": "hostPorts",
		"field": "containerPorts",
		"value": "hostPort=80",
		"container": "c",
	}}
}

test_host_port_zero_allowed if {
	_host_ports({"hostPorts": _block}, [_port(0)]) == set()
}

test_container_port_without_host_port_allowed if {
	c := {"name": "c", "image": "nginx:1.25", "ports": [{"containerPort": 80}]}
	_host_ports({"hostPorts": _block}, [c]) == set()
}

test_host_port_in_allowed_list_allowed if {
	_host_ports({"hostPorts": {"action": "block", "allowed": [8443]}}, [_port(8443)]) == set()
}

test_host_port_not_in_allowed_list_denied if {
	fx.pairs(_host_ports({"hostPorts": {"action": "block", "allowed": [8443]}}, [_port(8444)])) == {["c", "hostPort=8444"]}
}

test_host_port_several_ports_only_unlisted_denied if {
	c := {"name": "c", "image": "nginx:1.25", "ports": [
		{"containerPort": 443, "hostPort": 8443},
		{"containerPort": 80, "hostPort": 80},
	]}
	fx.pairs(_host_ports({"hostPorts": {"action": "block", "allowed": [8443]}}, [c])) == {["c", "hostPort=80"]}
}

test_host_port_in_init_container_denied if {
	spec := {"containers": [_c], "initContainers": [object.union(_port(9000), {"name": "init"})]}
	fx.pairs(_rule("hostPorts", {"hostPorts": _block})) == {["init", "hostPort=9000"]} with input as fx.spec_input(spec)
}

test_host_ports_rule_off_allowed if {
	_host_ports({}, [_port(80)]) == set()
}

#
# hostPathVolumes
#

_host_path_spec(path, mounts) := {
	"containers": [
		{"name": "a", "image": "nginx:1.25", "volumeMounts": [{"name": m, "mountPath": "/mnt"} | some m in mounts]},
		{"name": "b", "image": "nginx:1.25"},
	],
	"volumes": [
		{"name": "host", "hostPath": {"path": path}},
		{"name": "scratch", "emptyDir": {}},
	],
}

test_host_path_volume_mounted_denied if {
	_rule("hostPathVolumes", {"hostPathVolumes": _block}) == {{
		"rule": "hostPathVolumes",
		"field": "volumes",
		"value": "/data",
		"container": "a",
	}} with input as fx.spec_input(_host_path_spec("/data", ["host"]))
}

test_host_path_volume_unmounted_denied if {
	fx.pairs(_rule("hostPathVolumes", {"hostPathVolumes": _block})) == {["", "/data"]} with input as fx.spec_input(_host_path_spec("/data", []))
}

test_host_path_volume_mounted_by_two_containers_denied if {
	spec := {
		"containers": [
			{"name": "a", "image": "nginx", "volumeMounts": [{"name": "host", "mountPath": "/a"}]},
			{"name": "b", "image": "nginx", "volumeMounts": [{"name": "host", "mountPath": "/b"}]},
		],
		"volumes": [{"name": "host", "hostPath": {"path": "/data"}}],
	}
	fx.pairs(_rule("hostPathVolumes", {"hostPathVolumes": _block})) == {["a", "/data"], ["b", "/data"]} with input as fx.spec_input(spec)
}

test_host_path_volume_mounted_by_init_container_denied if {
	spec := {
		"containers": [_c],
		"initContainers": [{"name": "init", "image": "busybox", "volumeMounts": [{"name": "host", "mountPath": "/h"}]}],
		"volumes": [{"name": "host", "hostPath": {"path": "/data"}}],
	}
	fx.pairs(_rule("hostPathVolumes", {"hostPathVolumes": _block})) == {["init", "/data"]} with input as fx.spec_input(spec)
}

test_non_host_path_volumes_allowed if {
	spec := {
		"containers": [{"name": "a", "image": "nginx", "volumeMounts": [{"name": "scratch", "mountPath": "/s"}]}],
		"volumes": [{"name": "scratch", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "cfg"}}],
	}
	_rule("hostPathVolumes", {"hostPathVolumes": _block}) == set() with input as fx.spec_input(spec)
}

test_host_path_volumes_rule_off_allowed if {
	_rule("hostPathVolumes", {}) == set() with input as fx.spec_input(_host_path_spec("/data", ["host"]))
}

#
# blockedHostPaths
#

_blocked(path, blocked) := fs if {
	fs := _rule("blockedHostPaths", {"blockedHostPaths": {"action": "block", "paths": blocked}}) with input as fx.spec_input(_host_path_spec(path, ["host"]))
}

test_blocked_host_path_exact_denied if {
	_blocked("/var/run", ["/var/run"]) == {{
		"rule": "blockedHostPaths",
		"field": "volumes",
		"value": "/var/run",
		"container": "a",
	}}
}

test_blocked_host_path_child_denied if {
	fx.pairs(_blocked("/var/run/docker.sock", ["/var/run"])) == {["a", "/var/run/docker.sock"]}
}

test_blocked_host_path_double_slash_bypass_denied if {
	fx.pairs(_blocked("/var//run/", ["/var/run"])) == {["a", "/var//run/"]}
}

test_blocked_host_path_dot_segment_bypass_denied if {
	fx.pairs(_blocked("/var/./run/x", ["/var/run"])) == {["a", "/var/./run/x"]}
}

test_blocked_host_path_trailing_slash_bypass_denied if {
	count(_blocked("/var/run/", ["/var/run"])) == 1
}

test_blocked_host_path_relative_bypass_denied if {
	count(_blocked("var/run/docker.sock", ["/var/run"])) == 1
}

test_blocked_host_path_sibling_prefix_allowed if {
	_blocked("/var/running", ["/var/run"]) == set()
}

# Mounting a parent of a blocked path exposes the blocked path.
test_blocked_host_path_parent_bypass_denied if {
	fx.pairs(_blocked("/var", ["/var/run"])) == {["a", "/var"]}
	fx.pairs(_blocked("/var/", ["/var/run/docker.sock"])) == {["a", "/var/"]}
}

test_blocked_host_path_root_mount_bypass_denied if {
	fx.pairs(_blocked("/", ["/var/run", "/etc"])) == {["a", "/"]}
	fx.pairs(_blocked("//", ["/etc"])) == {["a", "//"]}
}

test_blocked_host_path_sibling_parent_allowed if {
	_blocked("/var/lib", ["/var/run"]) == set()
	_blocked("/va", ["/var/run"]) == set()
}

test_blocked_host_path_unrelated_allowed if {
	_blocked("/data/app", ["/var/run", "/etc", "/proc"]) == set()
}

test_blocked_host_path_second_entry_denied if {
	count(_blocked("/etc/kubernetes/admin.conf", ["/var/run", "/etc"])) == 1
}

test_blocked_host_path_root_blocks_everything_denied if {
	count(_blocked("/data", ["/"])) == 1
	count(_blocked("/", ["/"])) == 1
	count(_blocked("/var/lib/kubelet/pods", ["/"])) == 1
}

test_blocked_host_path_unmounted_pod_level_denied if {
	fx.pairs(_rule("blockedHostPaths", {"blockedHostPaths": {"action": "block", "paths": ["/etc"]}})) == {["", "/etc/passwd"]} with input as fx.spec_input(_host_path_spec("/etc/passwd", []))
}

test_blocked_host_paths_rule_off_allowed if {
	_rule("blockedHostPaths", {}) == set() with input as fx.spec_input(_host_path_spec("/var/run", ["host"]))
}

test_under_path_whole_segments_compared if {
	pod.under_path("/var/run/docker.sock", "/var/run")
	pod.under_path("/var/run", "/var/run/")
	pod.under_path("/var//run/", "/var/run")
	pod.under_path("/var/./run/x", "/var/run")
	pod.under_path("/anything", "/")
	not pod.under_path("/var/running", "/var/run")
	not pod.under_path("/var", "/var/run")
	not pod.under_path("/run/docker.sock", "/var/run")
}

#
# podSecurityStandards (the controls themselves are tested in lib/pss_test.rego)
#

test_pod_security_standards_baseline_privileged_denied if {
	fs := _rule("podSecurityStandards", {"podSecurityStandards": {"action": "block", "level": "baseline"}}) with input as fx.containers_input([fx.with_sc("c", {"privileged": true})])
	some f in fs
	f.rule == "podSecurityStandards"
	f.field == "pss.baseline"
	f.container == "c"
	startswith(f.value, "privileged: ")
}

test_pod_security_standards_restricted_field_denied if {
	fs := _rule("podSecurityStandards", {"podSecurityStandards": {"action": "block", "level": "restricted"}}) with input as fx.containers_input([_c])
	count(fs) > 0
	every f in fs {
		f.field == "pss.restricted"
	}
}

test_pod_security_standards_baseline_compliant_allowed if {
	_rule("podSecurityStandards", {"podSecurityStandards": {"action": "block", "level": "baseline"}}) == set() with input as fx.containers_input([_c])
}

test_pod_security_standards_rule_off_allowed if {
	_rule("podSecurityStandards", {}) == set() with input as fx.containers_input([fx.with_sc("c", {"privileged": true})])
}

#
# automountServiceAccountToken
#

_automount(rules, spec) := fs if {
	fs := _rule("automountServiceAccountToken", rules) with input as fx.spec_input(object.union({"containers": [_c]}, spec))
}

test_automount_token_unset_denied if {
	_automount({"automountServiceAccountToken": _block}, {}) == {{
		"rule": "automountServiceAccountToken",
		"field": "podSpec",
		"value": "automountServiceAccountToken=unset",
		"container": "",
	}}
}

test_automount_token_true_denied if {
	fx.pairs(_automount({"automountServiceAccountToken": _block}, {"automountServiceAccountToken": true})) == {["", "automountServiceAccountToken=true"]}
}

test_automount_token_false_allowed if {
	_automount({"automountServiceAccountToken": _block}, {"automountServiceAccountToken": false}) == set()
}

test_automount_token_rule_off_allowed if {
	_automount({}, {}) == set()
}

#
# findings: every family together
#

test_findings_union_of_families_denied if {
	spec := object.union(_host_path_spec("/var/run/docker.sock", ["host"]), {"hostPID": true, "automountServiceAccountToken": false})
	rules := {
		"hostNamespaces": _block,
		"hostPorts": _block,
		"hostPathVolumes": {"action": "log"},
		"blockedHostPaths": {"action": "block", "paths": ["/var/run"]},
		"automountServiceAccountToken": _block,
	}
	fs := _findings(rules) with input as fx.spec_input(spec)
	{[f.rule, f.container, f.value] | some f in fs} == {
		["hostNamespaces", "", "hostPID=true"],
		["hostPathVolumes", "a", "/var/run/docker.sock"],
		["blockedHostPaths", "a", "/var/run/docker.sock"],
	}
}

test_findings_no_rules_allowed if {
	_findings({}) == set() with input as fx.spec_input(object.union(_host_path_spec("/var/run", ["host"]), {"hostNetwork": true}))
}
