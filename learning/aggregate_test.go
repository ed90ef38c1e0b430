package learning

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

var transportT0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

var transportWeb = WorkloadID{Namespace: "shop", Workload: "Deployment/web", Container: "app", Image: "registry.example/shop/web", Digest: "sha256:aa"}

func transportExecKey(path string) Key {
	return Key{Kind: KindProcess, Operation: "exec", Path: path, ProcessName: path[len(path)-min(len(path), 5):]}
}

func TestAggregatorSummarisesEachRulesetWorkloadAndKey(t *testing.T) {
	a := NewAggregator("node-1", AggregatorOptions{BootID: "boot-a"})
	nginx := transportExecKey("/usr/bin/nginx")
	write := Key{Kind: KindFile, Operation: "createFile", Path: "/var/cache/nginx/1"}
	// Out of order in time, from five pods, in two rulesets.
	for i, off := range []int{30, 10, 50, 20, 40} {
		a.Add(Event{Rulesets: []string{"shop_runtime", "all_runtime"}, Workload: transportWeb, Pod: fmt.Sprintf("web-%d", 5-i), Key: nginx, Time: transportT0.Add(time.Duration(off) * time.Second)})
	}
	a.Add(Event{Rulesets: []string{"shop_runtime"}, Workload: transportWeb, Pod: "web-9", Key: write, Time: transportT0})

	b := a.Flush()
	if b == nil {
		t.Fatal("Flush returned nil after events")
	}
	if b.ID != "node-1/boot-a/1" || b.Node != "node-1" {
		t.Errorf("batch id %q node %q, want node-1/boot-a/1 node-1", b.ID, b.Node)
	}
	if len(b.Observations) != 3 {
		t.Fatalf("got %d observations, want 3 (2 rulesets × nginx, 1 × write): %+v", len(b.Observations), b.Observations)
	}
	// Sorted by ruleset, then key (file before process).
	want := []struct {
		ruleset string
		key     Key
		ev      Evidence
	}{
		{"all_runtime", nginx, Evidence{Count: 5, FirstSeen: transportT0.Add(10 * time.Second), LastSeen: transportT0.Add(50 * time.Second), Pods: []string{"web-1", "web-2", "web-3"}}},
		{"shop_runtime", write, Evidence{Count: 1, FirstSeen: transportT0, LastSeen: transportT0, Pods: []string{"web-9"}}},
		{"shop_runtime", nginx, Evidence{Count: 5, FirstSeen: transportT0.Add(10 * time.Second), LastSeen: transportT0.Add(50 * time.Second), Pods: []string{"web-1", "web-2", "web-3"}}},
	}
	for i, w := range want {
		o := b.Observations[i]
		if o.Ruleset != w.ruleset || o.Key != w.key || o.Workload != transportWeb {
			t.Errorf("observation %d: %s %+v %+v, want %s %+v", i, o.Ruleset, o.Key, o.Workload, w.ruleset, w.key)
		}
		if o.Evidence.Count != w.ev.Count || !o.Evidence.FirstSeen.Equal(w.ev.FirstSeen) || !o.Evidence.LastSeen.Equal(w.ev.LastSeen) || !slices.Equal(o.Evidence.Pods, w.ev.Pods) {
			t.Errorf("observation %d evidence %+v, want %+v", i, o.Evidence, w.ev)
		}
	}

	if b := a.Flush(); b != nil {
		t.Errorf("second Flush without events returned %s, want nil", b.ID)
	}
	a.Add(Event{Rulesets: []string{"shop_runtime"}, Workload: transportWeb, Key: nginx})
	b2 := a.Flush()
	if b2 == nil || b2.ID != "node-1/boot-a/2" {
		t.Fatalf("next batch %+v, want id node-1/boot-a/2", b2)
	}
	if ev := b2.Observations[0].Evidence; ev.Count != 1 || ev.FirstSeen.IsZero() || len(ev.Pods) != 0 {
		t.Errorf("event without time or pod: evidence %+v, want count 1, time now, no pods", ev)
	}
}

func TestAggregatorBootIDIsRandomUUIDByDefault(t *testing.T) {
	a, b := NewAggregator("n", AggregatorOptions{}), NewAggregator("n", AggregatorOptions{})
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	if !uuid.MatchString(a.BootID()) || a.BootID() == b.BootID() {
		t.Errorf("boot ids %q %q: want two distinct v4 UUIDs", a.BootID(), b.BootID())
	}
}

func TestAggregatorBoundsDistinctKeysAndCountsDrops(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := NewAggregator("n", AggregatorOptions{MaxKeys: 2, BootID: "b", Registerer: reg})
	ev := func(path string) Event {
		return Event{Rulesets: []string{"rs"}, Workload: transportWeb, Key: transportExecKey(path), Time: transportT0}
	}
	a.Add(ev("/bin/a"))
	a.Add(ev("/bin/b"))
	a.Add(ev("/bin/c")) // a third key: dropped
	a.Add(ev("/bin/a")) // a known key: still counted
	a.Add(ev("/bin/d")) // dropped
	if got := a.Dropped(); got != 2 {
		t.Errorf("Dropped() = %d, want 2", got)
	}
	if got := transportMetricValue(t, a.mDropped); got != 2 {
		t.Errorf("%s = %v, want 2", metricObservationsDropped, got)
	}
	b := a.Flush()
	if len(b.Observations) != 2 || b.Observations[0].Key.Path != "/bin/a" || b.Observations[0].Evidence.Count != 2 {
		t.Errorf("batch %+v: want /bin/a (count 2) and /bin/b", b.Observations)
	}
	// The next batch has room again.
	a.Add(ev("/bin/c"))
	if b := a.Flush(); b == nil || b.Observations[0].Key.Path != "/bin/c" {
		t.Errorf("after a flush a new key must fit: %+v", b)
	}
	if got := a.Dropped(); got != 2 {
		t.Errorf("Dropped() after flush = %d, want 2 (cumulative)", got)
	}
}

