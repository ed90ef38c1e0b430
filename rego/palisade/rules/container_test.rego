package palisade.rules.container_test

import data.palisade.rules.container
import data.palisade.test.fixtures as fx

# _findings returns container.findings under these rules (the tab's rules,
# lib/decision.rules); _rule, the findings of one rule of the catalog.
_findings(rules) := fs if {
	fs := container.findings with data.palisade.lib.decision.rules as rules
}

_rule(name, rules) := {f | some f in _findings(rules); f.rule == name}

_block := {"action": "block"}

_defaults := {
	"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
	"NET_BIND_SERVICE", "NET_RAW", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
}

#
# privileged
#

_privileged(sc) := fs if {
	fs := _rule("privileged", {"privileged": _block}) with input as fx.containers_input([fx.with_sc("c", sc)])
}

test_privileged_container_denied if {
	_privileged({"privileged": true}) == {{
		"rule": "privileged",
		"field": "containerSecurityContext",
		"value": "true",
		"container": "c",
	}}
}

test_privileged_false_allowed if {
	_privileged({"privileged": false}) == set()
}

test_privileged_unset_allowed if {
	_privileged({}) == set()
}

test_privileged_init_container_denied if {
	spec := {"containers": [fx.with_sc("c", {})], "initContainers": [fx.with_sc("init", {"privileged": true})]}
	fx.pairs(_rule("privileged", {"privileged": _block})) == {["init", "true"]} with input as fx.spec_input(spec)
}

test_privileged_ephemeral_container_denied if {
	spec := {"containers": [fx.with_sc("c", {})], "ephemeralContainers": [fx.with_sc("debugger", {"privileged": true})]}
	fx.pairs(_rule("privileged", {"privileged": _block})) == {["debugger", "true"]} with input as fx.spec_input(spec)
}

test_privileged_several_containers_denied if {
	cs := [fx.with_sc("a", {"privileged": true}), fx.with_sc("b", {"privileged": true}), fx.with_sc("c", {})]
	fx.pairs(_rule("privileged", {"privileged": _block})) == {["a", "true"], ["b", "true"]} with input as fx.containers_input(cs)
}

test_privileged_rule_off_allowed if {
	_rule("privileged", {}) == set() with input as fx.containers_input([fx.with_sc("c", {"privileged": true})])
}

#
# capabilities
#

# _caps returns the capabilities that violate cfg for one container with
# these capabilities (null: no capabilities field).
_caps(cfg, caps) := {f.value | some f in fs} if {
	fs := _rule("capabilities", {"capabilities": cfg}) with input as fx.containers_input([fx.with_sc("c", _caps_sc(caps))])
}

_caps_sc(null) := {}

_caps_sc(caps) := {"capabilities": caps} if caps != null

_preset(name) := {"action": "block", "preset": name}

_drop_all := {"drop": ["ALL"]}

test_capabilities_finding_shape_denied if {
	fs := _rule("capabilities", {"capabilities": _preset("restrict-nondefaults")}) with input as fx.containers_input([fx.with_sc("c", {"capabilities": {"add": ["SYS_ADMIN"]}})])
	fs == {{"rule": "capabilities", "field": "containerSecurityContext", "value": "SYS_ADMIN", "container": "c"}}
}

# restrict-nondefaults: the runtime defaults, nothing more.

test_capabilities_restrict_nondefaults_drop_all_allowed if {
	_caps(_preset("restrict-nondefaults"), _drop_all) == set()
}

test_capabilities_restrict_nondefaults_default_allowed if {
	_caps(_preset("restrict-nondefaults"), null) == set()
	_caps(_preset("restrict-nondefaults"), {}) == set()
}

test_capabilities_restrict_nondefaults_add_default_allowed if {
	_caps(_preset("restrict-nondefaults"), {"add": ["NET_RAW", "CHOWN"]}) == set()
}

test_capabilities_restrict_nondefaults_add_denied if {
	_caps(_preset("restrict-nondefaults"), {"add": ["NET_ADMIN"]}) == {"NET_ADMIN"}
}

# baseline: the runtime defaults without NET_RAW.

test_capabilities_baseline_drop_all_allowed if {
	_caps(_preset("baseline"), _drop_all) == set()
}

