// SPDX-License-Identifier: GPL-2.0
//
// Kill at exec: the fallback for blocking exec on a kernel that refuses
// BPF LSM programs. sched_process_exec fires after the kernel has
// committed to the new image (the old one is gone, the new one has not
// run a user instruction yet), so this cannot make execve fail: it sends
// SIGKILL to the task, which dies before the blocked binary runs any code
// of its own. The parent sees a death by SIGKILL (a shell reports 137),
// not EPERM.
//
// Cost for everyone else: one hash lookup of the current cgroup id in
// `blocked_cgroups` per exec on the node; only a cgroup with exec rules
// pays the path walk and the second lookup.

#include "../../bpf/vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

#define SIGKILL 9
// Blocked paths are exact, at most PATH_KEY-1 bytes: long enough for any
// executable path a rule names; a longer executed path never matches.
#define PATH_KEY 256
#define NAME_MAX 255
// Build area: positions are masked with BUILD-1 and a component adds at
// most NAME_MAX bytes, so the array is twice BUILD: every access the
// verifier can imagine stays in bounds.
#define BUILD 512
// Path components walked per exec: a loop bound the verifier checks.
#define MAX_DEPTH 32

struct exec_key {
	u64 cgroup_id;
	char path[PATH_KEY];
};

struct scratch {
	struct exec_key key;
	char build[2 * BUILD];
};

// Cgroups with at least one blocked path: the cheap first test.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, u64);
	__type(value, u32);
} blocked_cgroups SEC(".maps");

// (cgroup id, exact path as the container sees it, NUL-padded) → 1.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct exec_key);
	__type(value, u8);
} blocked_paths SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} kills SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct scratch);
} scratch SEC(".maps");

#include "walk.h"

SEC("tp_btf/sched_process_exec")
int BPF_PROG(kill_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	u64 cg = bpf_get_current_cgroup_id();
	if (!bpf_map_lookup_elem(&blocked_cgroups, &cg))
		return 0;
	u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s)
		return 0;
	struct task_struct *task = (void *)bpf_get_current_task();
	struct file *f = BPF_CORE_READ(bprm, file);
	struct vfsmount *vmnt = BPF_CORE_READ(f, f_path.mnt);
	struct walk w = {
		.dentry = BPF_CORE_READ(f, f_path.dentry),
		.vmnt = vmnt,
		.mnt = (void *)vmnt - bpf_core_field_offset(struct mount, mnt),
		.root_dentry = BPF_CORE_READ(task, fs, root.dentry),
		.root_mnt = BPF_CORE_READ(task, fs, root.mnt),
		.s = s,
		.pos = PATH_KEY - 1, // the path ends before the key's last byte: NUL
	};
	bpf_loop(MAX_DEPTH, walk_step, &w, 0);
	if (!w.done)
		return 0; // deeper or longer than any key: cannot be blocked
	u32 pos = w.pos & (BUILD - 1);
	if (pos >= PATH_KEY - 1)
		return 0; // "/" itself is no executable
	s->key.cgroup_id = cg;
	__builtin_memset(s->key.path, 0, PATH_KEY);
	u32 len = (PATH_KEY - 1 - pos) & (PATH_KEY - 1);
	bpf_probe_read_kernel(s->key.path, len, &s->build[pos & (BUILD - 1)]);
	if (!bpf_map_lookup_elem(&blocked_paths, &s->key))
		return 0;
	if (bpf_send_signal(SIGKILL) == 0) {
		u64 *n = bpf_map_lookup_elem(&kills, &zero);
		if (n)
			*n += 1;
	}
	return 0;
}
