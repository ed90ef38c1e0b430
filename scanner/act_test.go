package scanner

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/record"

	"github.com/palisade-dev/palisade/internal/metrics/metricstest"
)

func TestScanActsOnTheStrongestAction(t *testing.T) {
	h := newHarness(t, mustEngine(t, prodEngine), Options{},
		compliantPod(defaultNS, "compliant"),
		compliantPod(defaultNS, "logged", latestTag),
		compliantPod(defaultNS, "isolated", hostNetwork, latestTag),
		compliantPod(defaultNS, "terminated", privileged, hostNetwork),
		compliantPod(systemNS, "system", privileged, hostNetwork),
	)
	res := h.scan(t)

	if !slices.Equal(res.Terminated, []string{"default/terminated"}) || !slices.Equal(res.Isolated, []string{"default/isolated"}) {
		t.Errorf("terminated %v isolated %v, want default/terminated and default/isolated", res.Terminated, res.Isolated)
	}
	if res.Evaluated != 4 || res.Violations != 5 || res.Errors != 0 {
		t.Errorf("evaluated %d violations %d errors %d, want 4, 5, 0", res.Evaluated, res.Violations, res.Errors)
	}
	if _, err := h.kube.CoreV1().Pods(defaultNS).Get(h.ctx, "terminated", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("terminated pod still there: %v", err)
	}
	for _, name := range []string{"compliant", "logged", "isolated"} {
		p, err := h.kube.CoreV1().Pods(defaultNS).Get(h.ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("pod %s: %v", name, err)
		}
		got, labelled := p.Labels[IsolatedLabel]
		if want := name == "isolated"; labelled != want || (want && got != "hostNamespaces") {
			t.Errorf("pod %s isolation label %q (%t), want it only on isolated, = hostNamespaces", name, got, labelled)
		}
	}
	np, err := h.kube.NetworkingV1().NetworkPolicies(defaultNS).Get(h.ctx, NetworkPolicyName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("isolation NetworkPolicy: %v", err)
	}
	if want := IsolationPolicy(defaultNS); !equality.Semantic.DeepEqual(np.Spec, want.Spec) || np.Labels[ManagedByLabel] != ManagedBy {
		t.Errorf("NetworkPolicy %+v, want %+v", np, want)
	}
	if len(np.Spec.Ingress)+len(np.Spec.Egress) != 0 || len(np.Spec.PolicyTypes) != 2 {
		t.Errorf("NetworkPolicy allows traffic: %+v", np.Spec)
	}

	// The system namespace is never touched.
	if p, err := h.kube.CoreV1().Pods(systemNS).Get(h.ctx, "system", metav1.GetOptions{}); err != nil || p.Labels[IsolatedLabel] != "" {
		t.Errorf("system pod acted on: %+v, %v", p, err)
	}
	if w := writes(h.kube.Actions(), "networkpolicies"); slices.Contains(w, "create "+systemNS) {
		t.Errorf("NetworkPolicy written in the system namespace: %v", w)
	}

	// Every violation is an Event on its pod; the recorder sends them
	// asynchronously.
	want := map[string]string{
		"logged":     `violates rule latestTag "ghcr.io/acme/web:latest" in container(s) "app" (log)`,
		"isolated":   `violates rule hostNamespaces "hostNetwork=true" (isolate)`,
		"terminated": `violates rule privileged "true" in container(s) "app" (terminate)`,
	}
	h.waitCache(t, "events of every violation", func() bool {
		events, err := h.kube.CoreV1().Events(defaultNS).List(h.ctx, metav1.ListOptions{})
		if err != nil {
			return false
		}
		found := map[string]bool{}
		for _, e := range events.Items {
			if e.Reason == EventReason && e.Type == corev1.EventTypeWarning && e.Source.Component == Component &&
				strings.Contains(e.Message, want[e.InvolvedObject.Name]) {
				found[e.InvolvedObject.Name] = true
			}
		}
		return len(found) == len(want)
	})
}

