package palisade.lib.decision_test

import data.palisade.lib.decision as lib
import data.palisade.test.fixtures as fx

_rules := {
	"privileged": {"action": "block"},
	"hostNamespaces": {"action": "block"},
	"runAsRoot": {"action": "log"},
	"kubectlAccess": {"action": "block"},
}

_policy := fx.policy(_rules, {})

# _policy_with returns _policy with these cluster-wide exceptions.
_policy_with(exceptions) := object.union(_policy, {"clusterWide": {"exceptions": exceptions}})

_priv(container) := {"rule": "privileged", "field": "containerSecurityContext", "value": "true", "container": container}

_host_network := {"rule": "hostNamespaces", "field": "podSpec", "value": "hostNetwork=true", "container": ""}

# The pod under evaluation: namespace shop, labels app=web and tier=front,
# service account web, containers a (ghcr.io/acme/app) and b (nginx).
_pod_in(ns, images) := {
	"kind": "Pod",
	"metadata": {"name": "p", "namespace": ns, "labels": {"app": "web", "tier": "front"}},
	"spec": {
		"serviceAccountName": "web",
		"containers": [fx.container(name, img) | some name, img in images],
	},
}

_images := {"a": "ghcr.io/acme/app:1.0", "b": "nginx:1.25"}

_input := fx.create(_pod_in("shop", _images))

# _kept returns the findings that survive the policy's exceptions for _input.
_kept(p, findings) := {f | some f in findings; not _excepted(p, f)}

_excepted(p, f) if lib.excepted(f) with data.palisade.policy as p with input as _input

_findings := {_priv("a"), _priv("b"), _host_network}

#
# definition selection
#

_lab := {
	"name": "lab",
	"namespaces": ["lab", "sandbox"],
	"deployment": {"runAsRoot": {"action": "log"}},
	"continuous": {"schedule": "@every 1h", "rules": {}},
}

_payments := {
	"name": "payments",
	"namespaces": ["payments"],
	"deployment": {"privileged": {"action": "block"}, "readOnlyRootFilesystem": {"action": "block"}},
	"continuous": {"schedule": "@every 5m", "rules": {}},
}

_namespaced_policy := object.union(fx.policy({"privileged": {"action": "block"}}, {}), {"namespaced": [_lab, _payments]})

test_definition_cluster_wide_for_unlisted_namespace_selected if {
	lib.definition == _namespaced_policy.clusterWide with data.palisade.policy as _namespaced_policy with input as fx.create(_pod_in("shop", _images))
}

test_definition_namespaced_for_listed_namespace_selected if {
	lib.definition == _lab with data.palisade.policy as _namespaced_policy with input as fx.create(_pod_in("lab", _images))
	lib.definition == _lab with data.palisade.policy as _namespaced_policy with input as fx.create(_pod_in("sandbox", _images))
	lib.definition == _payments with data.palisade.policy as _namespaced_policy with input as fx.create(_pod_in("payments", _images))
}

# A namespaced definition replaces the cluster-wide one as a whole, both
# when it is laxer (lab drops privileged) and when it is stricter
# (payments adds readOnlyRootFilesystem).
test_definition_namespaced_laxer_or_stricter_selected if {
	not lib.definition.deployment.privileged with data.palisade.policy as _namespaced_policy with input as fx.create(_pod_in("lab", _images))
	lib.definition.deployment.readOnlyRootFilesystem with data.palisade.policy as _namespaced_policy with input as fx.create(_pod_in("payments", _images))
	not lib.definition.deployment.readOnlyRootFilesystem with data.palisade.policy as _namespaced_policy with input as fx.create(_pod_in("shop", _images))
}

test_definition_without_namespaced_cluster_wide_selected if {
	lib.definition == _policy.clusterWide with data.palisade.policy as _policy with input as _input
}

test_definition_for_default_namespace_selected if {
	p := object.union(_namespaced_policy, {"namespaced": [object.union(_lab, {"namespaces": ["default"]})]})
	lib.definition.name == "lab" with data.palisade.policy as p with input as fx.create({"kind": "Pod", "spec": {"containers": []}})
}

test_exceptions_of_other_definition_not_excepted if {
	cw_exception := {"name": "shop_all", "namespaces": ["shop", "lab"]}
	p := object.union(_namespaced_policy, {"clusterWide": {"exceptions": [cw_exception]}})
	lib.exceptions == [cw_exception] with data.palisade.policy as p with input as fx.create(_pod_in("shop", _images))
	lib.exceptions == [] with data.palisade.policy as p with input as fx.create(_pod_in("lab", _images))
	lib.excepted(_priv("a")) with data.palisade.policy as p with input as fx.create(_pod_in("shop", _images))
	not lib.excepted(_priv("a")) with data.palisade.policy as p with input as fx.create(_pod_in("lab", _images))
}