test_capabilities_baseline_default_denied if {
	_caps(_preset("baseline"), null) == {"NET_RAW"}
}

test_capabilities_baseline_drop_net_raw_allowed if {
	_caps(_preset("baseline"), {"drop": ["NET_RAW"]}) == set()
}

test_capabilities_baseline_add_denied if {
	_caps(_preset("baseline"), {"drop": ["NET_RAW"], "add": ["SYS_ADMIN", "CHOWN"]}) == {"SYS_ADMIN"}
}

# restricted: NET_BIND_SERVICE only.

test_capabilities_restricted_drop_all_allowed if {
	_caps(_preset("restricted"), _drop_all) == set()
}

test_capabilities_restricted_default_denied if {
	_caps(_preset("restricted"), null) == _defaults - {"NET_BIND_SERVICE"}
}

test_capabilities_restricted_add_net_bind_service_allowed if {
	_caps(_preset("restricted"), {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}) == set()
}

test_capabilities_restricted_add_denied if {
	_caps(_preset("restricted"), {"drop": ["ALL"], "add": ["NET_BIND_SERVICE", "CHOWN"]}) == {"CHOWN"}
}

# restrict-all: nothing at all.

test_capabilities_restrict_all_drop_all_allowed if {
	_caps(_preset("restrict-all"), _drop_all) == set()
}

test_capabilities_restrict_all_default_denied if {
	_caps(_preset("restrict-all"), null) == _defaults
}

test_capabilities_restrict_all_add_denied if {
	_caps(_preset("restrict-all"), {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}) == {"NET_BIND_SERVICE"}
}

# Spelling: runtimes upper-case names and accept a CAP_ prefix on add.

test_capabilities_lower_case_prefixed_add_denied if {
	_caps(_preset("restrict-nondefaults"), {"add": ["cap_sys_admin"]}) == {"SYS_ADMIN"}
	_caps({"action": "block", "deny": ["SYS_ADMIN"]}, {"add": ["cap_sys_admin"]}) == {"SYS_ADMIN"}
}

test_capabilities_padded_add_denied if {
	_caps(_preset("restrict-nondefaults"), {"add": [" SYS_ADMIN "]}) == {"SYS_ADMIN"}
}

test_capabilities_lower_case_drop_all_allowed if {
	_caps(_preset("restrict-all"), {"drop": ["all"]}) == set()
}

test_capabilities_lower_case_drop_allowed if {
	_caps(_preset("baseline"), {"drop": ["net_raw"]}) == set()
}

# containerd prefixes every non-ALL drop with CAP_ and compares ALL
# exactly (case aside): CAP_ALL, " ALL" and CAP_NET_RAW drop nothing there.

test_capabilities_prefixed_drop_all_bypass_denied if {
	_caps(_preset("restrict-all"), {"drop": ["CAP_ALL"]}) == _defaults
}

test_capabilities_padded_drop_all_bypass_denied if {
	_caps(_preset("restrict-all"), {"drop": [" ALL"]}) == _defaults
}

test_capabilities_prefixed_drop_bypass_denied if {
	_caps(_preset("baseline"), {"drop": ["CAP_NET_RAW"]}) == {"NET_RAW"}
}

# add: [ALL]

test_capabilities_add_all_denied if {
	_caps(_preset("restrict-nondefaults"), {"add": ["ALL"]}) == {"ALL"}
	_caps(_preset("restrict-nondefaults"), {"drop": ["ALL"], "add": ["all"]}) == {"ALL"}
}

test_capabilities_add_all_with_deny_list_denied if {
	_caps({"action": "block", "deny": ["NET_ADMIN"]}, {"drop": ["ALL"], "add": ["ALL"]}) == {"ALL"}
}

# deny lists

test_capabilities_deny_list_default_allowed if {
	_caps({"action": "block", "deny": ["SYS_ADMIN", "NET_ADMIN"]}, null) == set()
}

test_capabilities_deny_list_add_denied if {
	_caps({"action": "block", "deny": ["SYS_ADMIN", "NET_ADMIN"]}, {"add": ["SYS_ADMIN", "SYS_PTRACE"]}) == {"SYS_ADMIN"}
}

