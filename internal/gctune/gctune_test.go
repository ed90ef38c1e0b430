package gctune

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
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
	oldPercent, oldLimit := debug.SetGCPercent(100), debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetGCPercent(oldPercent); debug.SetMemoryLimit(oldLimit) })
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
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
