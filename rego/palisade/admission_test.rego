package palisade.admission_test

import data.palisade.admission
import data.palisade.lib.decision as lib
import data.palisade.test.fixtures as fx

_deployment := {
	"privileged": {"action": "block"},
	"runAsRoot": {"action": "log"},
	"readOnlyRootFilesystem": {"action": "log"},
	"kubectlAccess": {"action": "block", "operations": ["exec", "attach", "portForward", "ephemeralContainers"], "groups": ["sre"]},
}

_policy := fx.policy(_deployment, {"privileged": {"action": "terminate"}})

_safe := {"runAsNonRoot": true, "readOnlyRootFilesystem": true}

_privileged := {"privileged": true, "runAsNonRoot": true, "readOnlyRootFilesystem": true}

_pod(ns, sc) := fx.pod_in(ns, {"containers": [fx.with_sc("app", sc)]})

_decision(p, req) := d if {
	d := admission.decision with data.palisade.policy as p with input as req
}

_rules_of(d) := {v.rule | some v in d.violations}

test_compliant_pod_allowed if {
	_decision(_policy, fx.create(_pod("shop", _safe))) == {"allowed": true, "violations": set(), "warnings": []}
}

test_privileged_pod_denied if {
	d := _decision(_policy, fx.create(_pod("shop", _privileged)))
	d.allowed == false
	d.warnings == []
	d.violations == {{
		"rule": "privileged",
		"action": "block",
		"field": "containerSecurityContext",
		"value": "true",
		"containers": ["app"],
		"message": `containerSecurityContext violates rule privileged "true" in container(s) "app" (block)`,
	}}
}

test_log_violations_warn_allowed if {
	d := _decision(_policy, fx.create(_pod("shop", {})))
	d.allowed == true
	d.warnings == [
		`containerSecurityContext violates rule readOnlyRootFilesystem "readOnlyRootFilesystem=unset" in container(s) "app" (log)`,
		`containerSecurityContext violates rule runAsRoot "runAsNonRoot unset" in container(s) "app" (log)`,
	]
}

test_block_and_log_violations_denied if {
	d := _decision(_policy, fx.create(_pod("shop", {"privileged": true})))
	d.allowed == false
	_rules_of(d) == {"privileged", "runAsRoot", "readOnlyRootFilesystem"}
	count(d.warnings) == 2
}

test_update_checked_denied if {
	d := _decision(_policy, fx.admission_input(fx.request("UPDATE", "", _pod("shop", _privileged))))
	d.allowed == false
}

# _update is the UPDATE of old to new.
_update(old, new) := fx.admission_input(object.union(fx.request("UPDATE", "", new), {"oldObject": old}))

test_update_of_labels_only_allowed if {
	old := _pod("shop", _privileged)
	new := json.patch(old, [{"op": "add", "path": "/metadata/labels/palisade.dev~1isolated", "value": "privileged"}])
	_decision(_policy, _update(old, new)) == {"allowed": true, "violations": set(), "warnings": []}
}

test_update_of_the_spec_checked_denied if {
	old := _pod("shop", _privileged)
	new := json.patch(old, [{"op": "replace", "path": "/spec/containers/0/image", "value": "ghcr.io/acme/app:1.1"}])
	_rules_of(_decision(_policy, _update(old, new))) == {"privileged"}
}