# The rules are the deployment tab for an admission request, the
# continuous tab for a scan.
test_rules_of_entry_point_tab_selected if {
	p := fx.policy(_rules, {"privileged": {"action": "terminate"}})
	lib.rules == _rules with data.palisade.policy as p with input as _input
	lib.rules == {"privileged": {"action": "terminate"}} with data.palisade.policy as p with input as fx.scan(_pod_in("shop", _images))
	lib.rules == {} with data.palisade.policy as json.remove(p, ["clusterWide/continuous"]) with input as fx.scan(_pod_in("shop", _images))
}

#
# violations and messages
#

_violations(p, findings) := vs if {
	vs := lib.violations(findings) with data.palisade.policy as p with input as fx.create(_pod_in("shop", {"busybox-container": "busybox:1.36", "a": "nginx", "b": "nginx"}))
}

test_violation_container_message_formatted if {
	_violations(_policy, {_priv("busybox-container")}) == {{
		"rule": "privileged",
		"action": "block",
		"field": "containerSecurityContext",
		"value": "true",
		"containers": ["busybox-container"],
		"message": `containerSecurityContext violates rule privileged "true" in container(s) "busybox-container" (block)`,
	}}
}

test_violation_pod_message_formatted if {
	_violations(_policy, {_host_network}) == {{
		"rule": "hostNamespaces",
		"action": "block",
		"field": "podSpec",
		"value": "hostNetwork=true",
		"containers": [],
		"message": `podSpec violates rule hostNamespaces "hostNetwork=true" (block)`,
	}}
}

test_violations_of_several_containers_grouped if {
	vs := _violations(_policy, {_priv("b"), _priv("a")})
	count(vs) == 1
	some v in vs
	v.containers == ["a", "b"]
	v.message == `containerSecurityContext violates rule privileged "true" in container(s) "a", "b" (block)`
}

test_violations_distinct_values_not_grouped if {
	root := {"rule": "runAsRoot", "field": "containerSecurityContext", "container": "a"}
	findings := {
		object.union(root, {"value": "runAsUser=0"}),
		object.union(root, {"value": "runAsNonRoot unset", "container": "b"}),
		_priv("a"),
	}
	{[v.rule, v.value, v.action, v.containers] | some v in _violations(_policy, findings)} == {
		["runAsRoot", "runAsUser=0", "log", ["a"]],
		["runAsRoot", "runAsNonRoot unset", "log", ["b"]],
		["privileged", "true", "block", ["a"]],
	}
}

test_violations_pod_and_container_findings_of_one_value_grouped if {
	pod_level := object.union(_priv("a"), {"container": ""})
	vs := _violations(_policy, {_priv("a"), pod_level})
	[v.containers | some v in vs] == [["a"]]
}

test_violations_without_findings_empty if {
	_violations(_policy, set()) == set()
}

test_audit_mode_block_logged if {
	p := object.union(_policy, {"mode": "audit"})
	vs := _violations(p, {_priv("a"), _host_network})
	{v.action | some v in vs} == {"log"}
	some v in vs
	v.rule == "hostNamespaces"
	v.message == `podSpec violates rule hostNamespaces "hostNetwork=true" (log)`
}

test_effective_action_audit_logged if {
	every a in ["log", "block", "isolate", "terminate"] {
		lib.effective_action(a) == "log" with data.palisade.policy as {"mode": "audit"}
	}
}

test_effective_action_enforce_kept if {
	every a in ["log", "block", "isolate", "terminate"] {
		lib.effective_action(a) == a with data.palisade.policy as {"mode": "enforce"}
	}
}

#
# exceptions: each condition
#

test_exception_namespace_matches_excepted if {
	_kept(_policy_with([{"name": "e", "namespaces": ["dev", "shop"]}]), _findings) == set()
}

test_exception_other_namespace_not_excepted if {
	_kept(_policy_with([{"name": "e", "namespaces": ["dev"]}]), _findings) == _findings
}

test_exception_pod_labels_match_excepted if {
	_kept(_policy_with([{"name": "e", "podLabels": {"app": "web"}}]), _findings) == set()
	_kept(_policy_with([{"name": "e", "podLabels": {"app": "web", "tier": "front"}}]), _findings) == set()
}