# Validation refuses a preset outside the catalog; the library reads one
# as allowing nothing, and a rule with neither preset nor deny list as
# refusing nothing.
test_capabilities_unknown_preset_denied if {
	_caps(_preset("everything"), null) == _defaults
	_caps(_preset("everything"), {"drop": ["ALL"], "add": ["SYS_ADMIN"]}) == {"SYS_ADMIN"}
}

test_capabilities_neither_preset_nor_deny_allowed if {
	_caps({"action": "block"}, {"add": ["SYS_ADMIN", "ALL"]}) == set()
}

test_capabilities_deny_list_runtime_default_denied if {
	_caps({"action": "block", "preset": "restrict-nondefaults", "deny": ["NET_RAW"]}, null) == {"NET_RAW"}
}

test_capabilities_deny_list_with_preset_denied if {
	cfg := {"action": "block", "preset": "restrict-nondefaults", "deny": ["SYS_ADMIN"]}
	_caps(cfg, {"add": ["SYS_ADMIN", "NET_ADMIN"]}) == {"SYS_ADMIN", "NET_ADMIN"}
}

test_capabilities_deny_all_default_denied if {
	_caps({"action": "block", "deny": ["ALL"]}, null) == _defaults
}

test_capabilities_deny_all_drop_all_allowed if {
	_caps({"action": "block", "deny": ["ALL"]}, _drop_all) == set()
}

test_capabilities_deny_all_add_denied if {
	_caps({"action": "block", "deny": ["ALL"]}, {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}) == {"NET_BIND_SERVICE"}
}

# every container kind

test_capabilities_init_container_denied if {
	spec := {
		"containers": [fx.with_sc("c", {"capabilities": {"drop": ["ALL"]}})],
		"initContainers": [fx.with_sc("init", {"capabilities": {"drop": ["ALL"], "add": ["SYS_ADMIN"]}})],
	}
	fx.pairs(_rule("capabilities", {"capabilities": _preset("restrict-all")})) == {["init", "SYS_ADMIN"]} with input as fx.spec_input(spec)
}

test_capabilities_ephemeral_container_denied if {
	spec := {
		"containers": [fx.with_sc("c", {"capabilities": {"drop": ["ALL"]}})],
		"ephemeralContainers": [fx.with_sc("debugger", {"capabilities": {"add": ["SYS_PTRACE"]}})],
	}
	fx.pairs(_rule("capabilities", {"capabilities": _preset("restrict-nondefaults")})) == {["debugger", "SYS_PTRACE"]} with input as fx.spec_input(spec)
}

test_capabilities_rule_off_allowed if {
	_rule("capabilities", {}) == set() with input as fx.containers_input([fx.with_sc("c", {"capabilities": {"add": ["ALL"]}})])
}

test_effective_capabilities_computed if {
	container.effective_capabilities({"spec": {}}) == _defaults
	container.effective_capabilities({"spec": {"securityContext": {"capabilities": {"drop": ["ALL"], "add": ["cap_net_admin"]}}}}) == {"NET_ADMIN"}
	container.effective_capabilities({"spec": {"securityContext": {"capabilities": {"drop": ["CHOWN", "KILL"]}}}}) == _defaults - {"CHOWN", "KILL"}
}

test_capability_names_normalised if {
	container.normalize("cap_sys_admin") == "SYS_ADMIN"
	container.normalize(" Net_Raw ") == "NET_RAW"
}

#
# allowPrivilegeEscalation
#

_ape(sc) := fx.pairs(fs) if {
	fs := _rule("allowPrivilegeEscalation", {"allowPrivilegeEscalation": _block}) with input as fx.containers_input([fx.with_sc("c", sc)])
}

test_allow_privilege_escalation_unset_denied if {
	fs := _rule("allowPrivilegeEscalation", {"allowPrivilegeEscalation": _block}) with input as fx.containers_input([fx.with_sc("c", {})])
	fs == {{
		"rule": "allowPrivilegeEscalation",
		"field": "containerSecurityContext",
		"value": "allowPrivilegeEscalation=unset",
		"container": "c",
	}}
}

test_allow_privilege_escalation_true_denied if {
	_ape({"allowPrivilegeEscalation": true}) == {["c", "allowPrivilegeEscalation=true"]}
}

test_allow_privilege_escalation_false_allowed if {
	_ape({"allowPrivilegeEscalation": false}) == set()
}