_deployment_of(sc, replicas) := {
	"apiVersion": "apps/v1",
	"kind": "Deployment",
	"metadata": {"name": "web", "namespace": "shop"},
	"spec": {"replicas": replicas, "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [fx.with_sc("app", sc)]}}},
}

test_scaling_a_workload_allowed if {
	d := _decision(_policy, _update(_deployment_of(_privileged, 1), _deployment_of(_privileged, 0)))
	d.violations == set()
}

test_changing_a_workload_template_checked_denied if {
	old := _deployment_of(_safe, 1)
	d := _decision(_policy, _update(old, _deployment_of(_privileged, 1)))
	d.allowed == false
	labels := json.patch(_deployment_of(_privileged, 1), [{"op": "add", "path": "/spec/template/metadata/labels/tier", "value": "x"}])
	_rules_of(_decision(_policy, _update(_deployment_of(_privileged, 1), labels))) == {"privileged"}
}

test_delete_ignored_allowed if {
	req := object.union(fx.request("DELETE", "", _pod("shop", _privileged)), {"object": null, "oldObject": _pod("shop", _privileged)})
	_decision(_policy, fx.admission_input(req)) == {"allowed": true, "violations": set(), "warnings": []}
}

test_status_update_ignored_allowed if {
	d := _decision(_policy, fx.admission_input(fx.request("UPDATE", "status", _pod("shop", _privileged))))
	d.violations == set()
}

test_deployment_denied if {
	deployment := {
		"kind": "Deployment",
		"metadata": {"name": "d", "namespace": "shop"},
		"spec": {"template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [fx.with_sc("app", _privileged)]}}},
	}
	d := _decision(_policy, fx.create(deployment))
	d.allowed == false
	_rules_of(d) == {"privileged"}
}

test_cron_job_denied if {
	cron_job := {
		"kind": "CronJob",
		"metadata": {"name": "c", "namespace": "shop"},
		"spec": {"schedule": "@hourly", "jobTemplate": {"spec": {"template": {"spec": {"containers": [fx.with_sc("app", _privileged)]}}}}},
	}
	_decision(_policy, fx.create(cron_job)).allowed == false
}

test_non_workload_allowed if {
	_decision(_policy, fx.create({"kind": "ConfigMap", "metadata": {"name": "c", "namespace": "shop"}, "data": {}})) == {"allowed": true, "violations": set(), "warnings": []}
}

#
# kubectl access
#

_exec(user, groups) := fx.admission_input(object.union(
	fx.request("CONNECT", "exec", {"kind": "PodExecOptions", "container": "app", "command": ["sh"]}),
	{"namespace": "shop", "name": "p", "userInfo": {"username": user, "groups": groups}},
))

test_exec_denied if {
	d := _decision(_policy, _exec("alice", ["dev"]))
	d.allowed == false
	d.violations == {{
		"rule": "kubectlAccess",
		"action": "block",
		"field": "kubectl",
		"value": "exec",
		"containers": ["app"],
		"message": `kubectl violates rule kubectlAccess "exec" in container(s) "app" (block)`,
	}}
}

test_exec_by_exempt_group_allowed if {
	_decision(_policy, _exec("bob", ["sre"])) == {"allowed": true, "violations": set(), "warnings": []}
}

# CONNECT runs the kubectl rule only, even if its object were a pod.
test_connect_only_kubectl_rules_denied if {
	req := fx.admission_input(fx.request("CONNECT", "attach", _pod("shop", _privileged)))
	_rules_of(_decision(_policy, req)) == {"kubectlAccess"}
}

test_ephemeral_containers_both_rule_sets_denied if {
	old := fx.pod_in("shop", {"containers": [fx.with_sc("app", _safe)]})
	new := fx.pod_in("shop", {
		"containers": [fx.with_sc("app", _safe)],
		"ephemeralContainers": [fx.with_sc("debugger", _privileged)],
	})
	req := fx.admission_input(object.union(fx.request("UPDATE", "ephemeralcontainers", new), {"oldObject": old}))
	d := _decision(_policy, req)
	d.allowed == false
	{[v.rule, v.containers] | some v in d.violations} == {["privileged", ["debugger"]], ["kubectlAccess", ["debugger"]]}
}

test_ephemeral_container_with_system_image_denied if {
	debugger := object.union(fx.with_sc("debugger", _safe), {"image": "ghcr.io/palisade-dev/palisade:v0.1.0"})
	new := fx.pod_in("shop", {"containers": [fx.with_sc("app", _safe)], "ephemeralContainers": [debugger]})
	d := _decision(_policy, fx.admission_input(fx.request("UPDATE", "ephemeralcontainers", new)))
	d.allowed == false
	_rules_of(d) == {"kubectlAccess"}
}

test_ephemeral_containers_exempt_group_pod_rules_denied if {
	new := fx.pod_in("shop", {"containers": [fx.with_sc("app", _safe)], "ephemeralContainers": [fx.with_sc("debugger", _privileged)]})
	req := fx.admission_input(object.union(fx.request("UPDATE", "ephemeralcontainers", new), {"userInfo": {"username": "bob", "groups": ["sre"]}}))
	_rules_of(_decision(_policy, req)) == {"privileged"}
}

#
# mode, definitions, exceptions
#

test_audit_mode_warned_allowed if {
	p := object.union(_policy, {"mode": "audit"})
	d := _decision(p, fx.create(_pod("shop", _privileged)))
	d.allowed == true
	d.warnings == [`containerSecurityContext violates rule privileged "true" in container(s) "app" (log)`]
}

_namespaced_policy := object.union(_policy, {"namespaced": [
	{"name": "lab", "namespaces": ["lab"], "deployment": {"runAsRoot": {"action": "log"}}},
	{"name": "payments", "namespaces": ["payments"], "deployment": {"privileged": {"action": "block"}, "readOnlyRootFilesystem": {"action": "block"}}},
]})

test_namespaced_definition_laxer_allowed if {
	_decision(_namespaced_policy, fx.create(_pod("lab", _privileged))) == {"allowed": true, "violations": set(), "warnings": []}
}

test_namespaced_definition_stricter_denied if {
	sc := {"runAsNonRoot": true}
	_decision(_namespaced_policy, fx.create(_pod("shop", sc))).allowed == true
	d := _decision(_namespaced_policy, fx.create(_pod("payments", sc)))
	d.allowed == false
	_rules_of(d) == {"readOnlyRootFilesystem"}
}

test_definition_without_deployment_tab_allowed if {
	p := object.union(_policy, {"namespaced": [{"name": "lab", "namespaces": ["lab"]}]})
	_decision(p, fx.create(_pod("lab", _privileged))) == {"allowed": true, "violations": set(), "warnings": []}
	lib.rules == {} with data.palisade.policy as p with input as fx.create(_pod("lab", _privileged))
}

test_system_namespace_allowed if {
	_decision(_policy, fx.create(_pod("palisade-system", _privileged))).violations == set()
}

test_system_image_allowed if {
	pod := fx.pod_in("shop", {"containers": [object.union(fx.with_sc("admission", _privileged), {"image": "ghcr.io/palisade-dev/admission:1.0"})]})
	_decision(_policy, fx.create(pod)).allowed == true
}

test_expired_exception_denied if {
	e := {"name": "old_debug", "rules": ["privileged"], "podLabels": {"app": "web"}, "expiresNs": time.parse_rfc3339_ns("2025-06-30T23:59:59Z")}
	p := object.union(_policy, {"clusterWide": {"exceptions": [e]}})
	_decision(p, fx.create(_pod("shop", _privileged))).allowed == false
}

test_live_exception_allowed if {
	e := {"name": "legacy", "rules": ["privileged"], "podLabels": {"app": "web"}, "expiresNs": time.parse_rfc3339_ns("2026-12-31T23:59:59Z")}
	p := object.union(_policy, {"clusterWide": {"exceptions": [e]}})
	_decision(p, fx.create(_pod("shop", _privileged))).allowed == true
}
