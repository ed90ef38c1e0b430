package palisade.runtime_test

import data.palisade.runtime
import data.palisade.test.fixtures as fx

# _policy returns a cluster policy whose cluster-wide definition applies
# the ruleset named r, defined by spec.
_policy(spec) := object.union(fx.policy({}, {}), {
	"clusterWide": {"runtime": {"rulesets": ["r"]}},
	"rulesets": {"r": spec},
})

# _file returns an enforce ruleset with one file selector and one
# response matching it.
_file(selector, actions) := {
	"mode": "enforce",
	"file": {
		"selectors": [object.union({"name": "s"}, selector)],
		"responses": [{"match": ["s"], "actions": actions}],
	},
}

_process(selector, actions) := {
	"mode": "enforce",
	"process": {
		"selectors": [object.union({"name": "s"}, selector)],
		"responses": [{"match": ["s"], "actions": actions}],
	},
}

_container := {
	"imageFullName": "ghcr.io/acme/app",
	"imageName": "acme/app",
	"imageTag": "1.0",
	"namespace": "shop",
	"podName": "web-7f9c",
	"podLabels": {"app": "web-frontend", "tier": "front"},
	"clusterId": "c-123",
	"clusterName": "prod",
	"workload": "Deployment/web",
	"containerName": "app",
}

_file_event(operation, path) := {
	"kind": "file",
	"operation": operation,
	"path": path,
	"processExecutable": "/bin/sh",
	"processName": "sh",
	"interactive": false,
	"onVolume": false,
	"onVolumeFile": false,
}

_exec(executable, name, interactive) := {
	"kind": "process",
	"operation": "exec",
	"path": executable,
	"processExecutable": executable,
	"processName": name,
	"interactive": interactive,
}

_input(event) := {"event": event, "facts": {"container": _container}}

_in_container(event, changes) := {"event": event, "facts": {"container": object.union(_container, changes)}}

_write := _file_event("modifyFile", "/etc/passwd")

# _decide evaluates the decision for a ruleset spec and an input.
_decide(spec, inp) := d if {
	d := runtime.decision with data.palisade.policy as _policy(spec) with input as inp
}

# _hits is true when a file selector matches _write in the default container.
_hits(selector) if {
	_decide(_file(selector, ["alert"]), _input(_write)).actions == ["alert"]
}

_hits_in(selector, changes) if {
	_decide(_file(selector, ["alert"]), _in_container(_write, changes)).actions == ["alert"]
}

_hits_event(selector, event) if {
	_decide(_file(selector, ["alert"]), _input(event)).actions == ["alert"]
}

#
# the decision
#

test_decision_shape_reports_match if {
	d := _decide(_file({"operation": ["modifyFile"]}, ["alert", "block", "log"]), _input(_write))
	d == {
		"actions": ["alert", "block", "log"],
		"matches": {{
			"ruleset": "r", "response": 0, "mode": "enforce",
			"actions": ["alert", "block", "log"], "selectors": ["s"],
		}},
		"observe": false,
	}
}

test_no_match_empty_decision if {
	d := _decide(_file({"operation": ["deleteFile"]}, ["alert"]), _input(_write))
	d == {"actions": [], "matches": set(), "observe": false}
}

test_empty_selector_matches_every_event_of_its_section if _hits({})

test_process_section_ignores_file_events_no_match if {
	d := _decide(_process({}, ["alert"]), _input(_write))
	count(d.matches) == 0
}

test_unknown_kind_no_match if {
	d := _decide(_file({}, ["alert"]), _input(object.union(_write, {"kind": "network"})))
	count(d.matches) == 0
}

test_host_process_never_matched if {
	d := _decide(_file({}, ["alert", "block"]), {"event": _write, "facts": {}})
	d.actions == []
}

test_system_namespace_never_matched if {
	d := _decide(_file({}, ["alert", "block"]), _in_container(_write, {"namespace": "palisade-system"}))
	d.actions == []
}

test_empty_namespace_is_default if {
	_hits_in({"kubernetesNamespace": ["default"]}, {"namespace": ""})
}

#
# selector conditions
#

test_operation_listed_matches if _hits({"operation": ["createFile", "modifyFile"]})

test_operation_unlisted_no_match if not _hits({"operation": ["createFile", "deleteFile"]})

test_image_full_name_matches if _hits({"containerImageFullName": ["docker.io/library/nginx", "ghcr.io/acme/app"]})

test_image_full_name_is_exact_no_match if not _hits({"containerImageFullName": ["ghcr.io/acme"]})

