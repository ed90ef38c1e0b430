package scanner

import (
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
)

func everything() labels.Selector { return labels.Everything() }

func getReport(t *testing.T, h *harness, ns string) *unstructured.Unstructured {
	t.Helper()
	rep, err := h.dyn.Resource(PolicyReportGVR).Namespace(ns).Get(h.ctx, ReportName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("PolicyReport %s/%s: %v", ns, ReportName, err)
	}
	return rep
}

func results(rep *unstructured.Unstructured) []map[string]any {
	items, _, _ := unstructured.NestedSlice(rep.Object, "results")
	out := make([]map[string]any, len(items))
	for i, it := range items {
		out[i] = it.(map[string]any)
	}
	return out
}

func summary(rep *unstructured.Unstructured) Summary { return summaryOf(rep) }

// resultsByPod maps pod name to its results' "rule=result" strings.
func resultsByPod(rep *unstructured.Unstructured) map[string][]string {
	out := map[string][]string{}
	for _, r := range results(rep) {
		res := r["resources"].([]any)[0].(map[string]any)
		out[res["name"].(string)] = append(out[res["name"].(string)], fmt.Sprintf("%s=%s", r["rule"], r["result"]))
	}
	return out
}

func TestReportListsEveryPod(t *testing.T) {
	h := newHarness(t, mustEngine(t, prodEngine), Options{},
		compliantPod(defaultNS, "compliant"),
		compliantPod(defaultNS, "logged", latestTag),
		compliantPod(defaultNS, "isolated", hostNetwork),
		compliantPod(defaultNS, "terminated", privileged),
	)
	h.scan(t)
	rep := getReport(t, h, defaultNS)
	want := map[string][]string{
		"compliant":  {"all=pass"},
		"logged":     {"latestTag=warn"},
		"isolated":   {"hostNamespaces=fail"},
		"terminated": {"privileged=fail"},
	}
	got := resultsByPod(rep)
	for pod, w := range want {
		if !slices.Equal(got[pod], w) {
			t.Errorf("pod %s: results %v, want %v", pod, got[pod], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("report lists %d pods, want %d: %v", len(got), len(want), got)
	}
	if s := summary(rep); s != (Summary{Pass: 1, Warn: 1, Fail: 2}) {
		t.Errorf("summary %+v", s)
	}
	if rep.GetAnnotations()[AnnotationRevision] != "rev-prod" || rep.GetLabels()[ManagedByLabel] != ManagedBy || rep.GetKind() != "PolicyReport" {
		t.Errorf("report metadata: kind %s labels %v annotations %v", rep.GetKind(), rep.GetLabels(), rep.GetAnnotations())
	}
	for _, r := range results(rep) {
		if r["policy"] != "palisade" || r["timestamp"] == nil {
			t.Errorf("result without policy or timestamp: %v", r)
		}
		if r["result"] == ResultFail {
			props := r["properties"].(map[string]any)
			if r["severity"] != "high" || props["revision"] != "rev-prod" || props["action"] == "" || props["field"] == "" {
				t.Errorf("fail result lacks severity or properties: %v", r)
			}
		}
	}

	cluster, err := h.dyn.Resource(ClusterPolicyReportGVR).Get(h.ctx, ReportName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("ClusterPolicyReport: %v", err)
	}
	if s := summaryOf(cluster); s != (Summary{Pass: 1, Warn: 1, Fail: 2}) {
		t.Errorf("cluster summary %+v", s)
	}
	if rs := results(cluster); len(rs) != 1 || rs[0]["result"] != ResultFail || rs[0]["properties"].(map[string]any)["fail"] != "2" {
		t.Errorf("cluster results %v, want one failing namespace with 2 failures", rs)
	}
}

func TestReportIsBounded(t *testing.T) {
	var objs []runtime.Object
	for i := range 30 {
		objs = append(objs, compliantPod(defaultNS, fmt.Sprintf("logged-%02d", i), latestTag))
	}
	objs = append(objs, compliantPod(defaultNS, "zz-isolated", hostNetwork), compliantPod(defaultNS, "aa-compliant"))
	h := newHarness(t, mustEngine(t, prodEngine), Options{MaxReportResults: 10}, objs...)
	h.scan(t)
	rep := getReport(t, h, defaultNS)
	rs := results(rep)
	if len(rs) != 10 {
		t.Fatalf("%d results, want 10", len(rs))
	}
	// Failures come first, whatever the pod names.
	if rs[0]["result"] != ResultFail || rs[1]["result"] != ResultWarn {
		t.Errorf("results start %v, %v: want fail, then warn", rs[0]["result"], rs[1]["result"])
	}
	if s := summary(rep); s != (Summary{Pass: 1, Warn: 30, Fail: 1}) {
		t.Errorf("summary %+v, want every result counted", s)
	}
	if got := rep.GetAnnotations()[AnnotationOmitted]; got != strconv.Itoa(32-10) {
		t.Errorf("omitted annotation %q, want 22", got)
	}
}

func TestUnchangedReportIsNotWritten(t *testing.T) {
	h := newHarness(t, mustEngine(t, prodEngine), Options{}, compliantPod(defaultNS, "web", latestTag))
	h.scan(t)
	first := getReport(t, h, defaultNS)
	h.dyn.ClearActions()
	h.s.opts.Now = func() time.Time { return now.Add(time.Hour) } // only timestamps change
	h.scan(t)
	if w := writes(h.dyn.Actions(), "policyreports"); len(w) > 0 {
		t.Errorf("unchanged report written: %v", w)
	}
	if w := writes(h.dyn.Actions(), "clusterpolicyreports"); len(w) > 0 {
		t.Errorf("unchanged cluster report written: %v", w)
	}

	// A new revision is a change.
	h.engines.p.Store(mustEngine(t, fastEngine))
	h.scan(t)
	if w := writes(h.dyn.Actions(), "policyreports"); !slices.Equal(w, []string{"update " + defaultNS}) {
		t.Errorf("report writes after a new revision: %v, want one update", w)
	}
	second := getReport(t, h, defaultNS)
	if second.GetAnnotations()[AnnotationRevision] != "rev-fast" || second.GetUID() != first.GetUID() {
		t.Errorf("report not updated in place: %v", second.GetAnnotations())
	}
}

// A restarted scanner finds the reports it wrote and does not write them
// again.
func TestReportsSurviveRestart(t *testing.T) {
	h := newHarness(t, mustEngine(t, prodEngine), Options{}, compliantPod(defaultNS, "web"))
	h.scan(t)
	h.dyn.ClearActions()
	h.s.reports = newReporter(h.dyn, DefaultMaxReportResults, h.s.log, h.s.metrics)
	h.scan(t)
	for _, resource := range []string{"policyreports", "clusterpolicyreports"} {
		if w := writes(h.dyn.Actions(), resource); len(w) > 0 {
			t.Errorf("restarted scanner rewrote %s: %v", resource, w)
		}
	}
}

func TestReportOfEmptiedNamespaceIsDeleted(t *testing.T) {
	h := newHarness(t, mustEngine(t, prodEngine), Options{}, compliantPod("gone", "web"), compliantPod(defaultNS, "web"))
	h.scan(t)
	getReport(t, h, "gone")
	if err := h.kube.CoreV1().Pods("gone").Delete(h.ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	h.waitCache(t, "pod deleted", func() bool { pods, _ := h.s.pods.Pods("gone").List(everything()); return len(pods) == 0 })
	h.scan(t)
	if _, err := h.dyn.Resource(PolicyReportGVR).Namespace("gone").Get(h.ctx, ReportName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("report of the emptied namespace: %v, want NotFound", err)
	}
	cluster, _ := h.dyn.Resource(ClusterPolicyReportGVR).Get(h.ctx, ReportName, metav1.GetOptions{})
	if rs := results(cluster); len(rs) != 1 {
		t.Errorf("cluster report lists %d namespaces, want 1", len(rs))
	}
}
