# Package fixtures holds the inputs and policies that the Rego unit tests
# share. Its file name ends in _test.rego, so bundles leave it out.
package palisade.test.fixtures

# now is the evaluation time every input carries in input.facts.now.
now := "2026-11-23T00:00:00Z"

# admission_input wraps an AdmissionRequest with the facts Go gathers.
admission_input(request) := {"request": request, "facts": {"now": now, "namespaceLabels": {}}}

# request returns an AdmissionRequest of an operation on obj by alice
# (groups dev and system:authenticated).
request(operation, sub_resource, obj) := {
	"uid": "test",
	"kind": {"group": "", "version": "v1", "kind": object.get(obj, "kind", "")},
	"namespace": object.get(obj, ["metadata", "namespace"], ""),
	"name": object.get(obj, ["metadata", "name"], ""),
	"operation": operation,
	"subResource": sub_resource,
	"userInfo": {"username": "alice", "groups": ["dev", "system:authenticated"]},
	"object": obj,
}

# create returns the admission input of a CREATE of obj.
create(obj) := admission_input(request("CREATE", "", obj))

# pod_in returns a Pod named p, labelled app=web, in namespace ns.
pod_in(ns, spec) := {
	"apiVersion": "v1",
	"kind": "Pod",
	"metadata": {"name": "p", "namespace": ns, "labels": {"app": "web"}},
	"spec": spec,
}

# spec_input is the CREATE of a pod in namespace default with this spec.
spec_input(spec) := create(pod_in("default", spec))

# containers_input is the CREATE of a pod in namespace default with these
# containers.
containers_input(containers) := spec_input({"containers": containers})

# scan returns the continuous scanner's input for a running object.
scan(obj) := {"object": obj, "facts": {"now": now, "namespaceLabels": {}}}

container(name, image) := {"name": name, "image": image}

# with_sc returns a container with a security context.
with_sc(name, sc) := {"name": name, "image": "ghcr.io/acme/app:1.0", "securityContext": sc}

# pairs projects findings or violations to [container, value] pairs.
pairs(findings) := {[f.container, f.value] | some f in findings}

# policy returns a normalised cluster policy (bundles.ClusterData) whose
# cluster-wide definition has these deployment and continuous rules.
policy(deployment, continuous) := {
	"cluster": "test",
	"name": "test",
	"mode": "enforce",
	"systemNamespace": "palisade-system",
	"systemImages": [{"prefix": "ghcr.io/palisade-dev/"}],
	"clusterWide": {
		"deployment": deployment,
		"continuous": {"schedule": "@every 5m", "rules": continuous},
	},
	"rulesets": {},
	"attestors": {},
}
