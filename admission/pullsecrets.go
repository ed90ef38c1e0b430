package admission

import "github.com/open-policy-agent/opa/v1/ast"

// PullSecrets returns the names of the imagePullSecrets of an object that
// runs pods: a Pod, the pod template of a workload (Deployment,
// ReplicaSet, StatefulSet, DaemonSet, Job, ReplicationController,
// PodTemplate) or of a CronJob's job template. The image verifier reads
// registry credentials from them, as the kubelet would to pull the
// images. Nil for anything else.
func PullSecrets(obj ast.Value) []string {
	list, _ := get(podSpec(obj), "imagePullSecrets").(*ast.Array)
	if list == nil {
		return nil
	}
	var names []string
	list.Foreach(func(item *ast.Term) {
		if name, _ := get(item.Value, "name").(ast.String); name != "" {
			names = append(names, string(name))
		}
	})
	return names
}

// podSpecPaths are where the pod spec of an object is, by its kind, as
// the Rego library's subject.template finds it.
var podSpecPaths = map[string][]string{
	"Pod":                   {"spec"},
	"Deployment":            {"spec", "template", "spec"},
	"ReplicaSet":            {"spec", "template", "spec"},
	"StatefulSet":           {"spec", "template", "spec"},
	"DaemonSet":             {"spec", "template", "spec"},
	"Job":                   {"spec", "template", "spec"},
	"ReplicationController": {"spec", "template", "spec"},
	"CronJob":               {"spec", "jobTemplate", "spec", "template", "spec"},
	"PodTemplate":           {"template", "spec"},
}

// podSpec finds the pod spec of an object by its kind; nil if there is
// none.
func podSpec(obj ast.Value) ast.Value {
	kind, _ := get(obj, "kind").(ast.String)
	keys, ok := podSpecPaths[string(kind)]
	if !ok {
		return nil
	}
	cur := obj
	for _, k := range keys {
		cur = get(cur, k)
	}
	return cur
}

// get returns an object's field, nil if v is not an object or has no
// such field.
func get(v ast.Value, key string) ast.Value {
	obj, ok := v.(ast.Object)
	if !ok {
		return nil
	}
	if t := obj.Get(ast.InternedTerm(key)); t != nil {
		return t.Value
	}
	return nil
}