# PodSecurityContext has no allowPrivilegeEscalation: a pod-level value
# does not count.
test_allow_privilege_escalation_pod_level_bypass_denied if {
	spec := {"securityContext": {"allowPrivilegeEscalation": false}, "containers": [fx.with_sc("c", {})]}
	fx.pairs(_rule("allowPrivilegeEscalation", {"allowPrivilegeEscalation": _block})) == {["c", "allowPrivilegeEscalation=unset"]} with input as fx.spec_input(spec)
}

test_allow_privilege_escalation_init_container_denied if {
	spec := {"containers": [fx.with_sc("c", {"allowPrivilegeEscalation": false})], "initContainers": [fx.with_sc("init", {})]}
	fx.pairs(_rule("allowPrivilegeEscalation", {"allowPrivilegeEscalation": _block})) == {["init", "allowPrivilegeEscalation=unset"]} with input as fx.spec_input(spec)
}

test_allow_privilege_escalation_rule_off_allowed if {
	_rule("allowPrivilegeEscalation", {}) == set() with input as fx.containers_input([fx.with_sc("c", {"allowPrivilegeEscalation": true})])
}

#
# runAsRoot
#

_root(pod_sc, sc) := fx.pairs(fs) if {
	spec := {"securityContext": pod_sc, "containers": [fx.with_sc("c", sc)]}
	fs := _rule("runAsRoot", {"runAsRoot": _block}) with input as fx.spec_input(spec)
}

test_run_as_root_finding_shape_denied if {
	fs := _rule("runAsRoot", {"runAsRoot": _block}) with input as fx.containers_input([fx.with_sc("c", {"runAsUser": 0})])
	fs == {{"rule": "runAsRoot", "field": "containerSecurityContext", "value": "runAsUser=0", "container": "c"}}
}

test_run_as_root_run_as_non_root_allowed if {
	_root({}, {"runAsNonRoot": true}) == set()
}

test_run_as_root_non_zero_user_allowed if {
	_root({}, {"runAsUser": 1000}) == set()
}

test_run_as_root_user_zero_denied if {
	_root({}, {"runAsUser": 0}) == {["c", "runAsUser=0"]}
}

test_run_as_root_unset_denied if {
	_root({}, {}) == {["c", "runAsNonRoot unset"]}
}

test_run_as_root_run_as_non_root_false_denied if {
	_root({}, {"runAsNonRoot": false}) == {["c", "runAsNonRoot=false"]}
}

test_run_as_root_user_zero_beats_run_as_non_root_denied if {
	_root({}, {"runAsUser": 0, "runAsNonRoot": true}) == {["c", "runAsUser=0"]}
}

test_run_as_root_pod_run_as_non_root_allowed if {
	_root({"runAsNonRoot": true}, {}) == set()
}

test_run_as_root_pod_user_allowed if {
	_root({"runAsUser": 1000}, {}) == set()
}

test_run_as_root_pod_user_zero_denied if {
	_root({"runAsUser": 0}, {}) == {["c", "runAsUser=0"]}
}

test_run_as_root_container_user_overrides_pod_zero_allowed if {
	_root({"runAsUser": 0}, {"runAsUser": 1000}) == set()
}

test_run_as_root_container_user_zero_overrides_pod_denied if {
	_root({"runAsUser": 1000, "runAsNonRoot": true}, {"runAsUser": 0}) == {["c", "runAsUser=0"]}
}

test_run_as_root_container_non_root_false_overrides_pod_denied if {
	_root({"runAsNonRoot": true}, {"runAsNonRoot": false}) == {["c", "runAsNonRoot=false"]}
}

test_run_as_root_container_non_root_overrides_pod_false_allowed if {
	_root({"runAsNonRoot": false}, {"runAsNonRoot": true}) == set()
}

test_run_as_root_pod_user_zero_beats_container_non_root_denied if {
	_root({"runAsUser": 0}, {"runAsNonRoot": true}) == {["c", "runAsUser=0"]}
}

