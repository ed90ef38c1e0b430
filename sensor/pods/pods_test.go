package pods

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"

	"github.com/palisade-dev/palisade/bundles"
	"github.com/palisade-dev/palisade/internal/metrics/metricstest"
)

const (
	node   = "node-a"
	idApp  = "1111111111111111111111111111111111111111111111111111111111111111"
	idInit = "2222222222222222222222222222222222222222222222222222222222222222"
	idDbg  = "3333333333333333333333333333333333333333333333333333333333333333"
	idNew  = "4444444444444444444444444444444444444444444444444444444444444444"
)

// wait bounds every wait for the informer: a fake clientset delivers
// within milliseconds.
const wait = 10 * time.Second

// start runs an Attributor on client until the test ends, with a
// callback feeding the returned channel.
func start(t *testing.T, client kubernetes.Interface) (*Attributor, <-chan ContainerEvent) {
	t.Helper()
	return startWith(t, client, nil)
}

func startWith(t *testing.T, client kubernetes.Interface, reg prometheus.Registerer) (*Attributor, <-chan ContainerEvent) {
	t.Helper()
	a := New(Options{Client: client, NodeName: node, ClusterID: "c-1", ClusterName: "prod", Registerer: reg})
	events := make(chan ContainerEvent, 64)
	a.OnContainer(func(ev ContainerEvent) { events <- ev })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
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
	eventually(t, "informer synced", a.HasSynced)
	return a, events
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, wait)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func next(t *testing.T, events <-chan ContainerEvent) ContainerEvent {
	t.Helper()
	select {
	case ev := <-events:
		return ev
	case <-time.After(wait):
		t.Fatalf("no container event within %s", wait)
		return ContainerEvent{}
	}
}

func none(t *testing.T, events <-chan ContainerEvent) {
	t.Helper()
	select {
	case ev := <-events:
		t.Fatalf("unexpected event %s %s", ev.Type, ev.ContainerID)
	case <-time.After(100 * time.Millisecond):
	}
}

func pod(name, nodeName string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", UID: types.UID(name + "-uid"),
			Labels: map[string]string{"app": "web", "tier": "front"}},
		Spec: corev1.PodSpec{
			NodeName:       nodeName,
			InitContainers: []corev1.Container{{Name: "init", Image: "busybox:1.36"}},
			Containers:     []corev1.Container{{Name: "app", Image: "nginx"}},
			EphemeralContainers: []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
				Name: "debug", Image: "ghcr.io/acme/debug:v2"}}},
		},
	}
}

func running(name, id, image string) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: name, ContainerID: id, Image: image,
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}
}

func TestLookupIndexesEveryKindOfContainerStatus(t *testing.T) {
	p := pod("web-0", node)
	p.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "init", ContainerID: "cri-o://" + idInit,
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{}}}}
	p.Status.ContainerStatuses = []corev1.ContainerStatus{running("app", "containerd://"+idApp, "docker.io/library/nginx:1.25")}
	p.Status.EphemeralContainerStatuses = []corev1.ContainerStatus{running("debug", "docker://"+idDbg, "")}
	a, _ := start(t, fake.NewClientset(p))

	labels := map[string]string{"app": "web", "tier": "front"}
	for _, tc := range []struct {
		name, id string
		want     bundles.Container
	}{
		{"container by bare id, status image", idApp, bundles.Container{ImageFullName: "docker.io/library/nginx",
			ImageName: "library/nginx", ImageTag: "1.25", ContainerName: "app"}},
		{"container with its scheme", "containerd://" + idApp, bundles.Container{ImageFullName: "docker.io/library/nginx",
			ImageName: "library/nginx", ImageTag: "1.25", ContainerName: "app"}},
		{"terminated init container stays attributable", idInit, bundles.Container{ImageFullName: "docker.io/library/busybox",
			ImageName: "library/busybox", ImageTag: "1.36", ContainerName: "init"}},
		{"ephemeral container, spec image", idDbg, bundles.Container{ImageFullName: "ghcr.io/acme/debug",
			ImageName: "acme/debug", ImageTag: "v2", ContainerName: "debug"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.want
			want.Namespace, want.PodName, want.PodLabels = "shop", "web-0", labels
			want.ClusterID, want.ClusterName = "c-1", "prod"
			want.Workload = "Pod/web-0" // no owner: a bare pod
			got, ok := a.Lookup(tc.id)
			if !ok {
				t.Fatalf("Lookup(%s) = false", tc.id)
			}
			if !reflect.DeepEqual(*got, want) {
				t.Errorf("Lookup(%s) = %+v, want %+v", tc.id, *got, want)
			}
		})
	}
	if _, ok := a.Lookup(idNew); ok {
		t.Error("Lookup of an id no pod names (a host process) = true")
	}
	if _, ok := a.Lookup(""); ok {
		t.Error("Lookup(\"\") = true")
	}
}

