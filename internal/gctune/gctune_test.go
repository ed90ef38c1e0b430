package gctune

import (
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestCgroupMemoryLimit(t *testing.T) {
	for _, tc := range []struct {
		name, file, content string
		want                uint64
		ok                  bool
	}{
		{"v2 limit", "memory.max", "536870912\n", 536870912, true},
		{"v2 unlimited", "memory.max", "max\n", 0, false},
		{"v1 limit", "memory/memory.limit_in_bytes", "268435456\n", 268435456, true},
		{"v1 unlimited", "memory/memory.limit_in_bytes", "9223372036854771712\n", 0, false},
		{"garbage", "memory.max", "lots\n", 0, false},
		{"no file", "other", "1", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			path := filepath.Join(root, tc.file)
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			got, ok := cgroupMemoryLimit(root)
			if got != tc.want || ok != tc.ok {
				t.Errorf("limit %d, %v; want %d, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestServe(t *testing.T) {
	isolate(t)
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "memory.max"), []byte("1000000000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := Serve(root)
	if s.Percent != Percent || s.MemoryLimit != 900000000 || s.FromEnv {
		t.Errorf("settings %+v", s)
	}
	if p := debug.SetGCPercent(100); p != Percent {
		t.Errorf("GOGC %d, want %d", p, Percent)
	}
	if l := debug.SetMemoryLimit(-1); l != 900000000 {
		t.Errorf("memory limit %d, want 900000000", l)
	}

	// The operator's choice wins.
	t.Setenv("GOGC", "150")
	debug.SetGCPercent(150)
	if s := Serve(root); !s.FromEnv || s.Percent != 150 {
		t.Errorf("with GOGC set: %+v", s)
	}
	if p := debug.SetGCPercent(150); p != 150 {
		t.Errorf("GOGC changed to %d with GOGC set", p)
	}
}

func TestPercentFor(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		live, scannable, floor uint64
		base, want             int
	}{
		{8 * mib, 8 * mib, 128 * mib, 400, 1500},    // goal 8 + 8*15 = 128 MiB
		{8 * mib, 10 * mib, 128 * mib, 400, 1200},   // stacks and globals count: 8 + 10*12
		{10 * mib, 10 * mib, 128 * mib, 400, 1180},  // 10 + 118 = 128 MiB
		{7 * mib, 7 * mib, 128 * mib, 400, 1729},    // rounded up: 7 + 7*17.29 MiB
		{3 * mib, 3 * mib, 128 * mib, 400, 3200},    // the heap minimum, 4 MiB × 32, is the floor
		{26 * mib, 26 * mib, 128 * mib, 400, 400},   // 5 × 26 MiB is above the floor
		{200 * mib, 200 * mib, 128 * mib, 400, 400}, // live above the floor
		{0, 0, 128 * mib, 400, 400},                 // nothing measured yet
		{8 * mib, 8 * mib, 128 * mib, 100, 1500},    // the floor, whatever the base
		{64 * mib, 64 * mib, 128 * mib, 100, 100},   // 2 × 64 MiB is the floor
	} {
		got := percentFor(tc.live, tc.scannable, tc.floor, tc.base)
		if got != tc.want {
			t.Errorf("percentFor(%d, %d, %d MiB, %d) = %d, want %d", tc.live, tc.scannable, tc.floor/mib, tc.base, got, tc.want)
		}
		// The runtime's goal (runtime.gcControllerState.heapGoalInternal).
		goal := max(tc.live+tc.scannable*uint64(got)/100, heapMinimum*uint64(got)/100)
		if tc.scannable > 0 && (goal < tc.floor || (got > tc.base && goal > tc.floor+tc.scannable/100+heapMinimum/100)) {
			t.Errorf("live %d MiB: goal %d, want the floor %d", tc.live/mib, goal, tc.floor)
		}
	}
}

func TestFloorFor(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		allocated uint64
		elapsed   time.Duration
		want      uint64
	}{
		{56 * mib, time.Second, 256 * mib},             // 1,000 reviews/s: 560 MiB in 10 s, capped
		{3 * mib, time.Second, 30 * mib},               // 50 reviews/s: 10 s of it
		{30 * mib, 10 * time.Second, 30 * mib},         // the same rate over a longer cycle
		{0, time.Minute, 0},                            // idle
		{mib, 0, 256 * mib},                            // no time measured: the cap
		{mib, 100 * time.Millisecond, 100 * mib},       // a short cycle at a high rate
		{512 * mib, 120 * time.Second, 512 * mib / 12}, // the runtime's forced collection after 2 minutes
	} {
		if got := floorFor(tc.allocated, tc.elapsed, 10*time.Second, 256*mib); got != tc.want {
			t.Errorf("floorFor(%d MiB, %v) = %d, want %d", tc.allocated/mib, tc.elapsed, got, tc.want)
		}
	}
}

// TestFloorHoldsTheHeapGoal runs the floor in this process: under a high
// allocation rate the runtime's heap goal comes to the floor's cap after
// a collection, the same garbage is collected in far fewer cycles with
// the floor than without, and ending the floor ends its effect.
func TestFloorHoldsTheHeapGoal(t *testing.T) {
	keepFloor(0, 0, 100)
	isolate(t)
	samples := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	const garbage = 1 << 30 // 1 GiB in 4 KiB pieces, none kept
	// churn makes the garbage and counts the collections it took.
	churn := func() uint64 {
		metrics.Read(samples)
		start := samples[0].Value.Uint64()
		for range garbage / 4096 {
			sink = make([]byte, 4096)
		}
		metrics.Read(samples)
		return samples[0].Value.Uint64() - start
	}
	runtime.GC()
	without := churn()

	// Allocating as fast as it can, this test needs far more than the
	// cap in 10 s: after a collection, once its cleanup (afterGC, on the
	// cleanup goroutine) has run, the goal is the cap. This heap is tiny,
	// so the percentage is the one that brings the runtime's heap minimum
	// to it.
	const floorBytes = 256 << 20
	keepFloor(floorBytes, 10*time.Second, 100)
	if goal := goalUnderLoad(t); goal < floorBytes || goal > floorBytes+floorBytes/100 {
		t.Errorf("heap goal %d bytes after a collection, want the floor of %d", goal, floorBytes)
	}

	with := churn()
	t.Logf("1 GiB of garbage: %d collections at GOGC=100, %d with a %d MiB floor", without, with, floorBytes>>20)
	// 1 GiB over a 256 MiB goal: about four cycles.
	if with < 2 || with > 8 || with*4 > without {
		t.Errorf("%d collections with the floor, %d without: want 2 to 8, and under a quarter", with, without)
	}

	keepFloor(0, 0, 100)
	debug.SetGCPercent(100)
	runtime.GC()
	again := churn()
	if again*4 < without {
		t.Errorf("%d collections after the floor ended, %d before it began: the floor still holds", again, without)
	}
}

// TestFloorFollowsTheRate: at a low allocation rate the floor is what
// that rate allocates in the interval, far below the cap, and with no
// allocation the goal goes back to the base percentage's.
func TestFloorFollowsTheRate(t *testing.T) {
	keepFloor(0, 0, 100)
	isolate(t)
	const (
		mib      = 1 << 20
		most     = 256 * mib
		interval = 10 * time.Second
	)
	keepFloor(most, interval, 100)
	collect(t)
	// 1 MiB over at least 200 ms: at most 50 MiB in the interval.
	for range mib / 4096 {
		sink = make([]byte, 4096)
	}
	time.Sleep(200 * time.Millisecond)
	collect(t)
	goal := []metrics.Sample{{Name: "/gc/heap/goal:bytes"}}
	metrics.Read(goal)
	if g := goal[0].Value.Uint64(); g > 50*mib+mib || g >= most/4 {
		t.Errorf("heap goal %d MiB after 1 MiB in 200 ms, want at most 50 MiB", g/mib)
	}
	floor.mu.Lock()
	percent := floor.percent
	floor.mu.Unlock()
	if percent <= 100 {
		t.Errorf("GOGC %d after 1 MiB in 200 ms, want it raised for a goal of about 50 MiB", percent)
	}
	// Nothing allocated since: the base percentage.
	time.Sleep(200 * time.Millisecond)
	collect(t)
	floor.mu.Lock()
	percent = floor.percent
	floor.mu.Unlock()
	if percent > 150 {
		t.Errorf("GOGC %d after an idle cycle, want about the base, 100", percent)
	}
}

var sink []byte

// collect runs a collection and waits (at most 2 s) for afterGC to have
// run after it, on the cleanup goroutine.
func collect(t *testing.T) {
	t.Helper()
	last := func() time.Time {
		floor.mu.Lock()
		defer floor.mu.Unlock()
		return floor.at
	}
	before := last()
	runtime.GC()
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if last().After(before) {
			return
		}
	}
	t.Fatal("no cleanup after the collection")
}

// isolate sets GOGC to 100 and no memory limit, with GOGC and GOMEMLIMIT
// unset in the environment, and puts back the process's settings (and
// ends any floor) when the test ends.
func isolate(t *testing.T) {
	oldPercent, oldLimit := debug.SetGCPercent(100), debug.SetMemoryLimit(-1)
	t.Cleanup(func() { keepFloor(0, 0, 100); debug.SetGCPercent(oldPercent); debug.SetMemoryLimit(oldLimit) })
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
}

// goalUnderLoad makes 64 MiB of garbage as fast as it can between two
// collections, far more than any cap in GCInterval at that rate, and
// returns the runtime's heap goal once afterGC has run for the second.
//
// The collector is off in between, so that no other cycle splits the
// measured one: with cycles during the garbage, a cleanup goroutine that
// gets no CPU until the garbage is made (as when CI runs test packages
// side by side on 2 cores) measured a last cycle with nothing allocated
// in it, and rightly left the goal at the base percentage's.
func goalUnderLoad(t *testing.T) uint64 {
	t.Helper()
	collect(t)
	debug.SetGCPercent(-1)
	for range 64 << 20 / 4096 {
		sink = make([]byte, 4096)
	}
	collect(t)
	floor.mu.Lock()
	debug.SetGCPercent(floor.percent) // as afterGC set it, or left it
	floor.mu.Unlock()
	goal := []metrics.Sample{{Name: "/gc/heap/goal:bytes"}}
	metrics.Read(goal)
	return goal[0].Value.Uint64()
}

func TestServeRequests(t *testing.T) {
	isolate(t)
	limited, unlimited := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(limited, "memory.max"), []byte("400000000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(unlimited, "memory.max"), []byte("max\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if s := ServeRequests(unlimited); s.HeapFloor != MaxHeapFloor || s.Percent != Percent || s.MemoryLimit != 0 {
		t.Errorf("without a limit: %+v, want the floor's cap %d", s, MaxHeapFloor)
	}
	s := ServeRequests(limited)
	if s.HeapFloor != 200000000 || s.MemoryLimit != 360000000 {
		t.Errorf("with a 400 MB limit: %+v, want the floor's cap at half of it", s)
	}
	// The floor is in force: under load, after a collection and its
	// cleanup, the runtime's goal is the cap (this test's heap is far
	// below it).
	if g := goalUnderLoad(t); g < uint64(s.HeapFloor) {
		t.Errorf("heap goal %d after a collection, want at least the floor's cap %d", g, s.HeapFloor)
	}

	// The operator's choice wins: no floor either.
	keepFloor(0, 0, 100)
	t.Setenv("GOMEMLIMIT", "1GiB")
	if s := ServeRequests(limited); !s.FromEnv || s.HeapFloor != 0 {
		t.Errorf("with GOMEMLIMIT set: %+v", s)
	}
}
