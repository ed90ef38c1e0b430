package pods

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func owned(name string, labels map[string]string, owners ...metav1.OwnerReference) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", Labels: labels, OwnerReferences: owners}}
}

func controller(kind, name string) metav1.OwnerReference {
	yes := true
	return metav1.OwnerReference{APIVersion: "apps/v1", Kind: kind, Name: name, UID: "owner-uid", Controller: &yes}
}

func TestWorkloadOfEachOwner(t *testing.T) {
	hash := map[string]string{"pod-template-hash": "7f9c6d5b4", "app": "web"}
	notController := controller("ReplicaSet", "web-7f9c6d5b4")
	notController.Controller = nil
	for _, tc := range []struct {
		name string
		pod  *corev1.Pod
		want string
	}{
		{"Deployment through its ReplicaSet and the hash label", owned("web-7f9c6d5b4-abcde", hash, controller("ReplicaSet", "web-7f9c6d5b4")), "Deployment/web"},
		{"Deployment whose name ends in digits", owned("api-2-7f9c6d5b4-x", hash, controller("ReplicaSet", "api-2-7f9c6d5b4")), "Deployment/api-2"},
		{"ReplicaSet without the hash label", owned("rs-abcde", nil, controller("ReplicaSet", "rs")), "ReplicaSet/rs"},
		{"ReplicaSet whose name does not end in the hash", owned("x", hash, controller("ReplicaSet", "web-0000")), "ReplicaSet/web-0000"},
		{"ReplicaSet named only the hash", owned("x", hash, controller("ReplicaSet", "-7f9c6d5b4")), "ReplicaSet/-7f9c6d5b4"},
		{"StatefulSet", owned("db-0", nil, controller("StatefulSet", "db")), "StatefulSet/db"},
		{"DaemonSet", owned("agent-x2x9z", nil, controller("DaemonSet", "agent")), "DaemonSet/agent"},
		{"Job", owned("migrate-abcde", nil, controller("Job", "migrate")), "Job/migrate"},
		{"Job with a short numeric suffix", owned("x", nil, controller("Job", "backup-1234567")), "Job/backup-1234567"},
		{"CronJob through its Job (8 digits)", owned("nightly-29412345-abcde", nil, controller("Job", "nightly-29412345")), "CronJob/nightly"},
		{"CronJob through its Job (more digits)", owned("x", nil, controller("Job", "report-v2-2941234512")), "CronJob/report-v2"},
		{"Job named only digits", owned("x", nil, controller("Job", "29412345")), "Job/29412345"},
		{"Job named dash and digits", owned("x", nil, controller("Job", "-29412345")), "Job/-29412345"},
		{"other controller kind", owned("wf-1", nil, controller("Workflow", "wf")), "Workflow/wf"},
		{"bare pod", owned("debug", nil), "Pod/debug"},
		{"owner that is not the controller", owned("adopted", hash, notController), "Pod/adopted"},
		{"static pod mirrored by its node", owned("etcd-node-a", nil, controller("Node", "node-a")), "Pod/etcd-node-a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Workload(tc.pod); got != tc.want {
				t.Errorf("Workload = %q, want %q", got, tc.want)
			}
		})
	}
}

// The facts of an attributed container carry its workload and its name.
func TestLookupHasWorkloadAndContainerName(t *testing.T) {
	p := pod("web-7f9c6d5b4-abcde", node)
	p.Labels = map[string]string{"pod-template-hash": "7f9c6d5b4"}
	p.OwnerReferences = []metav1.OwnerReference{controller("ReplicaSet", "web-7f9c6d5b4")}
	p.Status.ContainerStatuses = []corev1.ContainerStatus{running("app", "containerd://"+idApp, "nginx:1.25"), running("sidecar", "containerd://"+idNew, "envoy:1")}
	a, _ := start(t, fake.NewClientset(p))
	for id, name := range map[string]string{idApp: "app", idNew: "sidecar"} {
		c, ok := a.Lookup(id)
		if !ok {
			t.Fatalf("Lookup(%s) = false", id)
		}
		if c.Workload != "Deployment/web" || c.ContainerName != name {
			t.Errorf("Lookup(%s): workload %q, container %q; want Deployment/web, %s", id, c.Workload, c.ContainerName, name)
		}
	}
}
