package gctune

import (
	"runtime/metrics"
	"sync"
)

// A request served over HTTP/2 starts two goroutines: net/http runs the
// handler on a new goroutine per stream, and flushes the connection's
// responses from a new goroutine per flush (the write reaches
// crypto/tls's handshake check, whose frame alone is half a kilobyte).
// Both start with the runtime's starting stack size, and both outgrow
// it: the runtime then copies the stack to one twice as large, and
// adjusts every frame on it, which is the most expensive thing in a
// small request.
//
// The starting size is adaptive (GODEBUG adaptivestackstart, on by
// default): at every collection the runtime sets it to the average stack
// in use over the goroutines it scanned, plus a guard, rounded up to a
// power of two. A serving process's goroutines are mostly parked with
// shallow stacks (a connection's reader, an informer's loop), so the
// average stays near 2 KiB, the minimum. HoldStackStart therefore parks
// stackAnchors goroutines, each with stackAnchorFrames frames of
// stackAnchorFrame bytes in use, so that the average, and the size new
// goroutines start with, is large enough for a request: for a process
// with G other goroutines of about 1 KiB each, new goroutines start with
// 128 KiB at G = 8 (the runtime's own), 64 KiB at 20, 32 KiB at 60,
// 8 KiB at 200 and 4 KiB from about 480 on; the anchors stop mattering
// (the 2 KiB minimum) only past 10,000. The anchors hold 1 MiB, and G
// goroutines started at those sizes hold 1-2 MiB. The handler still
// grows its own stack to what a review needs at once (admission's
// growStack), which is one copy of a shallow stack when the starting
// size is below that.
//
// Measured (2026-12-03):
//   - callgrind on bench/admission's BenchmarkServe (the load benchmark's
//     whole path in one process, GOGC=off): the stack copies were about
//     100,000 of Palisade's 943,000-961,000 instructions per review and
//     130,000 of the floor's 463,000-497,000; with the anchors, 846,000-
//     857,000 and 337,000-343,000;
//   - the load benchmark at 2,000 reviews/s, four runs of each build
//     interleaved: Palisade's server CPU per review 0.63-0.67 ms before,
//     0.58-0.62 ms after, its handler's median 0.52-0.62 ms before,
//     0.45-0.49 ms after.
const (
	stackAnchors = 4
	// The compiler moves a variable over 128 KiB to the heap, so an
	// anchor's stack is made of several frames.
	stackAnchorFrames = 4
	stackAnchorFrame  = 64 << 10
)

var (
	holdStack  sync.Once
	stackPark  = make(chan struct{}) // never closed: the anchors stay parked
	anchorSink byte
)

// HoldStackStart starts the goroutines that hold the runtime's starting
// stack size up, once per process, and returns when they are at their
// depth: from the next collection on, new goroutines start larger. It is
// independent of the collector's settings, and ServeRequests calls it.
func HoldStackStart() {
	holdStack.Do(func() {
		var deep sync.WaitGroup
		deep.Add(stackAnchors)
		for range stackAnchors {
			go anchor(stackAnchorFrames, &deep)
		}
		deep.Wait()
	})
}

// anchor parks with n frames of stackAnchorFrame bytes on its stack,
// after telling deep it is there.
//
//go:noinline
func anchor(n int, deep *sync.WaitGroup) {
	var frame [stackAnchorFrame]byte
	frame[n] = anchorSink
	if n > 1 {
		anchor(n-1, deep)
	} else {
		deep.Done()
		<-stackPark
	}
	anchorSink = frame[n]
}

// StartingStackSize is the stack size new goroutines start with now.
func StartingStackSize() uint64 {
	s := []metrics.Sample{{Name: "/gc/stack/starting-size:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
