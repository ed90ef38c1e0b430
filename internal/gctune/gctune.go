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
// the p99 (see the closing notes of issue 4 for the measurements).
// ServeRequests, for the processes that answer admission reviews,
// therefore also keeps a floor under the heap goal: after every
// collection it raises GOGC, when needed, so that the next goal is at
// least HeapFloor (128 MiB, or a quarter of the cgroup memory limit when
// that is smaller), in the way of the GC tuners that services with small
// live heaps run. The memory limit still caps the heap, and with a live
// heap above a fifth of the floor the floor does nothing. The price is
// memory: under load the heap grows to the floor before a collection,
// where it would have stayed near five times the live heap. The scanner,
// whose decisions nobody waits for, keeps Serve's settings only.
package gctune

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
)

// Percent is the GOGC that Serve sets.
const Percent = 400

// HeapFloor is the heap goal below which ServeRequests does not let the
// collector start a cycle (at most a quarter of the cgroup memory limit).
const HeapFloor = 128 << 20

// limitShare is the part of the cgroup memory limit given to the Go heap
// (the rest: goroutine stacks, runtime metadata, memory outside Go).
const limitShare = 0.9

// Settings is what Serve set, for the start-up log line.
type Settings struct {
	Percent     int   // GOGC now in effect, -1 when off
	MemoryLimit int64 // soft memory limit in bytes, 0 when none was set
	HeapFloor   int64 // the heap goal's floor in bytes, 0 when none
	FromEnv     bool  // GOGC or GOMEMLIMIT was set: nothing changed
}

// ServeRequests is Serve with the heap floor: for palisade admission and
// palisade up. The environment's GOGC or GOMEMLIMIT leaves both alone.
func ServeRequests(cgroupRoot string) Settings {
	s, limit := serve(cgroupRoot)
	if s.FromEnv {
		return s
	}
	s.HeapFloor = HeapFloor
	if limit > 0 {
		s.HeapFloor = min(s.HeapFloor, int64(limit/4))
	}
	keepFloor(uint64(s.HeapFloor), s.Percent)
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

// floor is the state of the heap floor: the floor and the percentage it
// raises from, and the GOGC it last set.
var floor struct {
	mu      sync.Mutex
	bytes   uint64 // 0: no floor, and the chain of cleanups ends
	base    int
	percent int
	armed   bool
}

// keepFloor keeps the heap goal at or above bytes from the next
// collection on, with base as GOGC otherwise (the caller has just set
// GOGC to base); 0 bytes ends the floor, and GOGC stays as last set.
func keepFloor(bytes uint64, base int) {
	floor.mu.Lock()
	defer floor.mu.Unlock()
	floor.bytes, floor.base, floor.percent = bytes, base, base
	if bytes > 0 && !floor.armed {
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
	if floor.bytes == 0 {
		floor.armed = false
		return
	}
	samples := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/scan/stack:bytes"}, {Name: "/gc/scan/globals:bytes"}}
	metrics.Read(samples)
	var n [3]uint64 // live heap, stacks, globals
	for i, m := range samples {
		if m.Value.Kind() == metrics.KindUint64 {
			n[i] = m.Value.Uint64()
		}
	}
	if p := percentFor(n[0], n[0]+n[1]+n[2], floor.bytes, floor.base); p != floor.percent {
		debug.SetGCPercent(p)
		floor.percent = p
	}
	arm()
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
