package enforce

// The exec killer's BPF objects are committed like the sensor's (see
// sensor/gen.go): building and testing need no C toolchain; `make
// generate` rebuilds them with Debian's clang and libbpf-dev headers. The
// C reuses the sensor's trimmed, committed vmlinux.h.
//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror" -target amd64,arm64 -type exec_key execkill bpf/execkill.c
