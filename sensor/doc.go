// Package sensor observes what happens inside containers on this node,
// from the kernel, and attributes it to containers by cgroup id.
//
// Load compiles nothing: it loads the committed BPF objects (bpf/sensor.c,
// built by bpf2go for amd64 and arm64; `make generate` rebuilds them with
// clang), attaches them to BTF-typed raw tracepoints (sched_process_exec,
// sched_process_fork, sys_exit: no tracefs, no kprobes), and starts one
// goroutine that drains the ring buffer into Batches (Events is the same
// stream one event at a time, a channel operation per event more).
// Syscalls are seen at their exit only, their arguments read from the
// saved registers. The programs report only the cgroups user space has
// passed to Watch: a host process costs compares of the syscall number per
// syscall, plus one hash lookup for the few syscalls that succeeded and the
// exec and fork the sensor follows.
//
// Lifecycle: a Probe holds kernel objects (programs, links, maps) through
// file descriptors; Close detaches every program and releases them, and
// then closes the Batches and Events channels. A Probe that is never closed stays
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
//     writable fd on a regular file, or had O_TRUNC (which truncates even
//     a read-only open); created when the kernel marked the open as
//     creating it, executable when the file has an exec bit. A write-open
//     counts as a modification whether or not it writes; writes through an
//     fd opened before Watch are not reported.
//   - modifyFile, modifyExecutable from truncate and ftruncate that
//     succeeded: executable when the file is a regular file with an exec
//     bit (a truncate(2) through a symlink reads as modifyFile of the
//     link's path: the lookup below follows no symlink).
//   - rename, renameat, renameat2 that succeeded, mapped D4C-style to what
//     they do to the two paths: deleteFile at the old path (its file is
//     gone from there) and createFile at the new one, or createExecutable
//     when it is a regular file with an exec bit (a moved symlink is a
//     createFile); the delete comes first in the stream. A file the
//     rename replaced gets no deleteFile of its own: the create at its
//     path says what is there now. RENAME_EXCHANGE
//     keeps both files: a create at each path, no deleteFile. A
//     directory's rename is reported as nothing (no file of its own was
//     created or deleted).
//   - createFile from link, linkat, symlink and symlinkat that succeeded,
//     at the new name; a new name for an executable is createFile too.
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
// followed (told apart by the task's TS_COMPAT, not misread as the 64-bit
// call of the same number); on arm64, an AArch32 task's syscalls are not
// told apart yet.
//
// truncate(2) and rename name their file by path, and the kernel offers
// tracing programs no path lookup; the exec bit (and, for rename, whether
// it moved a directory) comes from a lookup of the path in the dcache,
// where the file the syscall just used is: from the task's root,
// component by component, crossing mounts, through at most 256 cached
// entries per lookup. The kernel puts the entry it just moved first in its
// directory, so the limit only bites on the way there. A path the lookup
// cannot follow (a ".." or a symlink on the way, a truncated path, an
// entry past the limit) reports the operation as on a plain file:
// modifyFile, createFile.
//
// The attribution helpers (Cgroup2Mount, CgroupPath, ParseCgroupPath) map
// a cgroup id to the cgroup v2 directory it names and that path to a
// container and pod uid, for the kubelet layouts (systemd and cgroupfs
// drivers) and the runtimes (containerd, CRI-O, Docker) a node runs, on
// pure cgroup v2 and hybrid hosts.
package sensor
