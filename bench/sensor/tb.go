package main

import (
	"fmt"
	"os"
	"testing"
)

// harnessTB lets the program (not only `go test`) start containers with
// test/runtime, whose API takes a testing.TB because tests are its main
// user. It provides the methods test/runtime calls (Helper, Fatalf,
// Errorf, Cleanup, TempDir); any other method panics on the nil embedded
// interface, which is what we want if test/runtime starts needing more.
// Fatalf panics with a fatal value that run recovers into an error after
// the cleanups ran, so a failed run still removes its container.
type harnessTB struct {
	testing.TB
	tmp      string
	cleanups []func()
	errs     []string
}

// fatal is the panic value of harnessTB.Fatalf.
type fatal struct{ msg string }

func newHarnessTB() (*harnessTB, error) {
	tmp, err := os.MkdirTemp("", "palisade-bench-sensor-")
	if err != nil {
		return nil, fmt.Errorf("make temp dir: %w", err)
	}
	return &harnessTB{tmp: tmp}, nil
}

func (t *harnessTB) Helper() {}

func (t *harnessTB) Errorf(format string, args ...any) {
	t.errs = append(t.errs, fmt.Sprintf(format, args...))
}

func (t *harnessTB) Fatalf(format string, args ...any) {
	panic(fatal{fmt.Sprintf(format, args...)})
}

func (t *harnessTB) Cleanup(f func()) { t.cleanups = append(t.cleanups, f) }

func (t *harnessTB) TempDir() string {
	d, err := os.MkdirTemp(t.tmp, "")
	if err != nil {
		t.Fatalf("make temp dir: %v", err)
	}
	return d
}

// close runs the cleanups, last registered first as testing does, and
// returns what they reported.
func (t *harnessTB) close() error {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
	os.RemoveAll(t.tmp)
	if len(t.errs) > 0 {
		return fmt.Errorf("cleanup: %v", t.errs)
	}
	return nil
}