func TestOtherNodesPodsAreNotAttributed(t *testing.T) {
	// A fake clientset ignores the field selector: the Attributor must
	// still refuse another node's pod, and an unscheduled one.
	other, unscheduled := pod("other", "node-b"), pod("pending", "")
	other.Status.ContainerStatuses = []corev1.ContainerStatus{running("app", "containerd://"+idApp, "nginx")}
	unscheduled.Status.ContainerStatuses = []corev1.ContainerStatus{running("app", "containerd://"+idNew, "nginx")}
	a, events := start(t, fake.NewClientset(other, unscheduled))
	none(t, events)
	for _, id := range []string{idApp, idNew} {
		if _, ok := a.Lookup(id); ok {
			t.Errorf("Lookup(%s) of another node's container = true", id)
		}
	}
}

func TestContainerEventsFollowTheLifecycle(t *testing.T) {
	client := fake.NewClientset()
	reg := prometheus.NewPedanticRegistry()
	a, events := startWith(t, client, reg)
	ctx := context.Background()
	pods := client.CoreV1().Pods("shop")

	p, err := pods.Create(ctx, pod("web-0", node), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	none(t, events) // scheduled, nothing created yet

	p.Status.ContainerStatuses = []corev1.ContainerStatus{running("app", "containerd://"+idApp, "nginx:1.25")}
	if p, err = pods.UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	ev := next(t, events)
	if ev.Type != ContainerStarted || ev.ContainerID != idApp || ev.Runtime != "containerd" ||
		ev.ContainerName != "app" || ev.PodUID != "web-0-uid" || ev.Namespace != "shop" || ev.Pod != "web-0" ||
		ev.Facts == nil || ev.Facts.ImageTag != "1.25" {
		t.Fatalf("first event = %+v, want app started", ev)
	}

	p.Labels["tier"] = "back" // a relabel is no start
	if p, err = pods.Update(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "relabel indexed", func() bool {
		c, ok := a.Lookup(idApp)
		return ok && c.PodLabels["tier"] == "back"
	})
	none(t, events)

	// A restart: the old container terminated, a new one runs.
	p.Status.ContainerStatuses = []corev1.ContainerStatus{running("app", "containerd://"+idNew, "nginx:1.25")}
	if p, err = pods.UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	got := map[EventType]string{}
	for range 2 {
		ev := next(t, events)
		got[ev.Type] = ev.ContainerID
	}
	if want := map[EventType]string{ContainerGone: idApp, ContainerStarted: idNew}; !reflect.DeepEqual(got, want) {
		t.Fatalf("restart events = %v, want %v", got, want)
	}
	if _, ok := a.Lookup(idApp); ok {
		t.Error("the replaced container is still attributed")
	}

	// Terminated: gone, but still attributed while its status names it.
	p.Status.ContainerStatuses[0].State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0}}
	if p, err = pods.UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, events); ev.Type != ContainerGone || ev.ContainerID != idNew {
		t.Fatalf("terminated event = %+v, want %s gone", ev, idNew)
	}
	if _, ok := a.Lookup(idNew); !ok {
		t.Error("a terminated container's late events are not attributed")
	}

	// Running again (an update that lost the race with termination) and
	// then deleted: started, then gone with the pod.
	p.Status.ContainerStatuses[0].State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	if _, err = pods.UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, events); ev.Type != ContainerStarted {
		t.Fatalf("event = %+v, want started", ev)
	}
	if err := pods.Delete(ctx, "web-0", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, events); ev.Type != ContainerGone || ev.ContainerID != idNew {
		t.Fatalf("delete event = %+v, want %s gone", ev, idNew)
	}
	if _, ok := a.Lookup(idNew); ok {
		t.Error("a deleted pod's container is still attributed")
	}
	for name, want := range map[string]float64{"started": 3, "gone": 3} {
		if got := metricstest.Value(t, reg, metricEvents, map[string]string{labelEvent: name}); got != want {
			t.Errorf("%s{%s=%q} = %v, want %v", metricEvents, labelEvent, name, got, want)
		}
	}
	if got := metricstest.Value(t, reg, metricContainers, nil); got != 0 {
		t.Errorf("%s = %v after the pod's deletion, want 0", metricContainers, got)
	}
}

