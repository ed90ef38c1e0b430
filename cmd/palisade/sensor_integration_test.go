package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/bundle"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/palisade-dev/palisade/bundles"
	"github.com/palisade-dev/palisade/policy"
	"github.com/palisade-dev/palisade/sensor/agent"
	"github.com/palisade-dev/palisade/sensor/enforce"
	"github.com/palisade-dev/palisade/test/cluster"
	"github.com/palisade-dev/palisade/test/runtime"
)

func TestMain(m *testing.M) { os.Exit(cluster.Main(m)) }

// alertRuleset alerts on every exec of busybox (every program of the
// test container) without blocking it, since the container's init must
// live, blocks a copy of busybox at /tmp/bb, and blocks writes under
// /etc.
const alertRuleset = `apiVersion: palisade.dev/v1alpha1
kind: RuntimeRuleset
metadata: {name: busybox_exec}
spec:
  mode: enforce
  file:
    selectors:
      - {name: etc, operation: [createFile, modifyFile], targetFilePath: ["/etc/**"]}
    responses:
      - {match: [etc], actions: [alert, block]}
  process:
    selectors:
      - {name: busybox, operation: [exec], processExecutable: [/bin/busybox]}
      - {name: copy, operation: [exec], processExecutable: [/tmp/bb]}
    responses:
      - {match: [busybox], actions: [alert]}
      - {match: [copy], actions: [alert, block]}
`

const sensorCluster = `apiVersion: palisade.dev/v1alpha1
kind: Policy
metadata: {name: test}
spec:
  clusters: [test]
  clusterWide:
    runtime: {rulesets: [busybox_exec]}
`

