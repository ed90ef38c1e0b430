package admission

// PullSecrets returns the names of the imagePullSecrets of an object that
// runs pods: a Pod, the pod template of a workload (Deployment,
// ReplicaSet, StatefulSet, DaemonSet, Job, ReplicationController,
// PodTemplate) or of a CronJob's job template. The image verifier reads
// registry credentials from them, as the kubelet would to pull the
// images. Nil for anything else.
func PullSecrets(obj map[string]any) []string {
	spec := podSpec(obj)
	list, _ := spec["imagePullSecrets"].([]any)
	var names []string
	for _, item := range list {
		ref, _ := item.(map[string]any)
		if name, _ := ref["name"].(string); name != "" {
			names = append(names, name)
		}
	}
	return names
}

// podSpec finds the pod spec of an object by its kind, the way the Rego
// library's subject.template does.
func podSpec(obj map[string]any) map[string]any {
	path := map[string][]string{
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
	kind, _ := obj["kind"].(string)
	keys, ok := path[kind]
	if !ok {
		return nil
	}
	cur := obj
	for _, k := range keys {
		cur, _ = cur[k].(map[string]any)
	}
	return cur
}
