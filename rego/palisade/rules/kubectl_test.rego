package palisade.rules.kubectl_test

import data.palisade.rules.kubectl
import data.palisade.test.fixtures as fx

# _findings returns kubectl.findings under these rules (the tab's rules,
# lib/decision.rules).
_findings(rules) := fs if {
	fs := kubectl.findings with data.palisade.lib.decision.rules as rules
}

_all_operations := {"kubectlAccess": {"action": "block", "operations": ["exec", "attach", "portForward", "ephemeralContainers"]}}

_rules(cfg) := {"kubectlAccess": object.union({"action": "block"}, cfg)}

# _connect is a CONNECT on pods/<sub_resource> of pod p in namespace default,
# with the exec/attach/port-forward options as the object.
_connect(sub_resource, options) := fx.admission_input(object.union(
	fx.request("CONNECT", sub_resource, options),
	{"namespace": "default", "name": "p", "kind": {"group": "", "version": "v1", "kind": "Pod"}},
))

_exec(container) := _connect("exec", {"kind": "PodExecOptions", "apiVersion": "v1", "container": container, "command": ["sh"], "stdin": true, "tty": true})

_debug_pod(names) := fx.pod_in("default", {
	"containers": [fx.container("app", "nginx:1.25")],
	"ephemeralContainers": [fx.container(n, "busybox") | some n in names],
})

# _ephemeral is the UPDATE of pods/ephemeralcontainers that takes the pod
# from the old to the new ephemeral containers.
_ephemeral(old, new) := fx.admission_input(object.union(
	fx.request("UPDATE", "ephemeralcontainers", _debug_pod(new)),
	{"oldObject": _debug_pod(old)},
))

test_exec_denied if {
	_findings(_all_operations) == {{
		"rule": "kubectlAccess",
		"field": "kubectl",
		"value": "exec",
		"container": "app",
	}} with input as _exec("app")
}

test_exec_default_container_denied if {
	fx.pairs(_findings(_all_operations)) == {["", "exec"]} with input as _exec("")
	fx.pairs(_findings(_all_operations)) == {["", "exec"]} with input as _connect("exec", {"kind": "PodExecOptions", "command": ["sh"]})
}

test_attach_denied if {
	fx.pairs(_findings(_all_operations)) == {["app", "attach"]} with input as _connect("attach", {"kind": "PodAttachOptions", "container": "app", "stdin": true})
}

test_port_forward_denied if {
	fx.pairs(_findings(_all_operations)) == {["", "portForward"]} with input as _connect("portforward", {"kind": "PodPortForwardOptions", "ports": [8080]})
}

test_ephemeral_containers_new_container_denied if {
	_findings(_all_operations) == {{
		"rule": "kubectlAccess",
		"field": "kubectl",
		"value": "ephemeralContainers",
		"container": "debugger-2",
	}} with input as _ephemeral(["debugger-1"], ["debugger-1", "debugger-2"])
}

test_ephemeral_containers_first_container_denied if {
	fx.pairs(_findings(_all_operations)) == {["debugger", "ephemeralContainers"]} with input as _ephemeral([], ["debugger"])
}

test_ephemeral_containers_without_old_object_denied if {
	req := fx.admission_input(fx.request("UPDATE", "ephemeralcontainers", _debug_pod(["a", "b"])))
	fx.pairs(_findings(_all_operations)) == {["a", "ephemeralContainers"], ["b", "ephemeralContainers"]} with input as req
}

test_ephemeral_containers_nothing_added_denied if {
	fx.pairs(_findings(_all_operations)) == {["", "ephemeralContainers"]} with input as _ephemeral(["debugger"], ["debugger"])
}

test_operation_not_listed_allowed if {
	rules := _rules({"operations": ["exec"]})
	_findings(rules) == set() with input as _connect("attach", {"kind": "PodAttachOptions", "container": "app"})
	_findings(rules) == set() with input as _connect("portforward", {"kind": "PodPortForwardOptions"})
	_findings(rules) == set() with input as _ephemeral([], ["debugger"])
	fx.pairs(_findings(rules)) == {["app", "exec"]} with input as _exec("app")
}

test_user_exception_allowed if {
	_findings(_rules({"operations": ["exec"], "users": ["bob", "alice"]})) == set() with input as _exec("app")
}

test_other_user_exception_denied if {
	fx.pairs(_findings(_rules({"operations": ["exec"], "users": ["bob"]}))) == {["app", "exec"]} with input as _exec("app")
}

test_group_exception_allowed if {
	_findings(_rules({"operations": ["exec", "ephemeralContainers"], "groups": ["dev"]})) == set() with input as _exec("app")
	_findings(_rules({"operations": ["exec", "ephemeralContainers"], "groups": ["dev"]})) == set() with input as _ephemeral([], ["debugger"])
}

test_other_group_exception_denied if {
	fx.pairs(_findings(_rules({"operations": ["exec"], "groups": ["sre"]}))) == {["app", "exec"]} with input as _exec("app")
}

# A username equal to an exempt group's name is not a member of it.
test_user_named_like_group_denied if {
	req := json.patch(_exec("app"), [{"op": "replace", "path": "/request/userInfo", "value": {"username": "sre", "groups": []}}])
	fx.pairs(_findings(_rules({"operations": ["exec"], "groups": ["sre"]}))) == {["app", "exec"]} with input as req
}

test_missing_user_info_denied if {
	req := json.remove(_exec("app"), ["request/userInfo"])
	fx.pairs(_findings(_rules({"operations": ["exec"], "groups": ["dev"]}))) == {["app", "exec"]} with input as req
}

test_other_connect_sub_resource_allowed if {
	_findings(_all_operations) == set() with input as _connect("proxy", {"kind": "PodProxyOptions"})
}

test_pod_create_allowed if {
	_findings(_all_operations) == set() with input as fx.containers_input([fx.container("app", "nginx")])
}

test_pod_update_allowed if {
	_findings(_all_operations) == set() with input as fx.admission_input(fx.request("UPDATE", "", _debug_pod(["debugger"])))
}

test_scan_allowed if {
	_findings(_all_operations) == set() with input as fx.scan(_debug_pod(["debugger"]))
}

test_kubectl_access_rule_off_allowed if {
	_findings({}) == set() with input as _exec("app")
}

test_operation_names_mapped if {
	kubectl.operation == "exec" with input as _exec("app")
	kubectl.operation == "attach" with input as _connect("attach", {})
	kubectl.operation == "portForward" with input as _connect("portforward", {})
	kubectl.operation == "ephemeralContainers" with input as _ephemeral([], ["d"])
	not kubectl.operation with input as _connect("proxy", {})
	not kubectl.operation with input as fx.admission_input(fx.request("CREATE", "exec", {}))
}
