package sensor

// The BPF objects are committed (sensor_x86_bpfel.o, sensor_arm64_bpfel.o
// and their Go wrappers), so building and testing need no C toolchain;
// `make generate` rebuilds them with Debian's clang and libbpf-dev headers
// (apt-get install clang libbpf-dev). One object per architecture: the
// syscall numbers and registers differ. bpf/vmlinux.h is a hand-trimmed,
// committed header, so the objects do not depend on the kernel of the
// machine that regenerates them (CO-RE relocates at load).
//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror" -target amd64,arm64 -type event_hdr sensor bpf/sensor.c
