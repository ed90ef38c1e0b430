package toolcache

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDir(t *testing.T) {
	root := t.TempDir()
	script := "hack/build-x.sh"
	if err := os.MkdirAll(filepath.Join(root, "hack"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, script), []byte("#!/bin/bash\n[ \"$1\" = --print-dir ] && echo /cache/x-1.0 && exit 0\necho 'usage' >&2; exit 2\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	pkg := filepath.Join(root, "test", "x")
	if err := os.MkdirAll(pkg, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(pkg)

	t.Setenv("PALISADE_X", "")
	if dir, err := Dir("PALISADE_X", script); err != nil || dir != "/cache/x-1.0" {
		t.Errorf("from the script: %q, %v; want /cache/x-1.0", dir, err)
	}
	t.Setenv("PALISADE_X", "/elsewhere")
	if dir, err := Dir("PALISADE_X", script); err != nil || dir != "/elsewhere" {
		t.Errorf("from the environment: %q, %v; want /elsewhere", dir, err)
	}
	t.Setenv("PALISADE_X", "")
	if _, err := Dir("PALISADE_X", "hack/missing.sh"); err == nil || !strings.Contains(err.Error(), "set PALISADE_X") {
		t.Errorf("no script: %v; want an error naming the variable", err)
	}
}