// BenchmarkLookup is the sensor's per-event cost of attribution.
func BenchmarkLookup(b *testing.B) {
	a := New(Options{Client: fake.NewClientset(), NodeName: node})
	for i := range 200 {
		p := pod(fmt.Sprintf("web-%d", i), node)
		p.Status.ContainerStatuses = []corev1.ContainerStatus{running("app", fmt.Sprintf("containerd://%064x", i), "nginx")}
		a.update(p)
	}
	id := fmt.Sprintf("%064x", 100)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, ok := a.Lookup(id); !ok {
				b.Fatal("not found")
			}
		}
	})
}

func TestLateCallbackReplaysRunningContainers(t *testing.T) {
	p := pod("web-0", node)
	p.Status.ContainerStatuses = []corev1.ContainerStatus{running("app", "containerd://"+idApp, "nginx")}
	p.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "init", ContainerID: "containerd://" + idInit,
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{}}}}
	a, _ := start(t, fake.NewClientset(p))
	eventually(t, "pod indexed", func() bool { _, ok := a.Lookup(idApp); return ok })
	var got []ContainerEvent
	a.OnContainer(func(ev ContainerEvent) { got = append(got, ev) })
	if len(got) != 1 || got[0].Type != ContainerStarted || got[0].ContainerID != idApp {
		t.Fatalf("replay = %+v, want only %s started", got, idApp)
	}
}

func TestStripRuntime(t *testing.T) {
	for in, want := range map[string]string{
		"containerd://" + idApp: idApp,
		"cri-o://" + idApp:      idApp,
		"docker://" + idApp:     idApp,
		idApp:                   idApp,
		"":                      "",
	} {
		if got := StripRuntime(in); got != want {
			t.Errorf("StripRuntime(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFindCgroupMatchesTheContainerNotItsMonitor(t *testing.T) {
	root := t.TempDir()
	pod := filepath.Join(root, "kubepods.slice", "kubepods-besteffort.slice", "kubepods-besteffort-pod1234_5678.slice")
	monitor := filepath.Join(root, "kubepods", "pod1234-5678", "crio-conmon-"+idApp)
	container := filepath.Join(pod, "cri-containerd-"+idApp+".scope")
	for _, d := range []string{monitor, container} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var st syscall.Stat_t
	if err := syscall.Stat(container, &st); err != nil {
		t.Fatal(err)
	}
	a := New(Options{Client: fake.NewClientset(), NodeName: node, CgroupRoot: root})
	if id, ok := a.CgroupIDFor("containerd://" + idApp); !ok || id != st.Ino {
		t.Errorf("CgroupIDFor = %d, %v; want %d (the container's directory)", id, ok, st.Ino)
	}
	if _, ok := a.CgroupIDFor(idNew); ok {
		t.Error("CgroupIDFor of a container without a cgroup = true")
	}
}

// Handlers called directly, for what a real watch rarely delivers: a
// crash loop's status and a deletion seen only through a relist.
func TestCrashLoopAndTombstone(t *testing.T) {
	a := New(Options{Client: fake.NewClientset(), NodeName: node})
	var got []string
	a.OnContainer(func(ev ContainerEvent) { got = append(got, ev.Type.String()+" "+ev.ContainerID[:1]) })

	p := pod("web-0", node)
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", ContainerID: "containerd://" + idApp,
		State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}}}
	a.update(p)
	if len(got) != 0 {
		t.Fatalf("a crash loop's exited container started: %v", got)
	}
	if _, ok := a.Lookup(idApp); !ok {
		t.Error("a crash loop's last container is not attributed (its late events are)")
	}
	p = p.DeepCopy()
	p.Status.ContainerStatuses[0].State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	a.update(p)
	a.delete(cache.DeletedFinalStateUnknown{Key: "shop/web-0", Obj: p})
	if want := []string{"started 1", "gone 1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("events = %v, want %v", got, want)
	}
	if _, ok := a.Lookup(idApp); ok {
		t.Error("a pod deleted during a relist is still attributed")
	}
}