test_run_as_root_each_container_judged_denied if {
	spec := {
		"securityContext": {"runAsNonRoot": true},
		"containers": [fx.with_sc("a", {}), fx.with_sc("b", {"runAsNonRoot": false})],
		"initContainers": [fx.with_sc("init", {"runAsUser": 0})],
	}
	fx.pairs(_rule("runAsRoot", {"runAsRoot": _block})) == {["b", "runAsNonRoot=false"], ["init", "runAsUser=0"]} with input as fx.spec_input(spec)
}

test_run_as_root_rule_off_allowed if {
	_rule("runAsRoot", {}) == set() with input as fx.containers_input([fx.with_sc("c", {"runAsUser": 0})])
}

#
# readOnlyRootFilesystem
#

_ro(sc) := fx.pairs(fs) if {
	fs := _rule("readOnlyRootFilesystem", {"readOnlyRootFilesystem": _block}) with input as fx.containers_input([fx.with_sc("c", sc)])
}

test_read_only_root_filesystem_true_allowed if {
	_ro({"readOnlyRootFilesystem": true}) == set()
}

test_read_only_root_filesystem_false_denied if {
	_ro({"readOnlyRootFilesystem": false}) == {["c", "readOnlyRootFilesystem=false"]}
}

test_read_only_root_filesystem_unset_denied if {
	fs := _rule("readOnlyRootFilesystem", {"readOnlyRootFilesystem": _block}) with input as fx.containers_input([fx.with_sc("c", {})])
	fs == {{
		"rule": "readOnlyRootFilesystem",
		"field": "containerSecurityContext",
		"value": "readOnlyRootFilesystem=unset",
		"container": "c",
	}}
}

test_read_only_root_filesystem_pod_level_bypass_denied if {
	spec := {"securityContext": {"readOnlyRootFilesystem": true}, "containers": [fx.with_sc("c", {})]}
	fx.pairs(_rule("readOnlyRootFilesystem", {"readOnlyRootFilesystem": _block})) == {["c", "readOnlyRootFilesystem=unset"]} with input as fx.spec_input(spec)
}

test_read_only_root_filesystem_rule_off_allowed if {
	_rule("readOnlyRootFilesystem", {}) == set() with input as fx.containers_input([fx.with_sc("c", {})])
}

#
# resources
#

_all_resources := {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "128Mi"}}

_resources(require, resources) := fx.pairs(fs) if {
	c := {"name": "c", "image": "nginx:1.25", "resources": resources}
	fs := _rule("resources", {"resources": {"action": "block", "require": require}}) with input as fx.containers_input([c])
}

test_resources_all_set_allowed if {
	_resources(["cpuRequests", "cpuLimits", "memoryRequests", "memoryLimits"], _all_resources) == set()
}

test_resources_cpu_requests_missing_denied if {
	_resources(["cpuRequests"], {"limits": {"cpu": "1"}}) == {["c", "requests.cpu missing"]}
}

test_resources_cpu_requests_set_allowed if {
	_resources(["cpuRequests"], {"requests": {"cpu": "1"}}) == set()
}

test_resources_cpu_limits_missing_denied if {
	_resources(["cpuLimits"], {"requests": {"cpu": "1"}}) == {["c", "limits.cpu missing"]}
}

test_resources_cpu_limits_set_allowed if {
	_resources(["cpuLimits"], {"limits": {"cpu": "1"}}) == set()
}

test_resources_memory_requests_missing_denied if {
	_resources(["memoryRequests"], {"limits": {"memory": "1Gi"}}) == {["c", "requests.memory missing"]}
}

test_resources_memory_requests_set_allowed if {
	_resources(["memoryRequests"], {"requests": {"memory": "1Gi"}}) == set()
}

test_resources_memory_limits_missing_denied if {
	_resources(["memoryLimits"], {"requests": {"memory": "1Gi"}}) == {["c", "limits.memory missing"]}
}

test_resources_memory_limits_set_allowed if {
	_resources(["memoryLimits"], {"limits": {"memory": "1Gi"}}) == set()
}

test_resources_none_set_all_four_denied if {
	fs := _rule("resources", {"resources": {"action": "block", "require": ["cpuRequests", "cpuLimits", "memoryRequests", "memoryLimits"]}}) with input as fx.containers_input([fx.container("c", "nginx:1.25")])
	fs == {
		{"rule": "resources", "field": "resources", "value": "requests.cpu missing", "container": "c"},
		{"rule": "resources", "field": "resources", "value": "limits.cpu missing", "container": "c"},
		{"rule": "resources", "field": "resources", "value": "requests.memory missing", "container": "c"},
		{"rule": "resources", "field": "resources", "value": "limits.memory missing", "container": "c"},
	}
}