// TestSensorAlertsOnExecInPod: the whole sensor, wired as `palisade
// sensor` wires it, against a real API server, a real runc container
// named by a Pod's status, the real kernel and a bundle served by
// bundles.Server: an exec in the container comes out as an alert line
// naming the pod, a blocked exec is killed, a write under /etc is denied
// in the container (fanotify) and not on the host, and /status says
// which backend enforces which operation.
func TestSensorAlertsOnExecInPod(t *testing.T) {
	if os.Geteuid() != 0 {
		// As every kernel-facing test here: a missing privilege fails
		// (CI runs as root), it does not pass by skipping.
		t.Fatal("the sensor loads BPF programs: run as root")
	}
	const node, wait = "sensor-node", 30 * time.Second
	c := cluster.Shared(t)
	kube, err := kubernetes.NewForConfig(c.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	// A namespace of its own per run: the API server is shared by -count.
	created, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "sensor-it-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ns := created.Name
	pod, err := kube.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-0", Namespace: ns},
		Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "app", Image: "busybox:1.36"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctr := runtime.Start(t, runtime.Options{PodUID: string(pod.UID)})
	pod.Status.Phase = corev1.PodRunning
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", ContainerID: ctr.ContainerID(),
		Image: "docker.io/library/busybox:1.36", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}
	if _, err := kube.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	// A policy repository whose one ruleset alerts on busybox, served.
	dir := t.TempDir()
	for name, body := range map[string]string{
		"clusters/test.yaml":         sensorCluster,
		"rulesets/busybox_exec.yaml": alertRuleset,
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	repo, err := policy.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := bundles.Build(repo, "test", "rev-it")
	if err != nil {
		t.Fatal(err)
	}
	srv := bundles.NewServer(bundles.ServerOptions{})
	defer srv.Close()
	if _, err := srv.Publish(map[string]*bundle.Bundle{"test": b}); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()

	// A free port for /status: runSensor listens where it is told.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := ln.Addr().String()
	ln.Close()
	alerts := filepath.Join(t.TempDir(), "alerts.jsonl")
	f := sensorFlags{
		bundle: bundleFlags{url: hs.URL + "/bundles/test.tar.gz"}, nodeName: node, kubeconfig: c.Kubeconfig,
		listen: listen, alertsFile: alerts, observationsFile: filepath.Join(t.TempDir(), "obs.jsonl"), logLevel: "warn",
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- runSensor(runCtx, io.Discard, f) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("runSensor: %v", err)
			}
		case <-time.After(wait):
			t.Error("runSensor did not return within the wait after cancel")
		}
	}()

	// The sensor watches the container once the informer has listed the
	// pod and the bundle is active: exec until an alert names the pod.
	deadline := time.Now().Add(wait)
	for {
		select {
		case err := <-done:
			t.Fatalf("runSensor returned early: %v", err)
		default:
		}
		if _, stderr, code := ctr.Exec(t, "/bin/true"); code != 0 {
			t.Fatalf("exec in the container: exit %d: %s", code, stderr)
		}
		raw, _ := os.ReadFile(alerts)
		for line := range strings.Lines(string(raw)) {
			var a agent.Line
			if err := json.Unmarshal([]byte(line), &a); err != nil {
				t.Fatalf("alert line %q: %v", line, err)
			}
			if a.Pod == "web-0" && a.Namespace == ns && a.Operation == "exec" && a.Path == "/bin/busybox" && a.Ruleset == "busybox_exec" {
				if a.Node != node || a.Container != "app" || a.Image != "docker.io/library/busybox:1.36" {
					t.Errorf("alert %+v", a)
				}
				checkExecBlocked(t, ctr, wait)
				checkWriteDenied(t, ctr, wait)
				checkStatus(t, "http://"+listen, wait)
				checkPodEvent(t, kube, ns, wait)
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no alert naming pod %s/web-0 within %s; alerts:\n%s", ns, wait, raw)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkExecBlocked: on a node without BPF LSM the exec killer holds the
// exact exec path of a block rule, so a copy of busybox at /tmp/bb dies
// by SIGKILL (a shell's 137) in the container.
func checkExecBlocked(t *testing.T, ctr *runtime.Container, wait time.Duration) {
	t.Helper()
	if _, stderr, code := ctr.Exec(t, "/bin/cp", "/bin/busybox", "/tmp/bb"); code != 0 {
		t.Fatalf("copy busybox: exit %d: %s", code, stderr)
	}
	deadline := time.Now().Add(wait)
	for {
		_, _, code := ctr.Exec(t, "/tmp/bb", "true")
		if code == 137 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("exec of the blocked /tmp/bb: exit %d, want 137 (killed) within %s", code, wait)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkWriteDenied: the /etc/** block denies `echo x > /etc/foo` in the
// container with EPERM (fanotify on the container's root mount, before
// the write), while a write to /tmp there works, and the host writes the
// same file both through the rootfs directory and through the marked
// mount itself (/proc/<pid>/root): host processes are never blocked.
func checkWriteDenied(t *testing.T, ctr *runtime.Container, wait time.Duration) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		_, stderr, code := ctr.Exec(t, "/bin/sh", "-c", "echo x > /etc/foo")
		if code != 0 && strings.Contains(stderr, "Operation not permitted") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("write to /etc/foo in the container: exit %d, %q; want EPERM within %s", code, stderr, wait)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if b, _ := os.ReadFile(filepath.Join(ctr.Rootfs(), "etc/foo")); strings.Contains(string(b), "x") {
		t.Errorf("/etc/foo holds %q after the denied write", b)
	}
	if _, stderr, code := ctr.Exec(t, "/bin/sh", "-c", "echo x > /tmp/foo"); code != 0 {
		t.Errorf("write to /tmp/foo in the container: exit %d: %s", code, stderr)
	}
	for _, p := range []string{filepath.Join(ctr.Rootfs(), "etc/foo"), fmt.Sprintf("/proc/%d/root/etc/host-%d", ctr.PID(), os.Getpid())} {
		if err := os.WriteFile(p, []byte("from the host\n"), 0o644); err != nil {
			t.Errorf("host write to %s: %v", p, err)
		}
	}
}

// checkStatus: /status counts the watched container, the alerts and the
// blocks, with the native matcher of the active revision and no
// unenforced block; it names the exec killer for the exact exec path and
// fanotify for the /etc writes, node-wide and for the container; /metrics
// has the sensor's series.
func checkStatus(t *testing.T, base string, wait time.Duration) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(wait)
	for {
		var s agent.Status
		resp, err := client.Get(base + "/status")
		if err == nil {
			err = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&s)
			resp.Body.Close()
		}
		if err == nil && s.Watched == 1 && s.Alerts > 0 && s.BlockedBy[enforce.BackendExecKill] > 0 && s.BlockedBy[enforce.BackendFanotify] > 0 &&
			s.Matcher == "native" && s.Revision == "rev-it" && len(s.Unenforced) == 0 && len(s.Containers) == 1 &&
			s.Containers[0].Enforced["exec"] == enforce.BackendExecKill && s.Containers[0].Enforced["modifyFile"] == enforce.BackendFanotify &&
			s.Containers[0].Enforced["createFile"] == enforce.BackendFanotify && s.Containers[0].FanotifyRoot != "" &&
			strings.Contains(s.Backends["exec"], enforce.BackendExecKill) && s.Backends["modifyFile"] == enforce.BackendFanotify {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/status = %+v, %v; want one watched container, alerts, exec-kill and fanotify blocks, the native matcher of rev-it", s, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	resp, err := client.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	for _, want := range []string{`palisade_sensor_events_total{operation="exec"}`, "palisade_sensor_drops_total", "palisade_sensor_alerts_total",
		"palisade_sensor_match_seconds_bucket", `palisade_sensor_blocked_total{backend="exec-kill"}`, `palisade_sensor_blocked_total{backend="fanotify"}`, "palisade_sensor_unenforced_blocks 0"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics has no %s", want)
		}
	}
}

// checkPodEvent: an alert also leaves a Kubernetes Event on the pod.
func checkPodEvent(t *testing.T, kube kubernetes.Interface, ns string, wait time.Duration) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		evs, err := kube.CoreV1().Events(ns).List(t.Context(), metav1.ListOptions{})
		if err == nil {
			for _, e := range evs.Items {
				if e.InvolvedObject.Kind == "Pod" && e.InvolvedObject.Name == "web-0" && e.Reason == "RuntimeAlert" {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no RuntimeAlert Event on pod %s/web-0 within %s (%v)", ns, wait, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
