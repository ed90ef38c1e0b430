package vm

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// BuildTest compiles the test binary of the package in pkgDir (a path
// relative to the calling test's package directory, such as
// "./testdata/probe") for the guest: `go test -c` for linux/amd64 with
// CGO_ENABLED=0, so that it is static and needs no libc in the initramfs.
// The binary lands in t.TempDir(); run it with Args such as "-test.v".
func BuildTest(t testing.TB, pkgDir string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("build %s for the VM: %v", pkgDir, err)
	}
	out := filepath.Join(t.TempDir(), filepath.Base(filepath.Clean(pkgDir))+".test")
	cmd := exec.CommandContext(t.Context(), goBin, "test", "-c", "-o", out, pkgDir)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s for the VM: go test -c: %v\n%s", pkgDir, err, msg)
	}
	return out
}
