package pods_test

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/palisade-dev/palisade/sensor/pods"
)

func Example() {
	const id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	client := fake.NewClientset(&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "shop", Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{NodeName: "node-a", Containers: []corev1.Container{{Name: "web", Image: "ghcr.io/acme/web:v3"}}},
		Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{
			Name: "web", ContainerID: "containerd://" + id, Image: "ghcr.io/acme/web:v3",
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}},
		}}},
	})
	a := pods.New(pods.Options{Client: client, NodeName: "node-a", ClusterName: "prod"})
	started := make(chan string, 1)
	// The sensor watches a container's cgroup (CgroupIDFor) when it
	// starts, and stops watching when it goes.
	a.OnContainer(func(ev pods.ContainerEvent) {
		if ev.Type == pods.ContainerStarted {
			started <- ev.Namespace + "/" + ev.Pod + " " + ev.ContainerName
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go a.Run(ctx)
	select {
	case s := <-started:
		fmt.Println("started:", s)
	case <-time.After(10 * time.Second):
		fmt.Println("not started")
	}

	c, _ := a.Lookup(id) // the id a cgroup path names
	fmt.Println(c.ImageFullName, c.ImageTag, c.PodName, c.PodLabels, c.ClusterName)
	_, ok := a.Lookup("fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210")
	fmt.Println("host process attributed:", ok)
	// Output:
	// started: shop/web-1 web
	// ghcr.io/acme/web v3 web-1 map[app:web] prod
	// host process attributed: false
}