func TestTerminateBudgetHoldsBackTheRest(t *testing.T) {
	var objs []runtime.Object
	for i := range 12 {
		objs = append(objs, compliantPod("batch", fmt.Sprintf("job-%02d", i), privileged))
	}
	for i := range 3 {
		objs = append(objs, compliantPod("other", fmt.Sprintf("job-%02d", i), privileged))
	}
	objs = append(objs, compliantPod("batch", "web"))
	h := newHarness(t, mustEngine(t, prodEngine), Options{TerminateBudget: 10}, objs...)
	res := h.scan(t)

	var wantDeleted []string
	for i := range 10 {
		wantDeleted = append(wantDeleted, fmt.Sprintf("batch/job-%02d", i))
	}
	wantDeleted = append(wantDeleted, "other/job-00", "other/job-01", "other/job-02")
	if !slices.Equal(res.Terminated, wantDeleted) {
		t.Errorf("terminated %v, want %v", res.Terminated, wantDeleted)
	}
	if want := []string{"batch/job-10", "batch/job-11"}; !slices.Equal(res.HeldBack, want) {
		t.Errorf("held back %v, want %v", res.HeldBack, want)
	}
	pods, _ := h.kube.CoreV1().Pods("batch").List(h.ctx, metav1.ListOptions{})
	var left []string
	for _, p := range pods.Items {
		left = append(left, p.Name)
	}
	slices.Sort(left)
	if want := []string{"job-10", "job-11", "web"}; !slices.Equal(left, want) {
		t.Errorf("pods left in batch %v, want %v", left, want)
	}
	if got := metricstest.Value(t, h.reg, MetricHeldBack, nil); got != 2 {
		t.Errorf("%s = %v, want 2", MetricHeldBack, got)
	}
	if got := metricstest.Value(t, h.reg, MetricTerminated, nil); got != 13 {
		t.Errorf("%s = %v, want 13", MetricTerminated, got)
	}

	// The report keeps the held back pods as failures, marked.
	rep := getReport(t, h, "batch")
	held := 0
	for _, r := range results(rep) {
		if r["rule"] == "privileged" && r["result"] != ResultFail {
			t.Errorf("privileged result %v, want fail", r["result"])
		}
		if props, _ := r["properties"].(map[string]any); props["heldBack"] == "true" {
			held++
		}
	}
	if held != 2 {
		t.Errorf("%d results marked heldBack, want 2", held)
	}

	// The next scan deletes the rest.
	h.waitCache(t, "deletions", func() bool { pods, _ := h.s.pods.Pods("batch").List(everything()); return len(pods) == 3 })
	if res := h.scan(t); !slices.Equal(res.Terminated, []string{"batch/job-10", "batch/job-11"}) || len(res.HeldBack) != 0 {
		t.Errorf("second scan terminated %v held back %v", res.Terminated, res.HeldBack)
	}
}

func TestIsolationIsIdempotentAndReversible(t *testing.T) {
	h := newHarness(t, mustEngine(t, prodEngine), Options{},
		compliantPod(defaultNS, "host", hostNetwork), compliantPod(defaultNS, "web"))
	if res := h.scan(t); !slices.Equal(res.Isolated, []string{"default/host"}) {
		t.Fatalf("isolated %v, want default/host", res.Isolated)
	}
	h.waitCache(t, "label and NetworkPolicy", func() bool {
		_, labelled := h.podLabel(defaultNS, "host", IsolatedLabel)
		_, err := h.s.netpols.NetworkPolicies(defaultNS).Get(NetworkPolicyName)
		return labelled && err == nil
	})

	// Nothing changed: nothing is written, and the Event is not recorded
	// again.
	h.kube.ClearActions()
	h.dyn.ClearActions()
	rec := record.NewFakeRecorder(10)
	h.s.recorder = rec
	res := h.scan(t)
	if len(rec.Events) != 0 {
		t.Errorf("second scan recorded %d Events again: %s", len(rec.Events), <-rec.Events)
	}
	for _, resource := range []string{"pods", "networkpolicies"} {
		if w := writes(h.kube.Actions(), resource); len(w) > 0 {
			t.Errorf("second scan wrote %s: %v", resource, w)
		}
	}
	if w := writes(h.dyn.Actions(), "policyreports"); len(w) > 0 {
		t.Errorf("second scan wrote reports: %v", w)
	}
	if len(res.Isolated)+len(res.Released) != 0 {
		t.Errorf("second scan isolated %v released %v", res.Isolated, res.Released)
	}
	if got := metricstest.Value(t, h.reg, MetricIsolated, nil); got != 1 {
		t.Errorf("%s = %v, want 1", MetricIsolated, got)
	}

	// An exception lifts the isolation: the label goes, and with the
	// last labelled pod the NetworkPolicy.
	h.engines.p.Store(mustEngine(t, exceptedEngine))
	if res := h.scan(t); !slices.Equal(res.Released, []string{"default/host"}) {
		t.Fatalf("released %v, want default/host", res.Released)
	}
	p, _ := h.kube.CoreV1().Pods(defaultNS).Get(h.ctx, "host", metav1.GetOptions{})
	if _, labelled := p.Labels[IsolatedLabel]; labelled {
		t.Errorf("label still on the pod: %v", p.Labels)
	}
	if _, err := h.kube.NetworkingV1().NetworkPolicies(defaultNS).Get(h.ctx, NetworkPolicyName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("NetworkPolicy not removed: %v", err)
	}
	if got := metricstest.Value(t, h.reg, MetricIsolated, nil); got != 0 {
		t.Errorf("%s = %v, want 0", MetricIsolated, got)
	}
}

