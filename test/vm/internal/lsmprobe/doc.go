// Package lsmprobe holds a test that only runs inside test/vm's QEMU guest:
// it attaches BPF LSM programs, built from instructions in Go with
// cilium/ebpf (no clang), to file_open and bprm_check_security, and shows
// that an open and an exec of one marked file are denied and allowed again
// after detaching. It proves the path the runtime sensor's blocking takes,
// on a kernel that accepts trampoline programs; the host's refuses them,
// so there the test skips and says where it runs.
package lsmprobe
