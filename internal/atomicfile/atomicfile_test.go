package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteReplacesAndLeavesNoTemporaryFile(t *testing.T) {
	dir := t.TempDir()
	for _, content := range []string{"first", "second"} {
		if err := Write(dir, "state.json", []byte(content)); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(dir, "state.json"))
		if err != nil || string(got) != content {
			t.Fatalf("content %q, %v; want %q", got, err, content)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 {
		t.Fatalf("directory holds %v (%v); want only state.json", entries, err)
	}
	// A temporary file a crash left behind goes; the file stays.
	crashed, err := os.CreateTemp(dir, tempPattern("state.json"))
	if err != nil {
		t.Fatal(err)
	}
	crashed.Close()
	RemoveLeftovers(dir, "state.json")
	if entries, _ := os.ReadDir(dir); len(entries) != 1 || entries[0].Name() != "state.json" {
		t.Errorf("after RemoveLeftovers the directory holds %v; want only state.json", entries)
	}
	if err := Write(filepath.Join(dir, "missing"), "x", nil); err == nil {
		t.Error("writing into a missing directory succeeded")
	}
}
