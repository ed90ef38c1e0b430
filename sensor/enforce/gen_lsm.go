package enforce

// The BPF LSM backend's objects, committed like the exec killer's (see
// gen.go). lsm.c reads the sensor's vmlinux.h plus bpf/lsm_types.h.
//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror" -target amd64,arm64 -type rule_key lsm bpf/lsm.c
