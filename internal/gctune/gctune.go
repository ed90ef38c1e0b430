// Package gctune sets the Go garbage collector for the commands that
// serve decisions (admission, scanner, up).
//
// A decision allocates tens of kilobytes of short-lived AST values, and
// the live heap (compiled bundles, informer caches) is pointer-dense, so
// with Go's default GOGC=100 the collector takes about a third of a
// decision's CPU (bundles' BenchmarkAdmissionDecision: 0.30 ms at
// GOGC=100, 0.23 ms at 400, 0.20 ms with the collector off, one run on
// a 2-core machine). Serve therefore collects at GOGC=400: the heap may
// grow to five times the live heap between collections instead of two.
//
// That is only safe with a ceiling: when GOMEMLIMIT is not set, Serve
// sets the soft memory limit to 90% of the container's cgroup memory
// limit, so the runtime collects harder as the heap nears the limit
// instead of being OOM-killed. Without a cgroup limit (a process on a
// host) the percentage is still raised: set GOGC or GOMEMLIMIT in the
// environment to choose otherwise; either one set leaves both alone.
//
// A percentage alone collects too often when the live heap is small. An
// admission webhook's live heap is a few megabytes (bench/admission: 8 MB
// with policies-example), so at GOGC=400 the collector ran every 0.45 s
// at 2,000 reviews/s, and each cycle's marking took 14–29 ms of wall
// time, during which the fractional mark worker takes a quarter of each
// CPU and allocating handlers assist: the requests of those windows were
// the p99 (see the closing notes of issue 4 for the measurements). What
// counts for a latency percentile is the share of requests served during
// a mark phase, that is how often the collector runs.
//
// ServeRequests, for the processes that answer admission reviews,
// therefore paces the collector by time under load: after every
// collection it measures the allocation rate since the one before and
// raises GOGC, when needed, so that the next heap goal leaves room for
// GCInterval (10 s) of allocation at that rate, up to MaxHeapFloor
// (256 MiB, or half the cgroup memory limit when that is smaller). The
// floor follows the load: at 50 reviews/s (about 3 MB/s) it is below the
// GOGC=400 goal and does nothing; at 1,000 reviews/s it is the cap. An
// idle webhook keeps a small heap, and a busy one trades memory for
// collections: at the cap, 2,000 reviews/s collect about every 2.5 s
// instead of every 0.45 s. The memory limit still caps the heap. The
// scanner, whose decisions nobody waits for, keeps Serve's settings only.
//
// ServeRequests also holds up the stack size that new goroutines start
// with, which the runtime derives from what the collector sees (stack.go).
package gctune

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Percent is the GOGC that Serve sets.
const Percent = 400

// MaxHeapFloor is the most ServeRequests raises the heap goal to (at most
// half the cgroup memory limit).
const MaxHeapFloor = 256 << 20

// GCInterval is the time between collections that ServeRequests makes
// room for in the heap goal, up to MaxHeapFloor.
const GCInterval = 10 * time.Second

// limitShare is the part of the cgroup memory limit given to the Go heap
// (the rest: goroutine stacks, runtime metadata, memory outside Go).
const limitShare = 0.9

// Settings is what Serve set, for the start-up log line.
type Settings struct {
	Percent     int   // GOGC now in effect, -1 when off
	MemoryLimit int64 // soft memory limit in bytes, 0 when none was set
	HeapFloor   int64 // the most the heap goal's floor rises to, in bytes; 0 when none
	FromEnv     bool  // GOGC or GOMEMLIMIT was set: nothing changed
}

// ServeRequests is Serve with the heap floor that paces collections by
// time: for palisade admission and palisade up. The environment's GOGC or
// GOMEMLIMIT leaves both alone. It also holds the starting goroutine
// stack size up (HoldStackStart), whatever the environment says.
func ServeRequests(cgroupRoot string) Settings {
	HoldStackStart()
	s, limit := serve(cgroupRoot)
	if s.FromEnv {
		return s
	}
	s.HeapFloor = MaxHeapFloor
	if limit > 0 {
		s.HeapFloor = min(s.HeapFloor, int64(limit/2))
	}
	keepFloor(uint64(s.HeapFloor), GCInterval, s.Percent)
	return s
}

// Serve applies the serving defaults unless the environment sets GOGC or
// GOMEMLIMIT. cgroupRoot is where the cgroup v2 (or v1) memory files are,
// "/sys/fs/cgroup" in a container.
func Serve(cgroupRoot string) Settings {
	s, _ := serve(cgroupRoot)
	return s
}

// serve is Serve, and returns the cgroup memory limit too (0 when none).
func serve(cgroupRoot string) (Settings, uint64) {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		p := debug.SetGCPercent(-1)
		debug.SetGCPercent(p)
		return Settings{Percent: p, FromEnv: true}, 0
	}
	s := Settings{Percent: Percent}
	limit, ok := cgroupMemoryLimit(cgroupRoot)
	if ok {
		s.MemoryLimit = int64(float64(limit) * limitShare)
		debug.SetMemoryLimit(s.MemoryLimit)
	}
	debug.SetGCPercent(Percent)
	return s, limit
}

