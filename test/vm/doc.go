// Package vm runs a program inside a QEMU guest booting Debian 12's packaged
// kernel, for tests the host kernel cannot run: this host has bpf in its LSM
// list but refuses every trampoline-attached program (lsm, fentry, fexit),
// while Debian's 6.1 kernel attaches BPF LSM programs. cilium/ebpf tests
// across kernels the same way.
//
// hack/build-vm.sh (`make vm-image`) fetches the kernel and busybox-static
// into a cache; Run builds a fresh initramfs of busybox, an /init script and
// the caller's binary and files, boots it under TCG (KVM is not available
// here), and returns what the binary printed and its exit code. The /init
// script mounts proc, sysfs, devtmpfs, securityfs, bpffs, cgroup2, debugfs
// and tracefs before running the binary, then powers the guest off.
//
// BuildTest compiles a test package statically for the guest; inside, the
// binary sees EnvGuest=1. internal/lsmprobe is such a package: it attaches
// BPF LSM programs with cilium/ebpf and shows an open and an exec denied,
// the path the runtime sensor's blocking takes.
//
// Lifecycle: Boot returns only after QEMU has exited; it kills QEMU when the
// timeout passes, and the kernel kills it if the test binary dies first.
// Temporary files live in a directory Boot removes, or in t.TempDir for Run.
// Tests fail, never skip, when the cached kernel is missing.
package vm
