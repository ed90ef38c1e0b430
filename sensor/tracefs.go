package sensor

import (
	"errors"
	"fmt"
	"syscall"
)

// tracefsDir is where the kernel expects tracefs (since 4.1), and the
// first place cilium/ebpf looks for the ids of syscall tracepoints.
const tracefsDir = "/sys/kernel/tracing"

const tracefsMagic = 0x74726163 // TRACEFS_MAGIC, linux/magic.h

// ensureTracefs mounts tracefs at tracefsDir when neither it nor debugfs's
// tracing directory is mounted, and reports whether it did. systemd
// mounts it at boot on a node; a minimal host or a pod's own mount
// namespace may not have it, and attaching a syscall tracepoint needs its
// event ids. It runs before the first attach because cilium/ebpf looks
// for tracefs once per process. Mounting needs CAP_SYS_ADMIN.
func ensureTracefs() (mounted bool, err error) {
	for _, dir := range []string{tracefsDir, "/sys/kernel/debug/tracing"} {
		var st syscall.Statfs_t
		if syscall.Statfs(dir, &st) == nil && st.Type == tracefsMagic {
			return false, nil
		}
	}
	if err := syscall.Mount("tracefs", tracefsDir, "tracefs", syscall.MS_NOSUID|syscall.MS_NODEV|syscall.MS_NOEXEC, ""); err != nil {
		if errors.Is(err, syscall.EBUSY) { // mounted meanwhile
			return false, nil
		}
		return false, fmt.Errorf("mount tracefs at %s: %w", tracefsDir, err)
	}
	return true, nil
}