func TestAggregatorAddIsSafeConcurrently(t *testing.T) {
	a := NewAggregator("n", AggregatorOptions{BootID: "b"})
	const goroutines, each = 8, 2000
	var wg sync.WaitGroup
	var mu sync.Mutex
	var total uint64
	flushed := make(chan struct{})
	go func() { // flushes race with adds; nothing is lost or counted twice
		defer close(flushed)
		for range 20 {
			if b := a.Flush(); b != nil {
				mu.Lock()
				for _, o := range b.Observations {
					total += o.Evidence.Count
				}
				mu.Unlock()
			}
			time.Sleep(time.Millisecond)
		}
	}()
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				a.Add(Event{Rulesets: []string{"rs"}, Workload: transportWeb, Pod: fmt.Sprint("p", g), Key: transportExecKey(fmt.Sprint("/bin/", i%50)), Time: transportT0})
			}
		})
	}
	wg.Wait()
	<-flushed
	if b := a.Flush(); b != nil {
		for _, o := range b.Observations {
			total += o.Evidence.Count
		}
	}
	if total != goroutines*each {
		t.Errorf("counted %d events over all batches, want %d", total, goroutines*each)
	}
}

func TestAddSamplePodKeepsTheFirstNamesSorted(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   []string
		want []string
	}{
		{"fewer than the bound keep all sorted", []string{"c", "a"}, []string{"a", "c"}},
		{"duplicates count once", []string{"b", "b", "a", "b"}, []string{"a", "b"}},
		{"later smaller names replace the largest", []string{"x", "y", "z", "b", "a"}, []string{"a", "b", "x"}},
		{"larger names beyond the bound are ignored", []string{"a", "b", "c", "d"}, []string{"a", "b", "c"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var pods []string
			for _, p := range tt.in {
				pods = addSamplePod(pods, p)
			}
			if !slices.Equal(pods, tt.want) {
				t.Errorf("got %v, want %v", pods, tt.want)
			}
		})
	}
}

// BenchmarkAggregatorAdd measures the sensor hot path: an event of a
// known behaviour (the common case) and, in parallel, from every core.
func BenchmarkAggregatorAdd(b *testing.B) {
	keys := make([]Key, 64)
	for i := range keys {
		keys[i] = Key{Kind: KindFile, Operation: "modifyFile", Path: fmt.Sprintf("/var/lib/app/data/file-%d.db", i)}
	}
	ev := Event{Rulesets: []string{"shop_runtime"}, Workload: transportWeb, Pod: "web-7f9c-abcde", Time: transportT0}
	b.Run("serial", func(b *testing.B) {
		a := NewAggregator("n", AggregatorOptions{BootID: "b"})
		i := 0
		for b.Loop() {
			ev := ev
			ev.Key = keys[i%len(keys)]
			a.Add(ev)
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		a := NewAggregator("n", AggregatorOptions{BootID: "b"})
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				ev := ev
				ev.Key = keys[i%len(keys)]
				a.Add(ev)
				i++
			}
		})
	})
}

// transportMetricValue reads a counter's or gauge's value.
func transportMetricValue(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var out dto.Metric
	if err := m.Write(&out); err != nil {
		t.Fatalf("read metric: %v", err)
	}
	if c := out.GetCounter(); c != nil {
		return c.GetValue()
	}
	return out.GetGauge().GetValue()
}

func TestAggJSONLenBoundsTheEncodedLength(t *testing.T) {
	for _, s := range []string{"", "/usr/bin/nginx", "<>&\"\\", "\x00\x1f\n", "\xff\xfe", "\u2028\u2029", "héllo wörld", strings.Repeat("<\xff\u2028", 100)} {
		enc, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := aggJSONLen(s) + 2; got < len(enc) {
			t.Errorf("aggJSONLen(%q)+2 = %d < %d encoded", s, got, len(enc))
		}
	}
}

// A full batch of the longest and worst-escaped paths still fits what the
// controller accepts.
func TestAggregatorFullBatchIsAcceptedByTheController(t *testing.T) {
	h, store, _ := transportServer(t)
	a := NewAggregator("n1", AggregatorOptions{BootID: "b", Log: slog.New(slog.DiscardHandler)})
	long := "/" + strings.Repeat("<\xff", 4096/2-1)
	for i := 0; a.Dropped() == 0; i++ {
		a.Add(Event{Rulesets: []string{"rs"}, Workload: transportWeb, Pod: strings.Repeat("p", 63), Key: Key{Kind: KindFile, Operation: "createFile", Path: long[:len(long)-8] + fmt.Sprintf("%08d", i)}, Time: transportT0})
	}
	b := a.Flush()
	body := transportJSON(t, b)
	t.Logf("%d observations, %d bytes", len(b.Observations), len(body))
	if len(body) > MaxBatchBytes {
		t.Fatalf("batch of %d bytes exceeds MaxBatchBytes", len(body))
	}
	if rec := transportPost(h, transportToken, body); rec.Code != http.StatusOK {
		t.Fatalf("controller answered %d %s", rec.Code, rec.Body)
	}
	if st := store.Status(); len(st) != 1 || st[0].Behaviours != len(b.Observations) {
		t.Errorf("status %+v, want %d behaviours", st, len(b.Observations))
	}
}
