package palisade.lib.subject_test

import data.palisade.lib.subject
import data.palisade.test.fixtures as fx

_spec := {
	"serviceAccountName": "web",
	"initContainers": [fx.container("init", "busybox:1.36")],
	"containers": [fx.container("app", "nginx:1.25"), fx.container("sidecar", "ghcr.io/acme/proxy:2")],
}

_template := {"metadata": {"labels": {"app": "web"}}, "spec": _spec}

_workload(kind, spec) := {
	"apiVersion": "apps/v1",
	"kind": kind,
	"metadata": {"name": "w", "namespace": "shop", "labels": {"owner": "team-a"}},
	"spec": spec,
}

# _runs_template is true when a CREATE of obj evaluates _template.
_runs_template(obj) if {
	subject.is_workload with input as fx.create(obj)
	subject.template == _template with input as fx.create(obj)
	subject.labels == {"app": "web"} with input as fx.create(obj)
	subject.service_account == "web" with input as fx.create(obj)
	[c.name | some c in subject.containers] == ["app", "sidecar", "init"] with input as fx.create(obj)
}

#
# the object and the kinds that run pods
#

test_pod_spec_evaluated if {
	pod := {"kind": "Pod", "metadata": {"name": "p", "namespace": "shop", "labels": {"app": "web"}}, "spec": _spec}
	subject.kind == "Pod" with input as fx.create(pod)
	subject.template == {"metadata": pod.metadata, "spec": _spec} with input as fx.create(pod)
	subject.is_workload with input as fx.create(pod)
	subject.labels == {"app": "web"} with input as fx.create(pod)
}

test_pod_without_metadata_evaluated if {
	subject.pod_metadata == {} with input as fx.create({"kind": "Pod", "spec": _spec})
	subject.labels == {} with input as fx.create({"kind": "Pod", "spec": _spec})
	subject.is_workload with input as fx.create({"kind": "Pod", "spec": _spec})
}

test_deployment_template_evaluated if {
	_runs_template(_workload("Deployment", {"replicas": 2, "template": _template}))
}

test_replica_set_template_evaluated if {
	_runs_template(_workload("ReplicaSet", {"template": _template}))
}

test_stateful_set_template_evaluated if {
	_runs_template(_workload("StatefulSet", {"serviceName": "w", "template": _template}))
}

test_daemon_set_template_evaluated if {
	_runs_template(_workload("DaemonSet", {"template": _template}))
}

test_job_template_evaluated if {
	_runs_template(_workload("Job", {"backoffLimit": 1, "template": _template}))
}

