package vm

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// EnvImageDir names a directory holding vmlinuz and busybox; it overrides
// the cache directory that hack/build-vm.sh --print-dir names.
const EnvImageDir = "PALISADE_VM_DIR"

// buildScript prints the cache directory with --print-dir, relative to the
// repository root.
const buildScript = "hack/build-vm.sh"

// Files of the image directory, as hack/build-vm.sh writes them.
const (
	kernelFile  = "vmlinuz"
	busyboxFile = "busybox"
)

// ErrNoImage is returned (wrapped) when the kernel or busybox is missing;
// its message names the command that fetches them.
var ErrNoImage = errors.New("VM kernel image missing: run `make vm-image` (hack/build-vm.sh)")

var imageDir = sync.OnceValues(func() (string, error) {
	dir := os.Getenv(EnvImageDir)
	if dir == "" {
		root, err := repoRoot()
		if err != nil {
			return "", err
		}
		out, err := exec.Command("bash", filepath.Join(root, buildScript), "--print-dir").Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return "", fmt.Errorf("%s --print-dir: %w: %s (%w)", buildScript, err, strings.TrimSpace(string(ee.Stderr)), ErrNoImage)
			}
			return "", fmt.Errorf("%s --print-dir: %w", buildScript, err)
		}
		dir = strings.TrimSpace(string(out))
	}
	for _, f := range []string{kernelFile, busyboxFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return "", fmt.Errorf("%w: %v", ErrNoImage, err)
		}
	}
	return dir, nil
})

// ImageDir returns the directory of vmlinuz and busybox: $PALISADE_VM_DIR,
// or the cache that `make vm-image` fills. It returns an error wrapping
// ErrNoImage when either file is missing there.
func ImageDir() (string, error) { return imageDir() }

// repoRoot walks up from the working directory (a test's package
// directory) to the directory holding hack/build-vm.sh.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, buildScript)); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no %s above the working directory; set %s", buildScript, EnvImageDir)
		}
		dir = parent
	}
}