// A label left by an earlier scan (or run) is removed when the pod no
// longer violates, and a NetworkPolicy without labelled pods goes.
func TestStaleIsolationIsRemoved(t *testing.T) {
	h := newHarness(t, mustEngine(t, prodEngine), Options{},
		compliantPod(defaultNS, "web", isolatedBy("hostNamespaces")), IsolationPolicy(defaultNS),
		compliantPod("other", "web"), IsolationPolicy("other"))
	res := h.scan(t)
	if !slices.Equal(res.Released, []string{"default/web"}) {
		t.Errorf("released %v, want default/web", res.Released)
	}
	for _, ns := range []string{defaultNS, "other"} {
		if _, err := h.kube.NetworkingV1().NetworkPolicies(ns).Get(h.ctx, NetworkPolicyName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("NetworkPolicy in %s not removed: %v", ns, err)
		}
	}
}

// Someone else's NetworkPolicy under Palisade's name is left alone.
func TestForeignNetworkPolicyIsKept(t *testing.T) {
	foreign := IsolationPolicy(defaultNS)
	foreign.Labels = nil
	h := newHarness(t, mustEngine(t, prodEngine), Options{}, compliantPod(defaultNS, "web"), foreign)
	h.scan(t)
	if _, err := h.kube.NetworkingV1().NetworkPolicies(defaultNS).Get(h.ctx, NetworkPolicyName, metav1.GetOptions{}); err != nil {
		t.Errorf("foreign NetworkPolicy deleted: %v", err)
	}
}

func TestAuditModeOnlyLogs(t *testing.T) {
	h := newHarness(t, mustEngine(t, auditEngine), Options{},
		compliantPod(defaultNS, "priv", privileged), compliantPod(defaultNS, "host", hostNetwork))
	res := h.scan(t)
	if len(res.Terminated)+len(res.Isolated)+len(res.HeldBack) != 0 || res.Violations != 2 {
		t.Fatalf("audit scan: %+v, want 2 violations and no action", res)
	}
	for _, resource := range []string{"pods", "networkpolicies"} {
		if w := writes(h.kube.Actions(), resource); len(w) > 0 {
			t.Errorf("audit scan wrote %s: %v", resource, w)
		}
	}
	for _, r := range results(getReport(t, h, defaultNS)) {
		if props, _ := r["properties"].(map[string]any); r["result"] != ResultWarn || props["action"] != "log" {
			t.Errorf("audit result %v action %v, want warn, log", r["result"], props["action"])
		}
	}
	h.waitCache(t, "audit events", func() bool {
		events, _ := h.kube.CoreV1().Events(defaultNS).List(h.ctx, metav1.ListOptions{})
		n := 0
		for _, e := range events.Items {
			if e.Reason == EventReason && strings.HasSuffix(e.Message, "(log)") {
				n++
			}
		}
		return n == 2
	})
}

func TestTruncate(t *testing.T) {
	for _, tt := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"0123456789abc", 10, "0123456…"},
		{"ééééé", 8, "éé…"}, // never half a rune
	} {
		if got := truncate(tt.in, tt.n); got != tt.want || len(got) > tt.n {
			t.Errorf("truncate(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}
