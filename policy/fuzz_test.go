package policy_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"
	"time"

	"github.com/palisade-dev/palisade/policy"
)

// FuzzLoad feeds arbitrary bytes to the loader as one policy file. It must
// never panic, and every error must point into the file.
func FuzzLoad(f *testing.F) {
	seeds, _ := filepath.Glob("../policies-example/*/*.yaml")
	more, _ := filepath.Glob("testdata/five-mistakes/*/*.yaml")
	for _, name := range append(seeds, more...) {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	// Learned rules with their ruleset in one file, so that the fuzzer
	// reaches their compilation.
	var both []byte
	for _, name := range []string{"../policies-example/rulesets/baseline_runtime.yaml", "../policies-example/learned/baseline_runtime.yaml"} {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		both = append(append(both, data...), "\n---\n"...)
	}
	f.Add(both)
	f.Fuzz(func(t *testing.T, data []byte) {
		fsys := fstest.MapFS{"f.yaml": {Data: data}}
		done := make(chan error, 1)
		go func() {
			_, err := policy.Load(fsys)
			done <- err
		}()
		var err error
		select {
		case err = <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("Load of %d bytes still running after 5s: %q", len(data), data)
		}
		if err == nil {
			return
		}
		var list policy.ErrorList
		if !errors.As(err, &list) {
			t.Fatalf("Load returned %T, want ErrorList: %v", err, err)
		}
		for _, e := range list {
			if e.Pos.File != "f.yaml" || e.Pos.Line < 0 || e.Msg == "" {
				t.Fatalf("error without a place in f.yaml: %#v", e)
			}
		}
	})
}
