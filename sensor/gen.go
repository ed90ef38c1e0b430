package sensor

// The BPF objects are committed (sensor_bpfel.o and its Go wrapper), so
// building and testing need no C toolchain; `make generate` rebuilds them
// with Debian's clang and libbpf-dev headers (apt-get install clang
// libbpf-dev). bpf/vmlinux.h is a hand-trimmed, committed header: the
// objects do not depend on the kernel of the machine that regenerates them.
//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror" -target bpfel -type event_hdr sensor bpf/sensor.c
