package vm

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/palisade-dev/palisade/internal/toolcache"
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
	dir, err := toolcache.Dir(EnvImageDir, buildScript)
	if err != nil {
		return "", fmt.Errorf("%w (%w)", err, ErrNoImage)
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
