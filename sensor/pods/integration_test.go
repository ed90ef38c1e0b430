package pods_test

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/palisade-dev/palisade/bundles"
	"github.com/palisade-dev/palisade/sensor"
	"github.com/palisade-dev/palisade/sensor/pods"
	"github.com/palisade-dev/palisade/test/cluster"
	"github.com/palisade-dev/palisade/test/runtime"
)

func TestMain(m *testing.M) { os.Exit(cluster.Main(m)) }

const (
	nodeName = "node-under-test"
	// templateHash is the pod-template-hash of the Deployment's
	// ReplicaSet, which suffixes its name.
	templateHash = "7f9c6d5b4"
	digest       = "sha256:5c8f1ab0d6a1b0bf2a1a5a8d7a8f0c1e7b0a53c4e0c9d7b3a8e6f5d4c3b2a190"
	// wait bounds each wait on the API server and the informer.
	wait = 20 * time.Second
)

// fixture is a Pod on the real API server whose status names a real runc
// container, and an Attributor watching this node's pods.
type fixture struct {
	client    kubernetes.Interface
	pod       *corev1.Pod
	container *runtime.Container
	attr      *pods.Attributor
	events    chan pods.ContainerEvent
}

func setup(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	c := cluster.Shared(t)
	client, err := kubernetes.NewForConfig(c.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	ns := strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	f := &fixture{client: client, events: make(chan pods.ContainerEvent, 64)}
	// The pod belongs to Deployment "web" through its ReplicaSet, as the
	// Deployment controller names them (no controller runs here: the
	// ReplicaSet is created by hand, and the pod's owner reference names
	// it by uid, as the ReplicaSet controller's would).
	labels := map[string]string{"app": "web", "pod-template-hash": templateHash}
	rs, err := client.AppsV1().ReplicaSets(ns).Create(ctx, &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web-" + templateHash, Namespace: ns, Labels: labels},
		Spec: appsv1.ReplicaSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "busybox:1.36"}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f.pod, err = client.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-0", Namespace: ns, Labels: labels,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(rs, appsv1.SchemeGroupVersion.WithKind("ReplicaSet"))}},
		Spec: corev1.PodSpec{NodeName: nodeName, Containers: []corev1.Container{{
			Name: "app", Image: "busybox:1.36", Command: []string{"sleep", "3600"}}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The container's cgroup path names the pod's uid, as kubelet's does.
	f.container = runtime.Start(t, runtime.Options{PodUID: string(f.pod.UID)})

	// A pod of another node, naming the same container, must not count.
	other := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "elsewhere", Namespace: ns},
		Spec:       corev1.PodSpec{NodeName: "another-node", Containers: []corev1.Container{{Name: "app", Image: "evil:1"}}},
	}
	if other, err = client.CoreV1().Pods(ns).Create(ctx, other, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	other.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", Image: "evil:1", ImageID: "evil@" + digest,
		ContainerID: f.container.ContainerID(), State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}
	if _, err := client.CoreV1().Pods(ns).UpdateStatus(ctx, other, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	f.attr = pods.New(pods.Options{Client: client, NodeName: nodeName, ClusterID: "cid-1", ClusterName: "test"})
	f.attr.OnContainer(func(ev pods.ContainerEvent) { f.events <- ev })
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- f.attr.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(wait):
			t.Error("Run did not return after cancel")
		}
	})
	deadline := time.Now().Add(wait)
	for !f.attr.HasSynced() {
		if time.Now().After(deadline) {
			t.Fatalf("pods not synced within %s", wait)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return f
}

// setRunning sets the pod's status, through the status subresource as
// kubelet does, to name the runc container as its running "app".
func (f *fixture) setRunning(t *testing.T) {
	t.Helper()
	p := f.pod.DeepCopy()
	p.Status.Phase = corev1.PodRunning
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{
		Name: "app", Ready: true, ContainerID: f.container.ContainerID(),
		Image: "docker.io/library/busybox:1.36", ImageID: "docker.io/library/busybox@" + digest,
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}},
	}}
	var err error
	if f.pod, err = f.client.CoreV1().Pods(p.Namespace).UpdateStatus(context.Background(), p, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update pod status: %v", err)
	}
}

func (f *fixture) next(t *testing.T) pods.ContainerEvent {
	t.Helper()
	select {
	case ev := <-f.events:
		return ev
	case <-time.After(wait):
		t.Fatalf("no container event within %s", wait)
		return pods.ContainerEvent{}
	}
}