test_image_name_matches if _hits({"containerImageName": ["acme/app"]})

test_image_name_other_no_match if not _hits({"containerImageName": ["acme/app2"]})

test_image_tag_matches if _hits({"containerImageTag": ["1.0"]})

test_image_tag_other_no_match if not _hits({"containerImageTag": ["1.0.1"]})

test_cluster_id_and_name_match if _hits({"kubernetesClusterId": ["c-123"], "kubernetesClusterName": ["prod"]})

test_cluster_name_other_no_match if not _hits({"kubernetesClusterName": ["staging"]})

test_cluster_id_other_no_match if not _hits({"kubernetesClusterId": ["c-1"]})

test_namespace_matches if _hits({"kubernetesNamespace": ["payments", "shop"]})

test_namespace_other_no_match if not _hits({"kubernetesNamespace": ["payments"]})

test_conditions_are_anded_no_match if not _hits({"kubernetesNamespace": ["shop"], "containerImageTag": ["2.0"]})

test_pod_name_exact_matches if _hits({"kubernetesPodName": ["web-7f9c"]})

test_pod_name_trailing_wildcard_matches if _hits({"kubernetesPodName": ["api-*", "web-*"]})

test_pod_name_prefix_without_wildcard_no_match if not _hits({"kubernetesPodName": ["web-"]})

test_pod_name_inner_star_is_literal_no_match if not _hits({"kubernetesPodName": ["w*-7f9c"]})

test_pod_name_lone_star_matches_all if _hits({"kubernetesPodName": ["*"]})

test_workload_exact_matches if _hits({"kubernetesWorkload": ["StatefulSet/db", "Deployment/web"]})

test_workload_other_no_match if not _hits({"kubernetesWorkload": ["Deployment/web2"]})

test_workload_prefix_without_wildcard_no_match if not _hits({"kubernetesWorkload": ["Deployment/we"]})

test_workload_trailing_wildcard_matches if _hits({"kubernetesWorkload": ["Deployment/*"]})

test_workload_other_kind_no_match if not _hits({"kubernetesWorkload": ["StatefulSet/*"]})

test_workload_inner_star_is_literal_no_match if not _hits({"kubernetesWorkload": ["*/web"]})

test_workload_missing_fact_no_match if {
	inp := {"event": _write, "facts": {"container": object.remove(_container, ["workload"])}}
	_decide(_file({"kubernetesWorkload": ["Deployment/web"]}, ["alert"]), inp).actions == []
}

test_container_name_matches if _hits({"containerName": ["sidecar", "app"]})

test_container_name_is_exact_no_match if not _hits({"containerName": ["ap"]})

test_container_name_has_no_wildcard_no_match if not _hits({"containerName": ["a*"]})

# A learned exclusion, as the policy loader compiles LearnedRules: it
# spares its own workload's container and no other.
_learned_exclusion := {
	"mode": "enforce",
	"process": {
		"selectors": [
			{"name": "all_execs", "operation": ["exec"]},
			{
				"name": "learned.0.process.0",
				"processExecutable": ["/usr/bin/nginx"],
				"kubernetesNamespace": ["shop"],
				"kubernetesWorkload": ["Deployment/web"],
				"containerName": ["app"],
				"sessionLeaderInteractive": false,
			},
		],
		"responses": [{"match": ["all_execs"], "exclude": ["learned.0.process.0"], "actions": ["alert"]}],
	},
}

test_learned_exclusion_spares_its_workload if {
	_decide(_learned_exclusion, _input(_exec("/usr/bin/nginx", "nginx", false))).actions == []
}

test_learned_exclusion_not_another_workload if {
	inp := _in_container(_exec("/usr/bin/nginx", "nginx", false), {"workload": "Deployment/api"})
	_decide(_learned_exclusion, inp).actions == ["alert"]
}

test_learned_exclusion_not_another_container if {
	inp := _in_container(_exec("/usr/bin/nginx", "nginx", false), {"containerName": "sidecar"})
	_decide(_learned_exclusion, inp).actions == ["alert"]
}

test_learned_exclusion_not_interactive if {
	_decide(_learned_exclusion, _input(_exec("/usr/bin/nginx", "nginx", true))).actions == ["alert"]
}

test_pod_label_exact_matches if _hits({"kubernetesPodLabel": ["tier:front"]})

test_pod_label_trailing_wildcard_matches if _hits({"kubernetesPodLabel": ["app:web*"]})

test_pod_label_value_prefix_without_wildcard_no_match if not _hits({"kubernetesPodLabel": ["app:web"]})

