// Package enforce blocks file and process operations inside containers,
// with BPF LSM where the kernel allows it and the backends a kernel
// without BPF LSM still offers, and probes which backends this node has.
//
// Backends, in the order the sensor prefers them (see Features.CanBlock):
//
//   - BPF LSM (LoadLSM: lsm/file_open, bprm_check_security, path_unlink,
//     path_chmod, ... with rules per cgroup in an LPM trie and drift
//     prevention through inode storage): denies before the operation with
//     EPERM. Probe reports whether the kernel loads LSM programs at all
//     (the build host's 6.18 refuses every trampoline program with EPERM;
//     TestLSMInVM proves the backend in a QEMU guest on Debian's 6.1).
//   - Fanotify: permission events (FAN_OPEN_PERM, FAN_OPEN_EXEC_PERM) on a
//     container's root mount; a user-space decision answers each open or
//     exec with allow or deny (EPERM). Opens only: it cannot deny unlink,
//     chmod or rename.
//   - ExecKiller: a tp_btf/sched_process_exec program that sends SIGKILL to
//     a process exec'ing a blocked path. The exec has happened; the
//     process dies before the binary runs an instruction (exit 137).
//
// The sensor calls Probe once at start and asks Features.CanBlock for
// each operation a block rule names: an operation no backend of the node
// can block is reported (with the kernel's reason), never ignored.
//
// Cost, measured on the build host (2 vCPUs, BenchmarkOpen and
// BenchmarkSpawn): fanotify adds ~75-115 µs to each open on a marked
// mount (two cross-CPU wakeups and a user-space decision), so it is for
// nodes without BPF LSM only; the exec killer adds no measurable time to a
// ~600 µs fork+exec of a container without rules.
//
// Lifecycle: each backend holds kernel objects (a fanotify group, BPF
// programs and maps) through file descriptors; Close releases them, after
// which nothing is blocked any more. A fanotify process waiting on a
// permission event is always answered: by the decision, by the deadline
// (allow, counted), or by Close (allow). Host processes are never
// affected: marks are on the container's own mount and exec rules are
// keyed by the container's cgroup id.
package enforce