// floor is the state of the heap floor: its cap, the interval it makes
// room for and the percentage it raises from, the GOGC it last set, and
// the allocation counter and time at the last collection.
var floor struct {
	mu       sync.Mutex
	max      uint64 // 0: no floor, and the chain of cleanups ends
	interval time.Duration
	base     int
	percent  int
	armed    bool
	allocs   uint64
	at       time.Time // zero: no collection seen yet
}

// keepFloor keeps the heap goal at or above interval's worth of
// allocation at the rate of the last cycle, at most most, from the next
// collection on, with base as GOGC otherwise (the caller has just set
// GOGC to base); most = 0 ends the floor, and GOGC stays as last set.
func keepFloor(most uint64, interval time.Duration, base int) {
	floor.mu.Lock()
	defer floor.mu.Unlock()
	floor.max, floor.interval, floor.base, floor.percent = most, interval, base, base
	floor.at = time.Time{}
	if most > 0 && !floor.armed {
		floor.armed = true
		arm()
	}
}

// sentinel is what a cleanup is attached to: allocated for each cycle
// and dropped at once, it is found unreachable by the next collection.
// It holds a pointer so that the tiny allocator, which batches small
// pointer-free objects (and so delays their cleanups), leaves it alone.
type sentinel struct {
	_ *byte
	_ [8]byte
}

func arm() { runtime.AddCleanup(new(sentinel), afterGC, 0) }

// afterGC runs after each collection: it sets GOGC for the heap just
// marked, and arms itself for the next collection.
func afterGC(int) {
	floor.mu.Lock()
	defer floor.mu.Unlock()
	if floor.max == 0 {
		floor.armed = false
		return
	}
	samples := []metrics.Sample{
		{Name: "/gc/heap/live:bytes"}, {Name: "/gc/scan/stack:bytes"}, {Name: "/gc/scan/globals:bytes"},
		{Name: "/gc/heap/allocs:bytes"},
	}
	metrics.Read(samples)
	now := time.Now()
	var n [4]uint64 // live heap, stacks, globals, bytes allocated so far
	for i, m := range samples {
		if m.Value.Kind() == metrics.KindUint64 {
			n[i] = m.Value.Uint64()
		}
	}
	var want uint64
	if !floor.at.IsZero() {
		want = floorFor(n[3]-floor.allocs, now.Sub(floor.at), floor.interval, floor.max)
	}
	floor.allocs, floor.at = n[3], now
	if p := percentFor(n[0], n[0]+n[1]+n[2], want, floor.base); p != floor.percent {
		debug.SetGCPercent(p)
		floor.percent = p
	}
	arm()
}

// floorFor is the heap goal that leaves room for interval's worth of
// allocation at the rate of the last cycle (allocated bytes over
// elapsed), at most most.
func floorFor(allocated uint64, elapsed, interval time.Duration, most uint64) uint64 {
	if elapsed <= 0 {
		return most
	}
	return uint64(min(float64(most), float64(allocated)*interval.Seconds()/elapsed.Seconds()))
}

// percentFor is the GOGC that makes the heap goal at least floor, and
// never lower than base. The runtime's goal is the live heap plus GOGC
// percent of scannable (the live heap, goroutine stacks and globals),
// and at least its heap minimum, 4 MiB scaled by GOGC/100: a percentage
// that brings the minimum to the floor is enough, and more would raise
// the goal above it when the live heap is tiny.
func percentFor(live, scannable, floor uint64, base int) int {
	if scannable == 0 || live+scannable*uint64(base)/100 >= floor {
		return base
	}
	p := ((floor-live)*100 + scannable - 1) / scannable // rounded up
	return max(base, int(min(p, (floor*100+heapMinimum-1)/heapMinimum)))
}

// heapMinimum is the runtime's smallest heap goal at GOGC=100
// (runtime.defaultHeapMinimum).
const heapMinimum = 4 << 20

// cgroupMemoryLimit reads the memory limit of the process's cgroup: v2's
// memory.max ("max" when unlimited) or v1's memory.limit_in_bytes (a huge
// number when unlimited).
func cgroupMemoryLimit(root string) (uint64, bool) {
	for _, file := range []string{root + "/memory.max", root + "/memory/memory.limit_in_bytes"} {
		raw, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		text := strings.TrimSpace(string(raw))
		if text == "max" {
			return 0, false
		}
		n, err := strconv.ParseUint(text, 10, 64)
		if err != nil || n == 0 || n >= 1<<62 {
			return 0, false
		}
		return n, true
	}
	return 0, false
}