test_pod_label_other_key_no_match if not _hits({"kubernetesPodLabel": ["role:web*"]})

test_pod_label_any_value_matches if _hits({"kubernetesPodLabel": ["app:*"]})

test_pod_label_without_colon_no_match if not _hits({"kubernetesPodLabel": ["app"]})

test_pod_label_value_with_colon_matches if {
	_hits_in({"kubernetesPodLabel": ["url:http://x*"]}, {"podLabels": {"url": "http://x.example"}})
}

test_pod_without_labels_no_match if {
	inp := {"event": _write, "facts": {"container": object.remove(_container, ["podLabels"])}}
	_decide(_file({"kubernetesPodLabel": ["app:*"]}, ["alert"]), inp).actions == []
}

test_target_path_exact_matches if _hits({"targetFilePath": ["/etc/passwd"]})

test_target_path_star_within_segment_matches if _hits({"targetFilePath": ["/etc/*"]})

test_target_path_star_not_across_segments_no_match if {
	not _hits_event({"targetFilePath": ["/etc/*"]}, _file_event("modifyFile", "/etc/ssl/cert.pem"))
}

test_target_path_double_star_across_segments_matches if {
	_hits_event({"targetFilePath": ["/etc/**"]}, _file_event("modifyFile", "/etc/ssl/certs/ca.pem"))
}

test_target_path_sibling_prefix_no_match if {
	not _hits_event({"targetFilePath": ["/etc/**"]}, _file_event("modifyFile", "/etcetera/passwd"))
}

test_target_path_other_no_match if not _hits({"targetFilePath": ["/usr/bin/**"]})

test_process_executable_matches if _hits({"processExecutable": ["/bin/*"]})

test_process_executable_other_no_match if not _hits({"processExecutable": ["/usr/bin/*"]})

test_process_name_matches if _hits({"processName": ["bash", "sh"]})

test_process_name_other_no_match if not _hits({"processName": ["bash"]})

test_interactive_required_matches if {
	d := _decide(_process({"sessionLeaderInteractive": true}, ["alert"]), _input(_exec("/bin/sh", "sh", true)))
	d.actions == ["alert"]
}

test_interactive_required_batch_no_match if {
	d := _decide(_process({"sessionLeaderInteractive": true}, ["alert"]), _input(_exec("/bin/sh", "sh", false)))
	d.actions == []
}

test_non_interactive_required_matches_without_field if {
	d := _decide(_process({"sessionLeaderInteractive": false}, ["alert"]), _input({"kind": "process", "operation": "fork"}))
	d.actions == ["alert"]
}

test_ignore_volume_mounts_skips_volume_no_match if {
	not _hits_event({"ignoreVolumeMounts": true}, object.union(_write, {"onVolume": true}))
}

test_ignore_volume_mounts_keeps_root_fs_matches if _hits({"ignoreVolumeMounts": true})

test_ignore_volume_files_skips_file_mount_no_match if {
	not _hits_event({"ignoreVolumeFiles": true}, object.union(_write, {"onVolume": true, "onVolumeFile": true}))
}

test_ignore_volume_files_keeps_directory_volume_matches if {
	_hits_event({"ignoreVolumeFiles": true}, object.union(_write, {"onVolume": true}))
}

#
# responses
#

_two := {
	"mode": "enforce",
	"file": {
		"selectors": [
			{"name": "etc", "targetFilePath": ["/etc/**"]},
			{"name": "writes", "operation": ["modifyFile"]},
			{"name": "shadow", "targetFilePath": ["/etc/shadow"]},
			{"name": "sh", "processName": ["sh"]},
		],
		"responses": [
			{"match": ["etc", "shadow"], "exclude": ["sh"], "actions": ["log"]},
			{"match": ["shadow", "writes", "etc"], "actions": ["alert", "block"]},
			{"match": ["shadow"], "actions": ["alert"]},
		],
	},
}

test_exclude_removes_response_and_match_lists_selectors_sorted if {
	d := _decide(_two, _input(_write))
	d.actions == ["alert", "block"]
	d.matches == {{"ruleset": "r", "response": 1, "mode": "enforce", "actions": ["alert", "block"], "selectors": ["etc", "writes"]}}
}

test_exclude_not_hit_keeps_response if {
	d := _decide(_two, _input(object.union(_write, {"processName": "python"})))
	{m.response | some m in d.matches} == {0, 1}
	d.actions == ["alert", "block", "log"]
}