test_exception_pod_labels_mismatch_not_excepted if {
	_kept(_policy_with([{"name": "e", "podLabels": {"app": "api"}}]), _findings) == _findings
	_kept(_policy_with([{"name": "e", "podLabels": {"app": "web", "tier": "back"}}]), _findings) == _findings
	_kept(_policy_with([{"name": "e", "podLabels": {"app": "web", "team": "a"}}]), _findings) == _findings
}

test_exception_service_account_matches_excepted if {
	_kept(_policy_with([{"name": "e", "serviceAccounts": ["build", "web"]}]), _findings) == set()
}

test_exception_service_account_mismatch_not_excepted if {
	_kept(_policy_with([{"name": "e", "serviceAccounts": ["default"]}]), _findings) == _findings
}

test_exception_default_service_account_excepted if {
	p := _policy_with([{"name": "e", "serviceAccounts": ["default"]}])
	lib.excepted(_priv("app")) with data.palisade.policy as p with input as fx.containers_input([fx.container("app", "nginx")])
}

# On a CONNECT nothing runs with a service account: an exception for the
# default service account does not cover kubectl exec.
test_exception_default_service_account_connect_not_excepted if {
	p := _policy_with([{"name": "e", "serviceAccounts": ["default"]}])
	exec := fx.admission_input(object.union(fx.request("CONNECT", "exec", {"kind": "PodExecOptions", "container": "app"}), {"namespace": "shop"}))
	finding := {"rule": "kubectlAccess", "field": "kubectl", "value": "exec", "container": "app"}
	not lib.excepted(finding) with data.palisade.policy as p with input as exec
}

test_exception_images_container_finding_excepted if {
	p := _policy_with([{"name": "e", "images": [{"prefix": "ghcr.io/acme/"}]}])
	_kept(p, _findings) == {_priv("b"), _host_network}
}

test_exception_images_normalised_reference_excepted if {
	p := _policy_with([{"name": "e", "images": [{"equals": "docker.io/library/nginx:1.25"}]}])
	_kept(p, {_priv("a"), _priv("b")}) == {_priv("a")}
}

test_exception_images_glob_excepted if {
	p := _policy_with([{"name": "e", "images": [{"glob": "ghcr.io/acme/*:*"}]}])
	_kept(p, {_priv("a"), _priv("b")}) == {_priv("b")}
}

test_exception_images_pod_finding_partial_match_not_excepted if {
	p := _policy_with([{"name": "e", "images": [{"prefix": "ghcr.io/acme/"}]}])
	not _excepted(p, _host_network)
	both := [{"prefix": "ghcr.io/acme/"}, {"prefix": "docker.io/library/nginx:"}]
	_excepted(_policy_with([{"name": "e", "images": both}]), _host_network)
}

test_exception_images_pod_finding_init_container_not_excepted if {
	p := _policy_with([{"name": "e", "images": [{"prefix": "ghcr.io/acme/"}]}])
	spec := {"containers": [fx.container("a", "ghcr.io/acme/app")], "initContainers": [fx.container("init", "busybox")]}
	not lib.excepted(_host_network) with data.palisade.policy as p with input as fx.create(fx.pod_in("shop", spec))
	lib.excepted(_host_network) with data.palisade.policy as p with input as fx.create(fx.pod_in("shop", {"containers": [fx.container("a", "ghcr.io/acme/app")]}))
}

test_exception_images_pod_finding_without_containers_not_excepted if {
	p := _policy_with([{"name": "e", "images": [{"glob": "**"}]}])
	exec := fx.admission_input(object.union(fx.request("CONNECT", "exec", {"kind": "PodExecOptions"}), {"namespace": "shop"}))
	not lib.excepted({"rule": "kubectlAccess", "field": "kubectl", "value": "exec", "container": ""}) with data.palisade.policy as p with input as exec
}

test_exception_rules_listed_excepted if {
	p := _policy_with([{"name": "e", "rules": ["privileged"], "namespaces": ["shop"]}])
	_kept(p, _findings) == {_host_network}
}

test_exception_one_condition_failing_not_excepted if {
	e := {"name": "e", "namespaces": ["shop"], "podLabels": {"app": "web"}, "serviceAccounts": ["web"], "images": [{"prefix": "ghcr.io/acme/"}]}
	_kept(_policy_with([e]), {_priv("a"), _priv("b")}) == {_priv("b")}
	_kept(_policy_with([object.union(e, {"namespaces": ["dev"]})]), {_priv("a")}) == {_priv("a")}
	_kept(_policy_with([object.union(e, {"podLabels": {"app": "api"}})]), {_priv("a")}) == {_priv("a")}
	_kept(_policy_with([object.union(e, {"serviceAccounts": ["build"]})]), {_priv("a")}) == {_priv("a")}
	_kept(_policy_with([object.union(e, {"rules": ["runAsRoot"]})]), {_priv("a")}) == {_priv("a")}
}

