package palisade.continuous_test

import data.palisade.continuous
import data.palisade.test.fixtures as fx

_continuous := {
	"privileged": {"action": "terminate"},
	"hostNamespaces": {"action": "isolate"},
	"runAsRoot": {"action": "log"},
	"kubectlAccess": {"action": "log", "operations": ["exec", "attach", "portForward", "ephemeralContainers"]},
}

_policy := fx.policy({"privileged": {"action": "block"}, "readOnlyRootFilesystem": {"action": "block"}}, _continuous)

_safe := {"runAsNonRoot": true}

_pod(ns, spec) := fx.pod_in(ns, object.union({"containers": [fx.with_sc("app", _safe)]}, spec))

_decision(p, obj) := d if {
	d := continuous.decision with data.palisade.policy as p with input as fx.scan(obj)
}

test_compliant_pod_allowed if {
	_decision(_policy, _pod("shop", {})) == {"violations": set(), "schedule": "@every 5m"}
}

test_privileged_pod_terminated if {
	d := _decision(_policy, _pod("shop", {"containers": [fx.with_sc("app", {"privileged": true, "runAsNonRoot": true})]}))
	d.violations == {{
		"rule": "privileged",
		"action": "terminate",
		"field": "containerSecurityContext",
		"value": "true",
		"containers": ["app"],
		"message": `containerSecurityContext violates rule privileged "true" in container(s) "app" (terminate)`,
	}}
}

test_host_network_pod_isolated if {
	d := _decision(_policy, _pod("shop", {"hostNetwork": true}))
	{[v.rule, v.action, v.message] | some v in d.violations} == {["hostNamespaces", "isolate", `podSpec violates rule hostNamespaces "hostNetwork=true" (isolate)`]}
}

test_root_pod_logged if {
	d := _decision(_policy, _pod("shop", {"containers": [fx.container("app", "nginx")]}))
	{[v.rule, v.action] | some v in d.violations} == {["runAsRoot", "log"]}
}

test_audit_mode_logged if {
	p := object.union(_policy, {"mode": "audit"})
	spec := {"hostNetwork": true, "containers": [fx.with_sc("app", {"privileged": true})]}
	d := _decision(p, _pod("shop", spec))
	{[v.rule, v.action] | some v in d.violations} == {["privileged", "log"], ["hostNamespaces", "log"], ["runAsRoot", "log"]}
}

# Deployment rules (readOnlyRootFilesystem here) are not re-checked.
test_deployment_rules_ignored_allowed if {
	p := fx.policy({"readOnlyRootFilesystem": {"action": "block"}}, {})
	_decision(p, _pod("shop", {})).violations == set()
}

# kubectlAccess has no meaning for a running pod: even a continuous tab
# that named it (validation refuses it) yields no finding.
test_kubectl_access_rule_absent_allowed if {
	d := _decision(_policy, _pod("shop", {"ephemeralContainers": [fx.with_sc("debugger", _safe)]}))
	d.violations == set()
	count([f | some f in continuous.findings; f.rule == "kubectlAccess"]) == 0 with data.palisade.policy as _policy with input as fx.scan(_pod("shop", {}))
}

test_non_workload_allowed if {
	_decision(_policy, {"kind": "ConfigMap", "metadata": {"name": "c", "namespace": "shop"}}).violations == set()
	continuous.findings == set() with data.palisade.policy as _policy with input as fx.scan({"kind": "ConfigMap"})
}

test_schedule_from_definition_read if {
	p := object.union(_policy, {"clusterWide": {"continuous": {"schedule": "@every 10m"}}})
	_decision(p, _pod("shop", {})).schedule == "@every 10m"
}

test_schedule_missing_defaulted if {
	p := json.remove(_policy, ["clusterWide/continuous/schedule"])
	_decision(p, _pod("shop", {})).schedule == "@every 5m"
	q := json.remove(_policy, ["clusterWide/continuous"])
	_decision(q, _pod("shop", {})) == {"violations": set(), "schedule": "@every 5m"}
}

test_namespaced_definition_by_pod_namespace_selected if {
	p := object.union(_policy, {"namespaced": [{
		"name": "payments",
		"namespaces": ["payments"],
		"continuous": {"schedule": "@every 1m", "rules": {"runAsRoot": {"action": "terminate"}}},
	}]})
	root := {"containers": [fx.container("app", "nginx")]}
	d := _decision(p, _pod("payments", root))
	d.schedule == "@every 1m"
	{[v.rule, v.action] | some v in d.violations} == {["runAsRoot", "terminate"]}
	{[v.rule, v.action] | some v in _decision(p, _pod("shop", root)).violations} == {["runAsRoot", "log"]}
}

test_exception_expiry_against_facts_now_applied if {
	e := {"name": "legacy_root", "rules": ["runAsRoot"], "podLabels": {"app": "web"}, "expiresNs": time.parse_rfc3339_ns("2026-12-31T23:59:59Z")}
	p := object.union(_policy, {"clusterWide": {"exceptions": [e]}})
	obj := _pod("shop", {"containers": [fx.container("app", "nginx")]})
	_decision(p, obj).violations == set()
	later := object.union(fx.scan(obj), {"facts": {"now": "2027-01-01T00:00:00Z"}})
	count(continuous.decision.violations) == 1 with data.palisade.policy as p with input as later
	no_now := {"object": obj}
	count(continuous.decision.violations) == 1 with data.palisade.policy as p with input as no_now
}

test_system_namespace_allowed if {
	_decision(_policy, _pod("palisade-system", {"hostNetwork": true})).violations == set()
}