test_unknown_selector_in_match_ignored if {
	spec := {"file": {"selectors": [{"name": "s"}], "responses": [{"match": ["nope"], "actions": ["alert"]}]}}
	count(_decide(spec, _input(_write)).matches) == 0
}

#
# modes
#

test_mode_unset_is_enforce if {
	d := _decide({"file": _file({}, ["alert", "block"]).file}, _input(_write))
	d.actions == ["alert", "block"]
}

test_audit_turns_block_into_alert if {
	d := _decide(object.union(_file({}, ["alert", "block", "log"]), {"mode": "audit"}), _input(_write))
	d.actions == ["alert", "log"]
	d.observe == false
}

test_learning_keeps_log_and_observes if {
	d := _decide(object.union(_file({}, ["alert", "block", "log"]), {"mode": "learning"}), _input(_write))
	d.actions == ["log"]
	d.observe == true
}

test_learning_without_log_observes_only if {
	d := _decide(object.union(_file({}, ["alert", "block"]), {"mode": "learning"}), _input(_write))
	d.actions == []
	d.observe == true
	count(d.matches) == 1
}

test_global_audit_mode_never_blocks if {
	p := object.union(_policy(_file({}, ["alert", "block"])), {"mode": "audit"})
	d := runtime.decision with data.palisade.policy as p with input as _input(_write)
	d.actions == ["alert"]
	{m.mode | some m in d.matches} == {"audit"}
}

test_global_audit_mode_keeps_learning if {
	p := object.union(_policy(object.union(_file({}, ["alert", "block"]), {"mode": "learning"})), {"mode": "audit"})
	d := runtime.decision with data.palisade.policy as p with input as _input(_write)
	d.observe
	d.actions == []
}

#
# definition precedence
#

_by_namespace := object.union(fx.policy({}, {}), {
	"clusterWide": {"runtime": {"rulesets": ["wide"]}},
	"namespaced": [
		{"name": "pay", "namespaces": ["payments"], "runtime": {"rulesets": ["pay", "wide"]}},
		{"name": "quiet", "namespaces": ["quiet"]},
	],
	"namespaceIndex": {"payments": 0, "quiet": 1},
	"rulesets": {
		"wide": _file({}, ["log"]),
		"pay": _file({}, ["alert", "block"]),
	},
})

_rulesets_in(ns) := {m.ruleset | some m in d.matches} if {
	d := runtime.decision with data.palisade.policy as _by_namespace
		with input as _in_container(_write, {"namespace": ns})
}

test_cluster_wide_rulesets_apply_elsewhere if _rulesets_in("shop") == {"wide"}

test_namespaced_definition_takes_precedence if _rulesets_in("payments") == {"pay", "wide"}

test_namespaced_definition_without_rulesets_matches_nothing if _rulesets_in("quiet") == set()

test_namespaced_definition_found_without_index if {
	p := object.remove(_by_namespace, ["namespaceIndex"])
	d := runtime.decision with data.palisade.policy as p with input as _in_container(_write, {"namespace": "payments"})
	{m.ruleset | some m in d.matches} == {"pay", "wide"}
}

test_missing_ruleset_ignored if {
	p := object.union(_policy(_file({}, ["alert"])), {"clusterWide": {"runtime": {"rulesets": ["r", "gone"]}}})
	d := runtime.decision with data.palisade.policy as p with input as _input(_write)
	{m.ruleset | some m in d.matches} == {"r"}
}

#
# the example rulesets
#

_baseline := {
	"mode": "enforce",
	"file": {
		"selectors": [
			{"name": "new_executables", "operation": ["createExecutable", "modifyExecutable"]},
			{"name": "system_binaries", "operation": ["createFile", "modifyFile", "deleteFile"], "targetFilePath": ["/usr/bin/**", "/bin/**"]},
			{"name": "tmp", "targetFilePath": ["/tmp/**"]},
		],
		"responses": [
			{"match": ["new_executables"], "exclude": ["tmp"], "actions": ["alert", "block"]},
			{"match": ["system_binaries"], "actions": ["alert", "block"]},
		],
	},
}

test_drift_binary_outside_tmp_blocked if {
	_decide(_baseline, _input(_file_event("createExecutable", "/usr/local/bin/x"))).actions == ["alert", "block"]
}

test_drift_binary_in_tmp_allowed if {
	_decide(_baseline, _input(_file_event("createExecutable", "/tmp/build/x"))).actions == []
}

test_bypass_lookalike_system_path_allowed if {
	_decide(_baseline, _input(_file_event("modifyFile", "/usr/bin2/x"))).actions == []
}
