package scanner

import (
	"log/slog"
	"maps"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/palisade-dev/palisade/bundles"
	"github.com/palisade-dev/palisade/policy"
)

func TestSchedulerKeepsOneEntryPerSchedule(t *testing.T) {
	s := newScheduler(slog.New(slog.DiscardHandler))
	prod := mustEngine(t, prodEngine).Schedules()
	if !s.update(prod) {
		t.Fatal("first update reported no change")
	}
	specs := s.specs()
	slices.Sort(specs)
	// payments and ci have no schedule of their own: the default.
	if want := []string{"@every 10m", policy.DefaultSchedule}; !slices.Equal(specs, want) {
		t.Errorf("entries %v, want %v", specs, want)
	}
	if s.update(bundles.Schedules{ClusterWide: prod.ClusterWide, Namespaces: maps.Clone(prod.Namespaces)}) {
		t.Error("the same schedules rebuilt the entries")
	}
	for ns, want := range map[string]string{"default": "@every 10m", "payments": policy.DefaultSchedule, "ci": policy.DefaultSchedule} {
		if got := s.scheduleOf(ns); got != want {
			t.Errorf("schedule of %s: %q, want %q", ns, got, want)
		}
	}

	// Another bundle: the entry of a schedule that stays keeps its timing.
	kept := s.entries["@every 10m"]
	if !s.update(bundles.Schedules{ClusterWide: "@every 10m", Namespaces: map[string]string{"payments": "0 3 * * *", "ci": "not a schedule"}}) {
		t.Fatal("new schedules reported no change")
	}
	if s.entries["@every 10m"] != kept {
		t.Error("the unchanged schedule's entry was replaced")
	}
	specs = s.specs()
	slices.Sort(specs)
	if want := []string{"0 3 * * *", "@every 10m", policy.DefaultSchedule}; !slices.Equal(specs, want) {
		t.Errorf("entries %v, want %v", specs, want)
	}
	if got := s.scheduleOf("ci"); got != policy.DefaultSchedule {
		t.Errorf("namespace with an invalid schedule runs on %q, want the default", got)
	}
	if n := len(s.cron.Entries()); n != 3 {
		t.Errorf("%d cron entries, want 3", n)
	}
}

func TestSchedulerCoalescesFirings(t *testing.T) {
	s := newScheduler(slog.New(slog.DiscardHandler))
	s.update(bundles.Schedules{ClusterWide: "@every 1h", Namespaces: map[string]string{"payments": "@every 2h"}})
	for _, e := range s.cron.Entries() {
		e.Job.Run()
		e.Job.Run()
	}
	select {
	case <-s.wake:
	default:
		t.Fatal("firing did not wake the loop")
	}
	select {
	case <-s.wake:
		t.Fatal("four firings queued more than one wake-up")
	default:
	}
	due := s.take()
	if len(due) != 2 || !due["@every 1h"] || !due["@every 2h"] {
		t.Errorf("due %v, want both schedules", due)
	}
	if len(s.take()) != 0 {
		t.Error("take did not forget")
	}
}

// Run scans in full at start and on Trigger, and otherwise only the
// namespaces whose schedule is due.
func TestRunScansOnScheduleAndTrigger(t *testing.T) {
	h := newIdleHarness(t, mustEngine(t, fastEngine), Options{}) // default: @every 1s, payments: @every 5m
	ctx := h.ctx
	done := make(chan error, 1)
	go func() { done <- h.s.Run(ctx) }()
	t.Cleanup(func() {
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	h.waitCache(t, "first scan's cluster report", func() bool {
		_, err := h.dyn.Resource(ClusterPolicyReportGVR).Get(ctx, ReportName, metav1.GetOptions{})
		return err == nil
	})
	if err := h.s.Run(ctx); err != ErrRunning {
		t.Errorf("second Run: %v, want ErrRunning", err)
	}

	payments := compliantPod("payments", "api", func(p *corev1.Pod) { p.Spec.Containers[0].Image = "ghcr.io/acme/payments/api:2.3.1" + digest }, privileged)
	for _, p := range []*corev1.Pod{compliantPod(defaultNS, "priv", privileged), payments} {
		if _, err := h.kube.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	gone := func(ns, name string) bool {
		_, err := h.kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !gone(defaultNS, "priv") {
		if time.Now().After(deadline) {
			t.Fatal("the 1s schedule did not terminate the privileged pod in default")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(1500 * time.Millisecond) // another scheduled scan of default
	if gone("payments", "api") {
		t.Fatal("a scan of default's schedule terminated a pod in payments (5m schedule)")
	}
	h.s.Trigger()
	deadline = time.Now().Add(5 * time.Second)
	for !gone("payments", "api") {
		if time.Now().After(deadline) {
			t.Fatal("Trigger did not scan payments")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