test_resources_ephemeral_container_exempt_allowed if {
	spec := {
		"containers": [{"name": "c", "image": "nginx:1.25", "resources": _all_resources}],
		"ephemeralContainers": [fx.container("debugger", "busybox")],
	}
	_rule("resources", {"resources": {"action": "block", "require": ["cpuRequests", "memoryLimits"]}}) == set() with input as fx.spec_input(spec)
}

test_resources_init_container_denied if {
	spec := {
		"containers": [{"name": "c", "image": "nginx:1.25", "resources": _all_resources}],
		"initContainers": [fx.container("init", "busybox")],
	}
	fx.pairs(_rule("resources", {"resources": {"action": "block", "require": ["memoryLimits"]}})) == {["init", "limits.memory missing"]} with input as fx.spec_input(spec)
}

test_resources_rule_off_allowed if {
	_rule("resources", {}) == set() with input as fx.containers_input([fx.container("c", "nginx:1.25")])
}

#
# null fields (a key left empty in YAML) read as unset
#

test_null_security_context_read_as_unset_denied if {
	rules := {
		"privileged": _block,
		"capabilities": _preset("baseline"),
		"allowPrivilegeEscalation": _block,
		"runAsRoot": _block,
		"readOnlyRootFilesystem": _block,
		"resources": {"action": "block", "require": ["cpuLimits"]},
	}
	spec := {"securityContext": null, "containers": [{"name": "c", "image": "nginx", "securityContext": null, "resources": null}]}
	fs := _findings(rules) with input as fx.spec_input(spec)
	{[f.rule, f.value] | some f in fs} == {
		["capabilities", "NET_RAW"],
		["allowPrivilegeEscalation", "allowPrivilegeEscalation=unset"],
		["runAsRoot", "runAsNonRoot unset"],
		["readOnlyRootFilesystem", "readOnlyRootFilesystem=unset"],
		["resources", "limits.cpu missing"],
	}
}

test_null_capabilities_read_as_unset_denied if {
	_caps(_preset("baseline"), null) == {"NET_RAW"}
	fs := _rule("capabilities", {"capabilities": _preset("baseline")}) with input as fx.containers_input([fx.with_sc("c", {"capabilities": null})])
	fx.pairs(fs) == {["c", "NET_RAW"]}
	_caps(_preset("baseline"), {"drop": null, "add": null}) == {"NET_RAW"}
}

test_null_pod_security_context_with_container_non_root_allowed if {
	spec := {"securityContext": null, "containers": [fx.with_sc("c", {"runAsNonRoot": true})]}
	_rule("runAsRoot", {"runAsRoot": _block}) == set() with input as fx.spec_input(spec)
}

test_null_resource_requests_denied if {
	_resources(["cpuRequests"], {"requests": null, "limits": {"cpu": "1"}}) == {["c", "requests.cpu missing"]}
}

#
# findings: every family together
#

test_findings_union_of_families_denied if {
	rules := {
		"privileged": _block,
		"capabilities": _preset("restrict-nondefaults"),
		"allowPrivilegeEscalation": _block,
		"runAsRoot": _block,
		"readOnlyRootFilesystem": _block,
		"resources": {"action": "log", "require": ["memoryLimits"]},
	}
	sc := {"privileged": true, "capabilities": {"add": ["SYS_ADMIN"]}, "runAsUser": 0}
	fs := _findings(rules) with input as fx.containers_input([fx.with_sc("c", sc)])
	{[f.rule, f.value] | some f in fs} == {
		["privileged", "true"],
		["capabilities", "SYS_ADMIN"],
		["allowPrivilegeEscalation", "allowPrivilegeEscalation=unset"],
		["runAsRoot", "runAsUser=0"],
		["readOnlyRootFilesystem", "readOnlyRootFilesystem=unset"],
		["resources", "limits.memory missing"],
	}
}

test_findings_no_rules_allowed if {
	_findings({}) == set() with input as fx.containers_input([fx.with_sc("c", {"privileged": true})])
}
