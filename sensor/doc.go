// Package sensor observes what happens inside containers on this node,
// from the kernel, and attributes it to containers by cgroup id.
//
// Load compiles nothing: it loads the committed BPF objects (bpf/sensor.c,
// built by bpf2go for amd64 and arm64; `make generate` rebuilds them with
// clang), attaches them to BTF-typed raw tracepoints (sched_process_exec,
// sched_process_fork, sys_enter, sys_exit: no tracefs, no kprobes), and
// starts one goroutine that drains the ring buffer into Events. The
// programs report only the cgroups user space has passed to Watch: a host
// process costs a compare of the syscall number per syscall, plus one hash
// lookup for the few syscalls and the exec and fork the sensor follows.
//
// Lifecycle: a Probe holds kernel objects (programs, links, maps) through
// file descriptors; Close detaches every program and releases them, and
// then closes the Events channel. A Probe that is never closed stays
// attached until the process exits. Events the ring buffer had no room for
// are counted by the kernel and reported by Drops, never lost silently.
//
// What each operation means, and its limits:
//
//   - exec: the file the kernel runs (the binprm's file: symlinks resolved,
//     /proc/self/exe and /dev/fd/N read as the file they name, a script's
//     interpreter), argv (first 1 KiB), interactive = a controlling TTY.
//   - fork: a new process (threads are not reported), with its parent's
//     executable.
//   - createFile, createExecutable, modifyFile, modifyExecutable from
//     opens: open, openat, openat2 and creat that succeeded and gave a
//     writable fd on a regular file; created when the kernel marked the
//     open as creating it, executable when the file has an exec bit. A
//     write-open counts as a modification whether or not it writes;
//     truncate(2), rename, link and writes through an fd opened before
//     Watch are not reported.
//   - modifyExecutable, modifyFile from chmod, fchmod, fchmodat and
//     fchmodat2 that succeeded: executable when the new mode has an exec
//     bit (so a chmod keeping a file executable, or +x on a directory,
//     counts too: the syscall shows the new mode only).
//   - deleteFile: unlink and unlinkat that succeeded, not rmdir.
//
// Paths are as the container sees them: the kernel walks dentries and
// mounts up to the task's root (at most 64 steps, 4 KiB; longer keeps the
// tail and sets PathTruncated). Paths given to unlink and chmod are joined
// to the cwd or dirfd in the kernel and cleaned lexically here: a ".."
// after a symlink may name another directory than the kernel used, and a
// final symlink is not followed. 32-bit (compat) syscalls on amd64 are not
// followed.
//
// The attribution helpers (Cgroup2Mount, CgroupPath, ParseCgroupPath) map
// a cgroup id to the cgroup v2 directory it names and that path to a
// container and pod uid, for the kubelet layouts (systemd and cgroupfs
// drivers) and the runtimes (containerd, CRI-O, Docker) a node runs, on
// pure cgroup v2 and hybrid hosts.
package sensor
