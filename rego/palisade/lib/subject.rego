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

# in_namespaces is true when a list of namespaces (of a rule or an
# exception) covers the subject: it is empty (every namespace) or names
# the subject's namespace.
in_namespaces(namespaces) if count(namespaces) == 0

in_namespaces(namespaces) if namespace in namespaces

user := object.get(input, ["request", "userInfo", "username"], "")

groups := object.get(input, ["request", "userInfo", "groups"], [])

# The pod template of every kind that runs pods.
template := template_of(obj)

# The pod template of an UPDATE's old object ({} when there is none).
old_template := t if {
	t := template_of(input.request.oldObject)
} else := {}

template_of(o) := {"metadata": object.get(o, "metadata", {}), "spec": o.spec} if {
	o.kind == "Pod"
} else := o.spec.template if {
	o.kind in {"Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "ReplicationController"}
} else := o.spec.jobTemplate.spec.template if {
	o.kind == "CronJob"
} else := o.template if {
	o.kind == "PodTemplate"
}

# True when the object runs pods (the workload rules apply).
is_workload if is_object(template.spec)

pod_spec := object.get(template, "spec", {})

pod_metadata := object.get(template, "metadata", {})

# The pod's labels ({} when unset or null).
labels := l if {
	l := pod_metadata.labels
	is_object(l)
} else := {}

# The pod's service account. Undefined when nothing runs pods (a CONNECT's
# object holds exec options): an exception for the default service
# account must not cover every kubectl exec.
service_account := sa if {
	sa := pod_spec.serviceAccountName
	sa != ""
} else := "default" if is_workload

# Every container of the pod: regular, init and ephemeral, in this order.
containers := [{"name": c.name, "image": object.get(c, "image", ""), "kind": kind, "spec": c} |
	spec := pod_spec
	some [key, kind] in [
		["containers", "container"],
		["initContainers", "initContainer"],
		["ephemeralContainers", "ephemeralContainer"],
	]
	some c in spec[key]
]

# The normalised image of each container (images.info), by container name:
# the facts Go gathered, read without a call, else parsed.
container_images[c.name] := input.facts.images[c.image] if some c in containers

container_images[c.name] := images.info(c.image) if {
	some c in containers
	not input.facts.images[c.image]
}

# Normalised image reference of each container, by container name.
image_refs[name] := img.reference if some name, img in container_images

# Evaluation time in ns since the epoch, from input.facts.now (RFC 3339).
# Undefined when the caller gave none: expiring exceptions then no longer
# apply (fail closed), since Rego never reads the clock itself.
now_ns := time.parse_rfc3339_ns(input.facts.now)
