package learning

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// transportBatch builds batch seq of (node, boot) with one observation per
// path, each counted count times at t.
func transportBatch(node, boot string, seq int, ruleset string, count uint64, t time.Time, pod string, paths ...string) *Batch {
	b := &Batch{ID: fmt.Sprintf("%s/%s/%d", node, boot, seq), Node: node, Sent: t}
	for _, p := range paths {
		o := Observed{Ruleset: ruleset, Workload: transportWeb, Key: transportExecKey(p), Evidence: Evidence{Count: count, FirstSeen: t, LastSeen: t}}
		if pod != "" {
			o.Evidence.Pods = []string{pod}
		}
		b.Observations = append(b.Observations, o)
	}
	return b
}

// transportOpenStore opens a store in dir whose clock returns *now.
func transportOpenStore(t testing.TB, dir string, now *time.Time) *Store {
	t.Helper()
	s, err := OpenStore(dir, StoreLog(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatalf("OpenStore: %v", err)
	}
	s.now = func() time.Time { return *now }
	t.Cleanup(func() { s.Close() })
	return s
}

func transportApply(t *testing.T, s *Store, b *Batch, want bool) {
	t.Helper()
	applied, err := s.Apply(b)
	if err != nil {
		t.Fatalf("Apply %s: %v", b.ID, err)
	}
	if applied != want {
		t.Fatalf("Apply %s applied = %v, want %v", b.ID, applied, want)
	}
}

func transportEvidence(t *testing.T, s *Store, ruleset, path string) Evidence {
	t.Helper()
	p, ok := s.Profile(ruleset)
	if !ok {
		t.Fatalf("no profile for %s", ruleset)
	}
	w := p.Workloads[WorkloadKey(transportWeb)]
	if w == nil {
		t.Fatalf("profile %s has no workload %s", ruleset, WorkloadKey(transportWeb))
	}
	for _, b := range w.Behaviour {
		if b.Key.Path == path {
			return b.Evidence
		}
	}
	t.Fatalf("profile %s has no behaviour %s", ruleset, path)
	return Evidence{}
}

func TestStoreMergesObservationsIntoProfiles(t *testing.T) {
	now := transportT0.Add(time.Hour)
	s := transportOpenStore(t, t.TempDir(), &now)

	transportApply(t, s, transportBatch("n1", "b", 1, "rs", 3, transportT0.Add(10*time.Minute), "web-c", "/bin/b", "/bin/a"), true)
	p, _ := s.Profile("rs")
	if !p.LastNew.Equal(now) {
		t.Errorf("LastNew = %v, want the receive time %v", p.LastNew, now)
	}
	firstNew := now

	// A second node: same keys (merged), earlier and later times, more pods.
	now = now.Add(time.Hour)
	b := transportBatch("n2", "b", 1, "rs", 2, transportT0, "web-a", "/bin/a")
	b.Observations[0].Evidence.LastSeen = transportT0.Add(time.Hour)
	b.Observations[0].Evidence.Pods = []string{"web-d", "web-a", "web-b"}
	transportApply(t, s, b, true)
	ev := transportEvidence(t, s, "rs", "/bin/a")
	want := Evidence{Count: 5, FirstSeen: transportT0, LastSeen: transportT0.Add(time.Hour), Pods: []string{"web-a", "web-b", "web-c"}}
	if !reflect.DeepEqual(ev, want) {
		t.Errorf("merged evidence %+v, want %+v", ev, want)
	}
	if p, _ := s.Profile("rs"); !p.LastNew.Equal(firstNew) {
		t.Errorf("LastNew moved to %v on known behaviour, want %v", p.LastNew, firstNew)
	}

	// A new key moves LastNew; Behaviour stays sorted.
	now = now.Add(time.Hour)
	transportApply(t, s, transportBatch("n1", "b", 2, "rs", 1, transportT0, "", "/bin/0"), true)
	p, _ = s.Profile("rs")
	if !p.LastNew.Equal(now) {
		t.Errorf("LastNew = %v after a new key, want %v", p.LastNew, now)
	}
	var paths []string
	for _, b := range p.Workloads[WorkloadKey(transportWeb)].Behaviour {
		paths = append(paths, b.Key.Path)
	}
	if !slices.Equal(paths, []string{"/bin/0", "/bin/a", "/bin/b"}) {
		t.Errorf("behaviour order %v, want sorted", paths)
	}

	// Profile is a copy.
	p.Workloads[WorkloadKey(transportWeb)].Behaviour[0].Evidence.Pods = []string{"mutated"}
	if ev := transportEvidence(t, s, "rs", "/bin/0"); len(ev.Pods) != 0 {
		t.Errorf("mutating Profile's result changed the store: %v", ev.Pods)
	}

	if got := s.Rulesets(); !slices.Equal(got, []string{"rs"}) {
		t.Errorf("Rulesets() = %v", got)
	}
	st := s.Status()
	if len(st) != 1 || st[0] != (ProfileStatus{Ruleset: "rs", Workloads: 1, Behaviours: 3, LastNew: now}) {
		t.Errorf("Status() = %+v", st)
	}
}

func TestStoreAppliesEachBatchIDOnce(t *testing.T) {
	now := transportT0
	s := transportOpenStore(t, t.TempDir(), &now)
	b := transportBatch("n1", "boot", 1, "rs", 4, transportT0, "", "/bin/a")
	transportApply(t, s, b, true)
	transportApply(t, s, b, false)
	// Out of order: 3, then 2, then 3 again.
	transportApply(t, s, transportBatch("n1", "boot", 3, "rs", 1, transportT0, "", "/bin/a"), true)
	transportApply(t, s, transportBatch("n1", "boot", 2, "rs", 1, transportT0, "", "/bin/a"), true)
	transportApply(t, s, transportBatch("n1", "boot", 3, "rs", 1, transportT0, "", "/bin/a"), false)
	// Another boot of the same node restarts at seq 1.
	transportApply(t, s, transportBatch("n1", "boot2", 1, "rs", 1, transportT0, "", "/bin/a"), true)
	if ev := transportEvidence(t, s, "rs", "/bin/a"); ev.Count != 7 {
		t.Errorf("count %d, want 7 (4+1+1+1, duplicates once)", ev.Count)
	}
	st := s.streams["n1/boot"]
	if st.Contig != 3 || len(st.Above) != 0 {
		t.Errorf("stream memory %+v, want contig 3 and nothing above", st)
	}
}

func TestStoreReopenLosesNothingAcknowledged(t *testing.T) {
	dir := t.TempDir()
	now := transportT0
	s := transportOpenStore(t, dir, &now)
	for i := 1; i <= 3; i++ {
		transportApply(t, s, transportBatch("n1", "b", i, "rs", 1, transportT0, fmt.Sprint("p", i), "/bin/a"), true)
	}
	// Fold into a snapshot, then journal two more after it.
	s.mu.Lock()
	if err := s.snapshotLocked(); err != nil {
		t.Fatal(err)
	}
	s.mu.Unlock()
	now = now.Add(time.Minute)
	transportApply(t, s, transportBatch("n1", "b", 4, "rs", 1, transportT0, "", "/bin/a"), true)
	transportApply(t, s, transportBatch("n1", "b", 6, "other", 1, transportT0, "", "/bin/b"), true)
	before, _ := s.Profile("rs")

	// A crash: the store is not closed, the directory is opened again.
	s2 := transportOpenStore(t, dir, &now)
	after, ok := s2.Profile("rs")
	if !ok || !reflect.DeepEqual(before, after) {
		t.Fatalf("profile after reopen\n%+v\nwant\n%+v", after, before)
	}
	if got := s2.Rulesets(); !slices.Equal(got, []string{"other", "rs"}) {
		t.Errorf("Rulesets() after reopen = %v", got)
	}
	for _, seq := range []int{1, 3, 4, 6} {
		transportApply(t, s2, transportBatch("n1", "b", seq, "rs", 1, transportT0, "", "/bin/a"), false)
	}
	transportApply(t, s2, transportBatch("n1", "b", 5, "rs", 1, transportT0, "", "/bin/a"), true)
	if ev := transportEvidence(t, s2, "rs", "/bin/a"); ev.Count != 5 {
		t.Errorf("count %d after reopen and resends, want 5", ev.Count)
	}
}

func TestStoreCrashBetweenSnapshotAndJournalTruncationCountsOnce(t *testing.T) {
	dir := t.TempDir()
	now := transportT0
	s := transportOpenStore(t, dir, &now)
	for i := 1; i <= 3; i++ {
		transportApply(t, s, transportBatch("n1", "b", i, "rs", 1, transportT0, "", "/bin/a"), true)
	}
	journal, err := os.ReadFile(filepath.Join(dir, storeJournalFile))
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	if err := s.snapshotLocked(); err != nil {
		t.Fatal(err)
	}
	s.mu.Unlock()
	// The journal as it was before the truncation that the crash prevented.
	if err := os.WriteFile(filepath.Join(dir, storeJournalFile), journal, 0o600); err != nil {
		t.Fatal(err)
	}
	s2 := transportOpenStore(t, dir, &now)
	if ev := transportEvidence(t, s2, "rs", "/bin/a"); ev.Count != 3 {
		t.Errorf("count %d, want 3: records in the snapshot replayed again", ev.Count)
	}
}

func TestStoreCutsATornJournalTail(t *testing.T) {
	dir := t.TempDir()
	now := transportT0
	s := transportOpenStore(t, dir, &now)
	transportApply(t, s, transportBatch("n1", "b", 1, "rs", 2, transportT0, "", "/bin/a"), true)
	s.Close()
	// A crash in the middle of the next append.
	f, err := os.OpenFile(filepath.Join(dir, storeJournalFile), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`0badc0de {"seq":2,"at":"2026-`); err != nil {
		t.Fatal(err)
	}
	f.Close()

	s2 := transportOpenStore(t, dir, &now)
	if ev := transportEvidence(t, s2, "rs", "/bin/a"); ev.Count != 2 {
		t.Errorf("count %d, want 2", ev.Count)
	}
	transportApply(t, s2, transportBatch("n1", "b", 2, "rs", 1, transportT0, "", "/bin/a"), true)
	s2.Close()
	s3 := transportOpenStore(t, dir, &now)
	if ev := transportEvidence(t, s3, "rs", "/bin/a"); ev.Count != 3 {
		t.Errorf("count %d after appending past the cut tail, want 3", ev.Count)
	}
}

func TestStoreRefusesAJournalDamagedBeforeGoodRecords(t *testing.T) {
	dir := t.TempDir()
	now := transportT0
	s := transportOpenStore(t, dir, &now)
	transportApply(t, s, transportBatch("n1", "b", 1, "rs", 1, transportT0, "", "/bin/a"), true)
	transportApply(t, s, transportBatch("n1", "b", 2, "rs", 1, transportT0, "", "/bin/a"), true)
	s.Close()
	path := filepath.Join(dir, storeJournalFile)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[20] ^= 0x01 // a flipped bit in the first record: its checksum fails
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = OpenStore(dir)
	if err == nil || !strings.Contains(err.Error(), "line 1 damaged") {
		t.Fatalf("OpenStore on a damaged journal: %v, want a line 1 damaged error", err)
	}
}

func TestStoreRejectsInvalidBatches(t *testing.T) {
	now := transportT0
	s := transportOpenStore(t, t.TempDir(), &now)
	b := transportBatch("n1", "b", 1, "rs", 1, transportT0, "", "/bin/a")
	b.Observations[0].Key.Operation = "open"
	if _, err := s.Apply(b); !errors.Is(err, ErrInvalidBatch) {
		t.Errorf("Apply with an unknown operation: %v, want ErrInvalidBatch", err)
	}
	if len(s.Rulesets()) != 0 {
		t.Error("an invalid batch left a profile")
	}
}

func TestStoreAppliedMemoryIsBounded(t *testing.T) {
	s := &Store{streams: map[string]*storeStream{}}
	// A batch the sender gave up on (seq 1) leaves a gap; the memory
	// above the watermark stops at storeMaxAbove.
	for seq := uint64(2); seq <= storeMaxAbove+5; seq++ {
		s.markApplied("n", "b", seq, transportT0)
	}
	st := s.streams["n/b"]
	if len(st.Above) > storeMaxAbove || st.Contig != storeMaxAbove+5 {
		t.Errorf("stream after a permanent gap: contig %d, %d above; want contig %d, none above", st.Contig, len(st.Above), storeMaxAbove+5)
	}
	// Runs of one node beyond storeMaxBootsPerNode: the least recent go.
	for i := range storeMaxBootsPerNode + 3 {
		s.markApplied("m", fmt.Sprint("boot", i), 1, transportT0.Add(time.Duration(i)*time.Minute))
	}
	var boots []string
	for _, st := range s.streams {
		if st.Node == "m" {
			boots = append(boots, st.Boot)
		}
	}
	slices.Sort(boots)
	if len(boots) != storeMaxBootsPerNode || slices.Contains(boots, "boot0") || !slices.Contains(boots, fmt.Sprint("boot", storeMaxBootsPerNode+2)) {
		t.Errorf("boots kept %v, want the %d most recent", boots, storeMaxBootsPerNode)
	}
	if s.streams["n/b"] == nil {
		t.Error("another node's run was evicted")
	}
}

func TestStoreSnapshotIsJSONOfProfilesAndIDs(t *testing.T) {
	dir := t.TempDir()
	now := transportT0
	s := transportOpenStore(t, dir, &now)
	transportApply(t, s, transportBatch("n1", "b", 1, "rs", 1, transportT0, "", "/bin/a"), true)
	s.mu.Lock()
	err := s.snapshotLocked()
	s.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, storeSnapshotFile))
	if err != nil {
		t.Fatal(err)
	}
	var snap storeSnapshot
	if err := json.Unmarshal(data, &snap); err != nil {
		t.Fatal(err)
	}
	if snap.Profiles["rs"] == nil || len(snap.Applied) != 1 || snap.Applied[0].Contig != 1 || snap.RecordSeq != 1 {
		t.Errorf("snapshot %s", data)
	}
	if fi, err := os.Stat(filepath.Join(dir, storeJournalFile)); err != nil || fi.Size() != 0 {
		t.Errorf("journal after snapshot: %v size %d, want empty", err, fi.Size())
	}
}

// BenchmarkStoreApply measures a batch of 100 observations made durable
// (one journal append and fsync, a snapshot every storeSnapshotRecords).
func BenchmarkStoreApply(b *testing.B) {
	now := transportT0
	s := transportOpenStore(b, b.TempDir(), &now)
	paths := make([]string, 100)
	for i := range paths {
		paths[i] = fmt.Sprintf("/var/lib/app/file-%d", i)
	}
	seq := 0
	for b.Loop() {
		seq++
		if _, err := s.Apply(transportBatch("n1", "b", seq, "rs", 1, transportT0, "web-1", paths...)); err != nil {
			b.Fatal(err)
		}
	}
}