// A Pod on the real API server whose status names a real container is
// attributed through the informer: its facts, its cgroup, and its end.
func TestRealPodAttributesRealContainer(t *testing.T) {
	f := setup(t)
	if _, ok := f.attr.Lookup(f.container.ID()); ok {
		t.Fatal("attributed before the pod's status names the container (only another node's pod does)")
	}
	start := time.Now()
	f.setRunning(t)
	ev := f.next(t)
	t.Logf("status update to started callback: %s", time.Since(start))
	if ev.Type != pods.ContainerStarted || ev.ContainerID != f.container.ID() || ev.Runtime != "containerd" ||
		string(ev.PodUID) != f.container.PodUID() || ev.ImageDigest != digest {
		t.Fatalf("event = %+v, want the container started in pod %s", ev, f.container.PodUID())
	}

	want := bundles.Container{
		ImageFullName: "docker.io/library/busybox", ImageName: "library/busybox", ImageTag: "1.36",
		Namespace: f.pod.Namespace, PodName: "web-0", PodLabels: map[string]string{"app": "web", "pod-template-hash": templateHash},
		ClusterID: "cid-1", ClusterName: "test",
		Workload: "Deployment/web", ContainerName: "app",
	}
	for _, id := range []string{f.container.ID(), f.container.ContainerID()} {
		got, ok := f.attr.Lookup(id)
		if !ok || !reflect.DeepEqual(*got, want) {
			t.Errorf("Lookup(%s) = %+v, %v; want %+v", id, got, ok, want)
		}
	}

	start = time.Now()
	cg, ok := f.attr.CgroupIDFor(ev.ContainerID)
	t.Logf("CgroupIDFor: %s", time.Since(start))
	if !ok || cg != f.container.CgroupID() {
		t.Errorf("CgroupIDFor = %d, %v; want %d", cg, ok, f.container.CgroupID())
	}

	// The test binary is a host process: its cgroup names no pod's
	// container, so nothing attributes it.
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(self)), "\n") {
		if path, ok := strings.CutPrefix(line, "0::"); ok {
			if ref, ok := sensor.ParseCgroupPath(path); ok {
				if _, ok := f.attr.Lookup(ref.ID); ok {
					t.Errorf("host process in %s attributed to a pod", path)
				}
			}
		}
	}

	// Without kubelet a graceful delete never completes: delete at once.
	zero := int64(0)
	if err := f.client.CoreV1().Pods(f.pod.Namespace).Delete(context.Background(), "web-0",
		metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	if ev := f.next(t); ev.Type != pods.ContainerGone || ev.ContainerID != f.container.ID() {
		t.Fatalf("event after delete = %+v, want the container gone", ev)
	}
	if _, ok := f.attr.Lookup(f.container.ID()); ok {
		t.Error("a deleted pod's container is still attributed")
	}
}

// The sensor wired through the callback: a started container's cgroup is
// watched, and an exec in it comes back as an event that attributes, by
// cgroup id → path → container id → Lookup, to the pod.
func TestSensorEventsAttributeToThePod(t *testing.T) {
	probe, err := sensor.Load(sensor.Options{})
	if err != nil {
		t.Fatalf("load sensor: %v", err)
	}
	t.Cleanup(func() {
		if err := probe.Close(); err != nil {
			t.Errorf("close sensor: %v", err)
		}
	})
	f := setup(t)
	watched := make(chan error, 1)
	f.attr.OnContainer(func(ev pods.ContainerEvent) {
		if ev.Type != pods.ContainerStarted {
			return
		}
		cg, ok := f.attr.CgroupIDFor(ev.ContainerID)
		if !ok {
			watched <- fmt.Errorf("no cgroup for %s", ev.ContainerID)
			return
		}
		watched <- probe.Watch(cg)
	})
	f.setRunning(t)
	select {
	case err := <-watched:
		if err != nil {
			t.Fatalf("watch: %v", err)
		}
	case <-time.After(wait):
		t.Fatalf("container not watched within %s", wait)
	}
	if _, stderr, code := f.container.Exec(t, "/bin/true"); code != 0 {
		t.Fatalf("exec in container: exit %d: %s", code, stderr)
	}

	root, err := sensor.Cgroup2Mount()
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.After(wait)
	for {
		select {
		case ev := <-probe.Events():
			if ev.Op != sensor.OpExec || ev.Path != "/bin/busybox" {
				continue
			}
			path, err := sensor.CgroupPath(root, ev.CgroupID)
			if err != nil {
				t.Fatalf("cgroup of event: %v", err)
			}
			ref, ok := sensor.ParseCgroupPath(path)
			if !ok {
				t.Fatalf("event's cgroup %s names no container", path)
			}
			c, ok := f.attr.Lookup(ref.ID)
			if !ok || c.Namespace != f.pod.Namespace || c.PodName != "web-0" || c.PodLabels["app"] != "web" ||
				c.Workload != "Deployment/web" || c.ContainerName != "app" {
				t.Fatalf("exec in %s attributed to %+v, %v; want pod %s/web-0", path, c, ok, f.pod.Namespace)
			}
			return
		case <-deadline:
			t.Fatalf("no exec event from the container within %s", wait)
		}
	}
}
