package gctune

import (
	"runtime"
	"testing"
)

// TestHoldStackStart: with the anchors parked, and 200 other goroutines
// parked on a shallow stack (a busy serving process has fewer), the next
// collection makes new goroutines start with at least 8 KiB, enough for
// net/http's response flush, instead of the 2 KiB minimum.
func TestHoldStackStart(t *testing.T) {
	stop := make(chan struct{})
	defer close(stop)
	for range 200 {
		go func() { <-stop }()
	}
	HoldStackStart()
	HoldStackStart() // once per process: still four anchors
	runtime.GC()     // the anchors are at their depth: this collection sees them
	if size := StartingStackSize(); size < 8<<10 || size > 64<<10 {
		t.Fatalf("starting stack size %d bytes with %d goroutines, want 8-64 KiB", size, runtime.NumGoroutine())
	}
	if n := runtime.NumGoroutine(); n > 200+stackAnchors+2 {
		t.Errorf("%d goroutines: HoldStackStart started anchors more than once", n)
	}
}