test_exception_any_of_several_excepted if {
	p := _policy_with([
		{"name": "one", "rules": ["privileged"], "namespaces": ["shop"]},
		{"name": "two", "rules": ["hostNamespaces"], "podLabels": {"app": "web"}},
	])
	_kept(p, _findings) == set()
}

#
# exceptions: expiry
#

_until(t) := {"name": "e", "namespaces": ["shop"], "expiresNs": time.parse_rfc3339_ns(t)}

test_exception_live_excepted if {
	_kept(_policy_with([_until("2026-12-31T23:59:59Z")]), _findings) == set()
}

test_exception_expired_not_excepted if {
	_kept(_policy_with([_until("2025-06-30T23:59:59Z")]), _findings) == _findings
}

test_exception_expiring_at_now_not_excepted if {
	_kept(_policy_with([_until(fx.now)]), _findings) == _findings
}

test_exception_expiring_without_now_not_excepted if {
	p := _policy_with([_until("2200-01-01T00:00:00Z")])
	_excepted(p, _priv("a"))
	no_facts := json.remove(_input, ["facts"])
	not lib.excepted(_priv("a")) with data.palisade.policy as p with input as no_facts
}

test_exception_not_expiring_without_now_excepted if {
	p := _policy_with([{"name": "e", "namespaces": ["shop"]}])
	no_facts := json.remove(_input, ["facts"])
	lib.excepted(_priv("a")) with data.palisade.policy as p with input as no_facts
}

#
# the system's own namespace and images
#

test_system_namespace_excepted if {
	lib.excepted(_priv("a")) with data.palisade.policy as _policy with input as fx.create(_pod_in("palisade-system", _images))
	lib.excepted(_host_network) with data.palisade.policy as _policy with input as fx.create(_pod_in("palisade-system", _images))
}

test_other_namespace_not_excepted if {
	not _excepted(_policy, _priv("a"))
	not _excepted(_policy, _host_network)
}

test_system_image_container_finding_excepted if {
	system := {"a": "ghcr.io/palisade-dev/admission:1.0", "b": "nginx:1.25"}
	lib.excepted(_priv("a")) with data.palisade.policy as _policy with input as fx.create(_pod_in("shop", system))
	not lib.excepted(_priv("b")) with data.palisade.policy as _policy with input as fx.create(_pod_in("shop", system))
}

test_system_image_pod_finding_partial_not_excepted if {
	mixed := {"a": "ghcr.io/palisade-dev/admission:1.0", "b": "nginx:1.25"}
	not lib.excepted(_host_network) with data.palisade.policy as _policy with input as fx.create(_pod_in("shop", mixed))
	all := {"a": "ghcr.io/palisade-dev/admission:1.0", "b": "ghcr.io/palisade-dev/sensor:1.0"}
	lib.excepted(_host_network) with data.palisade.policy as _policy with input as fx.create(_pod_in("shop", all))
}

# The system images are an exception for what runs, not for who gets in.
test_system_image_kubectl_access_not_excepted if {
	debug := {"a": "ghcr.io/acme/app:1.0", "debugger": "ghcr.io/palisade-dev/palisade:v0.1.0"}
	finding := {"rule": "kubectlAccess", "field": "kubectl", "value": "ephemeralContainers", "container": "debugger"}
	not lib.excepted(finding) with data.palisade.policy as _policy with input as fx.create(_pod_in("shop", debug))
	lib.excepted(_priv("debugger")) with data.palisade.policy as _policy with input as fx.create(_pod_in("shop", debug))
}

test_system_image_lookalike_not_excepted if {
	lookalike := {"a": "ghcr.io/palisade-dev-evil/admission:1.0", "b": "evil.com/ghcr.io/palisade-dev/x"}
	not lib.excepted(_priv("a")) with data.palisade.policy as _policy with input as fx.create(_pod_in("shop", lookalike))
	not lib.excepted(_priv("b")) with data.palisade.policy as _policy with input as fx.create(_pod_in("shop", lookalike))
}

test_violations_excepted_findings_left_out if {
	p := _policy_with([{"name": "e", "rules": ["privileged"], "images": [{"prefix": "docker.io/library/busybox:"}]}])
	vs := _violations(p, {_priv("busybox-container"), _priv("a"), _host_network})
	{[v.rule, v.containers] | some v in vs} == {["privileged", ["a"]], ["hostNamespaces", []]}
}
