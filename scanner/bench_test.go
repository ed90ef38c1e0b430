package scanner

import (
	"fmt"
	"runtime/debug"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/palisade-dev/palisade/internal/gctune"
)

// benchPods is the size of BenchmarkScan's cluster.
const benchPods = 10000

// benchCluster returns benchPods distinct pods in 50 team namespaces,
// payments and ci, as Deployments leave them: an app container and a log
// shipper, labels, a few hundred distinct images. About one pod in five
// violates a continuous rule (privileged, host network, latest tag, root).
func benchCluster() ([]*corev1.Pod, []*corev1.Namespace) {
	var namespaces []*corev1.Namespace
	nsNames := []string{"payments", "ci"}
	for i := range 50 {
		nsNames = append(nsNames, fmt.Sprintf("team-%02d", i))
	}
	for _, name := range nsNames {
		namespaces = append(namespaces, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
			Name:   name,
			Labels: map[string]string{"kubernetes.io/metadata.name": name, "team": name, "env": "prod"},
		}})
	}
	pods := make([]*corev1.Pod, benchPods)
	for i := range pods {
		ns := nsNames[i%len(nsNames)]
		app := fmt.Sprintf("svc-%03d", i%300)
		p := compliantPod(ns, fmt.Sprintf("%s-%05d", app, i))
		p.UID = types.UID(fmt.Sprintf("00000000-0000-0000-0000-%012d", i))
		p.Labels = map[string]string{"app": app, "pod-template-hash": fmt.Sprintf("%08x", uint32(i*2654435761)), "team": ns}
		p.Spec.ServiceAccountName = app
		p.Spec.NodeName = fmt.Sprintf("node-%03d", i%120)
		image := fmt.Sprintf("ghcr.io/acme/%s:1.%d.%d%s", app, i%300, i%7, digest)
		if ns == "payments" {
			image = fmt.Sprintf("ghcr.io/acme/payments/%s:2.%d.0%s", app, i%300, digest)
		}
		p.Spec.Containers[0].Image = image
		shipper := *p.Spec.Containers[0].DeepCopy()
		shipper.Name = "log-shipper"
		shipper.Image = fmt.Sprintf("ghcr.io/acme/log-shipper:3.1.%d%s", i%5, digest)
		shipper.Ports = nil
		shipper.Env = []corev1.EnvVar{{Name: "LEVEL", Value: "info"}, {Name: "POD", Value: p.Name}}
		p.Spec.Containers = append(p.Spec.Containers, shipper)
		switch {
		case i%50 == 0:
			privileged(p)
		case i%50 == 1:
			hostNetwork(p)
		case i%10 == 2:
			p.Spec.Containers[0].Image = fmt.Sprintf("ghcr.io/acme/%s:latest", app)
		case i%10 == 3:
			p.Spec.SecurityContext.RunAsNonRoot = nil
			p.Spec.SecurityContext.RunAsUser = nil
		}
		p.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)}
		pods[i] = p
	}
	return pods, namespaces
}

// BenchmarkScan measures the evaluation step of a full scan: every pod
// of the informer cache converted and decided, no action taken. Each pod
// is decided on its own; nothing is cached across pods but the engine's
// parsed image references, as in production.
func BenchmarkScan(b *testing.B) {
	eng := mustEngine(b, prodEngine)
	src := &engines{}
	src.p.Store(eng)
	s, err := New(Options{Kube: fake.NewClientset(), Engines: src})
	if err != nil {
		b.Fatal(err)
	}
	pods, namespaces := benchCluster()
	for _, p := range pods {
		if err := s.podIndexer.Add(p); err != nil {
			b.Fatal(err)
		}
	}
	for _, ns := range namespaces {
		if err := s.nsIndexer.Add(ns); err != nil {
			b.Fatal(err)
		}
	}
	all := func(string) bool { return true }
	ctx := b.Context()
	ev, err := s.evaluate(ctx, eng, now, true, all)
	if err != nil {
		b.Fatal(err)
	}
	actions := map[string]int{}
	for _, ns := range ev.namespaces {
		for _, r := range ns.pods {
			if r.err != nil {
				b.Fatalf("pod %s: %v", r.pod.Name, r.err)
			}
			actions[r.action]++
		}
	}
	if ev.evaluated != benchPods || actions["terminate"] == 0 || actions["isolate"] == 0 || actions["log"] == 0 {
		b.Fatalf("evaluated %d pods, actions %v: want %d with every action", ev.evaluated, actions, benchPods)
	}
	// With the garbage collector as palisade scanner sets it
	// (internal/gctune), and with Go's default.
	for _, gogc := range []int{gctune.Percent, 100} {
		b.Run(fmt.Sprintf("gogc=%d", gogc), func(b *testing.B) {
			defer debug.SetGCPercent(debug.SetGCPercent(gogc))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.evaluate(ctx, eng, now, true, all); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(benchPods*b.N)/b.Elapsed().Seconds(), "pods/s")
		})
	}
}
