package pods

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Kinds of workload Workload names.
const (
	KindDeployment  = "Deployment"
	KindReplicaSet  = "ReplicaSet"
	KindStatefulSet = "StatefulSet"
	KindDaemonSet   = "DaemonSet"
	KindJob         = "Job"
	KindCronJob     = "CronJob"
	KindPod         = "Pod"
)

// podTemplateHashLabel is the label a Deployment's ReplicaSet controller
// puts on its pods, and whose value suffixes the ReplicaSet's name.
const podTemplateHashLabel = "pod-template-hash"

// cronJobSuffixDigits is the fewest digits of the suffix the CronJob
// controller gives the Jobs it creates (the scheduled time in minutes
// since the Unix epoch: eight digits since 1970-03-11).
const cronJobSuffixDigits = 8

// Workload returns "<Kind>/<name>" of a pod's top controller, the
// workload identity of runtime selectors (kubernetesWorkload) and of
// learning profiles, from the pod alone (no other object is read, so that
// the sensor needs no permission beyond pods):
//
//   - owned by ReplicaSet "<name>-<hash>" where <hash> is the pod's
//     pod-template-hash label (exact suffix, not a pattern):
//     "Deployment/<name>"; a ReplicaSet without that label or suffix:
//     "ReplicaSet/<rs>".
//   - owned by Job "<name>-<digits>" with 8 or more digits:
//     "CronJob/<name>". This is a heuristic (the CronJob controller names
//     its Jobs so, but a Job created by hand may be named alike, and a
//     pod does not say which): a hand-made Job named like that counts
//     as its CronJob's. Any other Job: "Job/<job>".
//   - owned by a StatefulSet, DaemonSet or any other controller kind:
//     "<Kind>/<name>" of that owner.
//   - no controller owner, or a Node (a static pod's mirror):
//     "Pod/<pod name>".
//
// A ReplicaSet owned by something other than a Deployment (an Argo
// Rollout, say) still carries pod-template-hash and is named as a
// Deployment: reading the ReplicaSet's own owner would need another
// informer and permission.
func Workload(pod *corev1.Pod) string {
	owner := metav1.GetControllerOf(pod)
	if owner == nil || owner.Name == "" || owner.Kind == "" || owner.Kind == "Node" {
		return KindPod + "/" + pod.Name
	}
	switch owner.Kind {
	case KindReplicaSet:
		if hash := pod.Labels[podTemplateHashLabel]; hash != "" {
			if name, ok := cutSuffix(owner.Name, "-"+hash); ok {
				return KindDeployment + "/" + name
			}
		}
	case KindJob:
		if name, ok := cronJobName(owner.Name); ok {
			return KindCronJob + "/" + name
		}
	}
	return owner.Kind + "/" + owner.Name
}

// cutSuffix is strings.CutSuffix that also wants something left.
func cutSuffix(s, suffix string) (string, bool) {
	if len(s) <= len(suffix) || s[len(s)-len(suffix):] != suffix {
		return "", false
	}
	return s[:len(s)-len(suffix)], true
}

// cronJobName returns the CronJob name of a Job named
// "<cronjob>-<8 or more digits>".
func cronJobName(job string) (string, bool) {
	i := len(job)
	for i > 0 && job[i-1] >= '0' && job[i-1] <= '9' {
		i--
	}
	if len(job)-i < cronJobSuffixDigits || i < 2 || job[i-1] != '-' {
		return "", false
	}
	return job[:i-1], true
}
