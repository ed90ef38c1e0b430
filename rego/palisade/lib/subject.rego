# Package subject says what is being evaluated: the object of an admission
# request (input.request) or the pod of a scan (input.object), its pod
# template, containers, namespace and the facts Go gathered (input.facts).
package palisade.lib.subject

import data.palisade.lib.images

# The object under evaluation.
obj := input.request.object if {
	is_object(input.request.object)
} else := input.object if {
	is_object(input.object)
} else := {}

kind := object.get(obj, "kind", "")

operation := object.get(input, ["request", "operation"], "SCAN")

sub_resource := object.get(input, ["request", "subResource"], "")

namespace := ns if {
	ns := input.request.namespace
	ns != ""
} else := ns if {
	ns := obj.metadata.namespace
	ns != ""
} else := "default"

user := object.get(input, ["request", "userInfo", "username"], "")

groups := object.get(input, ["request", "userInfo", "groups"], [])

# The pod template of every kind that runs pods.
template_kinds := {"Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "ReplicationController"}

template := {"metadata": object.get(obj, "metadata", {}), "spec": obj.spec} if {
	kind == "Pod"
} else := obj.spec.template if {
	kind in template_kinds
} else := obj.spec.jobTemplate.spec.template if {
	kind == "CronJob"
} else := obj.template if {
	kind == "PodTemplate"
}

# True when the object runs pods (the workload rules apply).
is_workload if is_object(template.spec)

pod_spec := object.get(template, "spec", {})

pod_metadata := object.get(template, "metadata", {})

labels := object.get(pod_metadata, "labels", {})

# The pod's service account. Undefined when nothing runs pods (a CONNECT's
# object holds exec options): an exception for the default service
# account must not cover every kubectl exec.
service_account := sa if {
	sa := pod_spec.serviceAccountName
	sa != ""
} else := "default" if is_workload

_container_kinds := [
	["containers", "container"],
	["initContainers", "initContainer"],
	["ephemeralContainers", "ephemeralContainer"],
]

# Every container of the pod: regular, init and ephemeral.
containers := [{"name": c.name, "image": object.get(c, "image", ""), "kind": k[1], "spec": c} |
	some k in _container_kinds
	some c in object.get(pod_spec, k[0], [])
]

# The normalised image of each container (images.info), by container name.
container_images[c.name] := images.info(c.image) if some c in containers

# Normalised image reference of each container, by container name.
image_refs[name] := img.reference if some name, img in container_images

# Evaluation time in ns since the epoch, from input.facts.now (RFC 3339).
# Undefined when the caller gave none: expiring exceptions then no longer
# apply (fail closed), since Rego never reads the clock itself.
now_ns := time.parse_rfc3339_ns(input.facts.now)