test_cron_job_template_evaluated if {
	_runs_template(_workload("CronJob", {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": _template}}}))
}

test_replication_controller_template_evaluated if {
	_runs_template(_workload("ReplicationController", {"template": _template}))
}

test_pod_template_evaluated if {
	obj := {"kind": "PodTemplate", "metadata": {"name": "t", "namespace": "shop"}, "template": _template}
	_runs_template(obj)
}

test_workload_labels_from_template_read if {
	subject.labels == {"app": "web"} with input as fx.create(_workload("Deployment", {"template": _template}))
}

test_other_kinds_not_evaluated if {
	not subject.is_workload with input as fx.create({"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {}})
	not subject.is_workload with input as fx.create({"kind": "Service", "metadata": {"name": "s"}, "spec": {"ports": []}})
	not subject.is_workload with input as fx.create({"kind": "Pod", "metadata": {"name": "p"}})
	not subject.is_workload with input as fx.create({"kind": "Deployment", "metadata": {"name": "d"}, "spec": {}})
	subject.containers == [] with input as fx.create({"kind": "ConfigMap"})
	not subject.pod_spec with input as fx.create({"kind": "ConfigMap"})
}

test_object_from_request_read if {
	subject.obj == {"kind": "Pod", "spec": {}} with input as {"request": {"object": {"kind": "Pod", "spec": {}}}, "object": {"kind": "Other"}}
}

test_object_from_scan_read if {
	subject.obj.kind == "Pod" with input as fx.scan(fx.pod_in("shop", _spec))
	subject.is_workload with input as fx.scan(fx.pod_in("shop", _spec))
}

test_object_missing_empty if {
	subject.obj == {} with input as {}
	subject.obj == {} with input as {"request": {"operation": "DELETE", "object": null}}
	subject.kind == "" with input as {}
	not subject.is_workload with input as {}
}

#
# the request
#

test_operation_and_sub_resource_read if {
	subject.operation == "CONNECT" with input as fx.admission_input(fx.request("CONNECT", "exec", {}))
	subject.sub_resource == "exec" with input as fx.admission_input(fx.request("CONNECT", "exec", {}))
	subject.operation == "SCAN" with input as fx.scan(fx.pod_in("shop", _spec))
	subject.sub_resource == "" with input as fx.scan(fx.pod_in("shop", _spec))
	subject.sub_resource == "" with input as {"request": {"operation": "CREATE"}}
}

test_user_and_groups_read if {
	subject.user == "alice" with input as fx.create(fx.pod_in("shop", _spec))
	subject.groups == ["dev", "system:authenticated"] with input as fx.create(fx.pod_in("shop", _spec))
	subject.user == "" with input as fx.scan(fx.pod_in("shop", _spec))
	subject.groups == [] with input as fx.scan(fx.pod_in("shop", _spec))
}

#
# namespace
#

test_namespace_from_request_read if {
	req := object.union(fx.request("CREATE", "", fx.pod_in("other", _spec)), {"namespace": "shop"})
	subject.namespace == "shop" with input as fx.admission_input(req)
}

test_namespace_from_object_when_request_has_none_read if {
	req := object.union(fx.request("CREATE", "", fx.pod_in("shop", _spec)), {"namespace": ""})
	subject.namespace == "shop" with input as fx.admission_input(req)
	subject.namespace == "shop" with input as {"request": {"operation": "CREATE", "object": fx.pod_in("shop", _spec)}}
}

test_namespace_from_scanned_object_read if {
	subject.namespace == "shop" with input as fx.scan(fx.pod_in("shop", _spec))
}

test_namespace_missing_defaulted if {
	subject.namespace == "default" with input as fx.create({"kind": "Pod", "metadata": {"name": "p"}, "spec": _spec})
	subject.namespace == "default" with input as fx.create({"kind": "Pod", "metadata": {"name": "p", "namespace": ""}, "spec": _spec})
	subject.namespace == "default" with input as {}
}

test_in_namespaces_covers_listed_or_every_namespace if {
	shop := fx.create(fx.pod_in("shop", _spec))
	subject.in_namespaces([]) with input as shop
	subject.in_namespaces(["dev", "shop"]) with input as shop
	not subject.in_namespaces(["dev"]) with input as shop
	not subject.in_namespaces(["shop"]) with input as fx.create(fx.pod_in("other", _spec))
}

#
# service account
#

test_service_account_from_spec_read if {
	subject.service_account == "web" with input as fx.create(fx.pod_in("shop", _spec))
}

test_service_account_missing_defaulted if {
	subject.service_account == "default" with input as fx.containers_input([fx.container("app", "nginx")])
	subject.service_account == "default" with input as fx.spec_input({"serviceAccountName": "", "containers": []})
}

# Nothing runs with a service account on a CONNECT (its object holds exec
# options, not the pod): none is assumed, so that an exception for the
# default service account does not cover every exec.
test_service_account_of_non_workload_undefined if {
	not subject.service_account with input as fx.admission_input(fx.request("CONNECT", "exec", {"kind": "PodExecOptions", "container": "app"}))
	not subject.service_account with input as fx.create({"kind": "ConfigMap"})
}

#
# containers and images
#

test_containers_of_every_kind_listed if {
	spec := {
		"containers": [{"name": "app", "image": "nginx:1.25", "ports": []}],
		"initContainers": [fx.container("init", "busybox")],
		"ephemeralContainers": [fx.container("debugger", "busybox:1.36")],
	}
	subject.containers == [
		{"name": "app", "image": "nginx:1.25", "kind": "container", "spec": {"name": "app", "image": "nginx:1.25", "ports": []}},
		{"name": "init", "image": "busybox", "kind": "initContainer", "spec": fx.container("init", "busybox")},
		{"name": "debugger", "image": "busybox:1.36", "kind": "ephemeralContainer", "spec": fx.container("debugger", "busybox:1.36")},
	] with input as fx.spec_input(spec)
}

test_container_without_image_listed if {
	subject.containers == [{"name": "app", "image": "", "kind": "container", "spec": {"name": "app"}}] with input as fx.containers_input([{"name": "app"}])
}

test_image_refs_normalised if {
	subject.image_refs == {
		"app": "docker.io/library/nginx:1.25",
		"sidecar": "ghcr.io/acme/proxy:2",
		"init": "docker.io/library/busybox:1.36",
	} with input as fx.spec_input(_spec)
}

# The engine gathers the normalised images (input.facts.images): they are
# read as given, and the references it left out are parsed here.
test_container_images_from_facts_read if {
	gathered := {"registry": "ghcr.io", "repository": "acme/proxy", "name": "ghcr.io/acme/proxy", "tag": "2", "digest": "", "reference": "ghcr.io/acme/proxy:2", "valid": true, "from": "facts"}
	given := object.union(fx.spec_input(_spec), {"facts": {"images": {"ghcr.io/acme/proxy:2": gathered}}})
	images := subject.container_images with input as given
	images.sidecar == gathered
	images.app.reference == "docker.io/library/nginx:1.25"
	not images.app.from
}

#
# facts
#

test_now_ns_from_facts_read if {
	subject.now_ns == time.parse_rfc3339_ns("2026-11-23T00:00:00Z") with input as fx.scan(fx.pod_in("shop", _spec))
}

test_now_ns_without_facts_undefined if {
	not subject.now_ns with input as {"object": fx.pod_in("shop", _spec)}
	not subject.now_ns with input as {"object": fx.pod_in("shop", _spec), "facts": {}}
}
