// SPDX-License-Identifier: GPL-2.0
//
// Palisade's runtime sensor: process and file events of watched containers.
//
// Every program first looks the current cgroup id up in `watched`, a set
// user space fills with the cgroup ids of containers: a host process costs
// one hash lookup and nothing else. Events go to one ring buffer as a fixed
// header (struct event_hdr) followed by path_len bytes of path and
// argv_len bytes of NUL-separated argv. Paths are built by walking dentries
// and mounts up to the task's root (fs->root), so they read as the
// container sees them; see resolve_path for the limits.

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

// Operations, numbered as sensor.Op in Go.
enum op {
	OP_FORK = 1,
	OP_EXEC = 2,
	OP_CREATE_FILE = 3,
	OP_MODIFY_FILE = 4,
	OP_DELETE_FILE = 5,
	OP_CREATE_EXECUTABLE = 6,
	OP_MODIFY_EXECUTABLE = 7,
};

// Event flags.
#define FLAG_INTERACTIVE 1	 // the process has a controlling TTY
#define FLAG_PATH_TRUNCATED 2 // deeper than MAX_DEPTH or longer than PATH_BUF
#define FLAG_ARGV_TRUNCATED 4 // argv longer than ARGV_MAX

// Sizes are powers of two: offsets are masked with size-1 so that the
// verifier can bound every access into the scratch buffers.
#define PATH_BUF 4096
#define ARGV_MAX 1024
#define NAME_MAX 255
// Path components walked per path; a loop bound the verifier can check.
#define MAX_DEPTH 64

#define AT_FDCWD -100
#define AT_REMOVEDIR 0x200
#define FMODE_WRITE 0x2
#define FMODE_CREATED 0x100000
#define S_IFMT 00170000
#define S_IFREG 0100000
#define S_IXUGO 00111

struct event_hdr {
	u64 ktime_ns;  // bpf_ktime_get_ns: CLOCK_MONOTONIC
	u64 cgroup_id; // bpf_get_current_cgroup_id: the cgroup v2 id
	u32 pid;       // thread group id (the process id user space sees)
	u32 tid;
	u32 ppid;
	u32 op;
	u32 flags;
	u16 path_len;
	u16 argv_len;
	char comm[16];
};

// One per CPU: the event being built, and room to build a path backwards.
// The data area is twice PATH_BUF so that joining a directory and a
// relative path, each bounded by PATH_BUF, stays in bounds.
struct scratch {
	struct event_hdr hdr;
	char data[2 * PATH_BUF];
	char pathbuf[2 * PATH_BUF];
	char upath[PATH_BUF];
};

// A syscall seen at entry, finished at exit when it succeeded.
struct pending {
	u64 upath; // user pointer to the path argument, 0 for fchmod
	s32 dfd;
	u32 mode;
	u32 op;
	u32 _pad;
};

// Set from user space before load (sensor.Options.WakeupBytes): the
// ring buffer wakes its reader only once this much data is pending; the
// reader's deadline bounds the latency of the rest.
volatile const u64 wakeup_bytes = 64 * 1024;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, u64);
	__type(value, u8);
} watched SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 * 1024 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} drops SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct scratch);
} scratch SEC(".maps");

// LRU: an entry whose exit never came (the task died in the syscall)
// ages out instead of filling the map.
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, u64);
	__type(value, struct pending);
} pendings SEC(".maps");

// Force BTF for the header so bpf2go generates its Go type.
const struct event_hdr *unused_event_hdr __attribute__((unused));

static __always_inline bool is_watched(void)
{
	u64 cg = bpf_get_current_cgroup_id();
	return bpf_map_lookup_elem(&watched, &cg) != NULL;
}

static __always_inline struct scratch *get_scratch(void)
{
	u32 zero = 0;
	return bpf_map_lookup_elem(&scratch, &zero);
}

static __always_inline void fill_hdr(struct scratch *s, struct task_struct *task, u32 op)
{
	u64 pid_tgid = bpf_get_current_pid_tgid();
	s->hdr.ktime_ns = bpf_ktime_get_ns();
	s->hdr.cgroup_id = bpf_get_current_cgroup_id();
	s->hdr.pid = pid_tgid >> 32;
	s->hdr.tid = (u32)pid_tgid;
	s->hdr.ppid = BPF_CORE_READ(task, real_parent, tgid);
	s->hdr.op = op;
	s->hdr.flags = 0;
	s->hdr.path_len = 0;
	s->hdr.argv_len = 0;
	bpf_get_current_comm(s->hdr.comm, sizeof(s->hdr.comm));
}

// emit copies the event to the ring buffer. It wakes the reader only when
// wakeup_bytes are pending: a wakeup per event costs microseconds, and the
// reader polls with a short deadline anyway. A full ring is counted in
// drops, never silent.
static __always_inline void emit(struct scratch *s)
{
	u64 size = sizeof(struct event_hdr) + (s->hdr.path_len & (PATH_BUF - 1)) +
		   (s->hdr.argv_len & (ARGV_MAX - 1));
	u64 flags = BPF_RB_NO_WAKEUP;
	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes)
		flags = BPF_RB_FORCE_WAKEUP;
	if (bpf_ringbuf_output(&events, s, size, flags) != 0) {
		u32 zero = 0;
		u64 *n = bpf_map_lookup_elem(&drops, &zero);
		if (n)
			*n += 1;
	}
}

// A path walk in progress: the state bpf_loop passes to walk_step.
struct walk {
	struct dentry *dentry;
	struct vfsmount *vmnt;
	struct mount *mnt;
	struct dentry *root_dentry;
	struct vfsmount *root_mnt;
	u32 pos;
	bool done;
};

// walk_step moves one step up: to the parent dentry, prepending its name,
// or from a mount's root to its mount point. It runs under bpf_loop, which
// the verifier checks once instead of once per iteration (an inline loop
// of MAX_DEPTH steps exceeds its million-instruction budget).
static long walk_step(u32 i, void *ctx)
{
	struct walk *w = ctx;
	u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s)
		return 1;
	// Locals, not w->field, inside BPF_CORE_READ: it would record a CO-RE
	// relocation against struct walk, which the kernel's BTF lacks.
	struct dentry *dentry = w->dentry;
	struct vfsmount *vmnt = w->vmnt;
	struct mount *mnt = w->mnt;
	if (dentry == w->root_dentry && vmnt == w->root_mnt) {
		w->done = true;
		return 1;
	}
	struct dentry *mnt_root = BPF_CORE_READ(vmnt, mnt_root);
	if (dentry == mnt_root) {
		struct mount *parent = BPF_CORE_READ(mnt, mnt_parent);
		if (parent == mnt) { // the namespace's root: no further up
			w->done = true;
			return 1;
		}
		w->dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
		w->mnt = parent;
		w->vmnt = (void *)parent + bpf_core_field_offset(struct mount, mnt);
		return 0;
	}
	struct dentry *parent = BPF_CORE_READ(dentry, d_parent);
	if (parent == dentry) {
		w->done = true;
		return 1;
	}
	u32 len = BPF_CORE_READ(dentry, d_name.len) & NAME_MAX;
	const unsigned char *name = BPF_CORE_READ(dentry, d_name.name);
	u32 pos = w->pos & (2 * PATH_BUF - 1);
	if (pos <= len + 1 || pos > PATH_BUF)
		return 1; // longer than PATH_BUF: keep the tail
	pos -= len;
	bpf_probe_read_kernel(&s->pathbuf[pos & (PATH_BUF - 1)], len, name);
	pos -= 1;
	s->pathbuf[pos & (PATH_BUF - 1)] = '/';
	w->pos = pos;
	w->dentry = parent;
	return 0;
}

// resolve_path writes the path of (mnt, dentry) relative to the task's
// root into s->data at offset off and returns its length. It walks up like
// the kernel's d_path: dentry by dentry, jumping to the mount point at the
// root of each mount, and stops at the task's fs->root, so a container's
// process sees /bin/busybox and not the host path of its rootfs. A file
// outside the task's root (reached through an fd passed in) reads as the
// path from the mount namespace's root. Deleted files have no "(deleted)"
// suffix. Deeper than MAX_DEPTH or longer than PATH_BUF sets
// FLAG_PATH_TRUNCATED and keeps the tail, which is the part rules match.
static __always_inline u32 resolve_path(struct scratch *s, struct task_struct *task,
					 struct vfsmount *vmnt, struct dentry *dentry, u32 off)
{
	struct walk w = {
		.dentry = dentry,
		.vmnt = vmnt,
		.mnt = (void *)vmnt - bpf_core_field_offset(struct mount, mnt),
		.root_dentry = BPF_CORE_READ(task, fs, root.dentry),
		.root_mnt = BPF_CORE_READ(task, fs, root.mnt),
		.pos = PATH_BUF, // the path grows backwards from the middle of pathbuf
	};
	bpf_loop(MAX_DEPTH, walk_step, &w, 0);
	if (!w.done)
		s->hdr.flags |= FLAG_PATH_TRUNCATED;
	u32 pos = w.pos & (2 * PATH_BUF - 1);
	if (pos > PATH_BUF)
		pos = PATH_BUF;
	if (pos == PATH_BUF) {
		pos -= 1;
		s->pathbuf[pos & (PATH_BUF - 1)] = '/';
	}
	u32 len = (PATH_BUF - pos) & (PATH_BUF - 1);
	bpf_probe_read_kernel(&s->data[off & (PATH_BUF - 1)], len, &s->pathbuf[pos & (PATH_BUF - 1)]);
	return len;
}

static __always_inline u32 resolve_file(struct scratch *s, struct task_struct *task,
					 struct file *f, u32 off)
{
	return resolve_path(s, task, BPF_CORE_READ(f, f_path.mnt), BPF_CORE_READ(f, f_path.dentry), off);
}

static __always_inline struct file *fd_file(struct task_struct *task, long fd)
{
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	if (fd < 0 || (u64)fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *f = NULL;
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	return f;
}

// resolve_user_path writes the path a syscall was given into s->data and
// sets path_len. An absolute path is taken as passed (it is relative to
// the task's root already); a relative one is joined to the directory it
// is relative to (the cwd for AT_FDCWD, else the dirfd's file). Neither is
// normalised here: "." and ".." stay for user space to clean lexically,
// and symlinks are not followed.
static __always_inline void resolve_user_path(struct scratch *s, struct task_struct *task,
					       s32 dfd, const char *upath)
{
	long n = bpf_probe_read_user_str(s->upath, sizeof(s->upath), upath);
	if (n <= 1)
		return;
	u32 rel = (n - 1) & (PATH_BUF - 1);
	if (s->upath[0] == '/') {
		bpf_probe_read_kernel(s->data, rel, s->upath);
		s->hdr.path_len = rel;
		return;
	}
	u32 dir_len;
	if (dfd == AT_FDCWD) {
		dir_len = resolve_path(s, task, BPF_CORE_READ(task, fs, pwd.mnt),
				       BPF_CORE_READ(task, fs, pwd.dentry), 0);
	} else {
		struct file *f = fd_file(task, dfd);
		if (!f)
			return;
		dir_len = resolve_file(s, task, f, 0);
	}
	dir_len &= PATH_BUF - 1;
	if (dir_len > 1) { // not "/": add the separator
		s->data[dir_len & (PATH_BUF - 1)] = '/';
		dir_len += 1;
	}
	if (dir_len + rel >= PATH_BUF) {
		rel = (PATH_BUF - 1 - dir_len) & (PATH_BUF - 1);
		s->hdr.flags |= FLAG_PATH_TRUNCATED;
	}
	bpf_probe_read_kernel(&s->data[dir_len & (PATH_BUF - 1)], rel & (PATH_BUF - 1), s->upath);
	s->hdr.path_len = (dir_len + rel) & (PATH_BUF - 1);
}

static __always_inline void set_interactive(struct scratch *s, struct task_struct *task)
{
	if (BPF_CORE_READ(task, signal, tty))
		s->hdr.flags |= FLAG_INTERACTIVE;
}

// exec: the path of the file the kernel actually runs (bprm->file, symlinks
// resolved, the interpreter for a script), not bprm->filename, which may be
// /proc/self/exe or /dev/fd/N.
SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	if (!is_watched())
		return 0;
	struct scratch *s = get_scratch();
	if (!s)
		return 0;
	struct task_struct *task = (void *)bpf_get_current_task();
	fill_hdr(s, task, OP_EXEC);
	set_interactive(s, task);
	u32 plen = resolve_file(s, task, BPF_CORE_READ(bprm, file), 0) & (PATH_BUF - 1);
	s->hdr.path_len = plen;

	// The new image's argv is on its stack, just copied there by exec.
	unsigned long start = BPF_CORE_READ(task, mm, arg_start);
	unsigned long end = BPF_CORE_READ(task, mm, arg_end);
	u64 alen = end - start;
	if (end > start) {
		if (alen >= ARGV_MAX) {
			alen = ARGV_MAX - 1;
			s->hdr.flags |= FLAG_ARGV_TRUNCATED;
		}
		alen &= ARGV_MAX - 1;
		if (bpf_probe_read_user(&s->data[plen], alen, (void *)start) == 0)
			s->hdr.argv_len = alen;
	}
	emit(s);
	return 0;
}

// fork: a new process (not a thread), with the executable it runs.
SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child)
{
	if (!is_watched())
		return 0;
	if (BPF_CORE_READ(child, pid) != BPF_CORE_READ(child, tgid))
		return 0;
	struct scratch *s = get_scratch();
	if (!s)
		return 0;
	struct task_struct *task = (void *)bpf_get_current_task();
	fill_hdr(s, task, OP_FORK);
	s->hdr.pid = BPF_CORE_READ(child, tgid);
	s->hdr.tid = BPF_CORE_READ(child, pid);
	s->hdr.ppid = BPF_CORE_READ(parent, tgid);
	set_interactive(s, task);
	struct file *exe = BPF_CORE_READ(task, mm, exe_file);
	if (exe)
		s->hdr.path_len = resolve_file(s, task, exe, 0);
	emit(s);
	return 0;
}

// An open that succeeded, seen at syscall exit through the new fd: the
// kernel marks files the open created (FMODE_CREATED), so createFile and
// modifyFile are told apart exactly, and the path is the opened file's,
// whatever dirfd or relative path named it. Only regular files opened for
// writing count; /dev/null and friends are not files a rule protects.
static __always_inline int on_open_exit(long ret)
{
	if (ret < 0 || !is_watched())
		return 0;
	struct task_struct *task = (void *)bpf_get_current_task();
	struct file *f = fd_file(task, ret);
	if (!f)
		return 0;
	fmode_t fmode = BPF_CORE_READ(f, f_mode);
	if (!(fmode & (FMODE_WRITE | FMODE_CREATED)))
		return 0;
	umode_t mode = BPF_CORE_READ(f, f_inode, i_mode);
	if ((mode & S_IFMT) != S_IFREG)
		return 0;
	u32 op;
	if (fmode & FMODE_CREATED)
		op = (mode & S_IXUGO) ? OP_CREATE_EXECUTABLE : OP_CREATE_FILE;
	else
		op = (mode & S_IXUGO) ? OP_MODIFY_EXECUTABLE : OP_MODIFY_FILE;
	struct scratch *s = get_scratch();
	if (!s)
		return 0;
	fill_hdr(s, task, op);
	s->hdr.path_len = resolve_file(s, task, f, 0);
	emit(s);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_openat")
int on_openat_exit(struct trace_event_raw_sys_exit *ctx) { return on_open_exit(ctx->ret); }

SEC("tracepoint/syscalls/sys_exit_openat2")
int on_openat2_exit(struct trace_event_raw_sys_exit *ctx) { return on_open_exit(ctx->ret); }

SEC("tracepoint/syscalls/sys_exit_open")
int on_open_exit_tp(struct trace_event_raw_sys_exit *ctx) { return on_open_exit(ctx->ret); }

SEC("tracepoint/syscalls/sys_exit_creat")
int on_creat_exit(struct trace_event_raw_sys_exit *ctx) { return on_open_exit(ctx->ret); }

// Path syscalls are remembered at entry (their arguments are only in the
// entry tracepoint) and reported at exit when they succeeded: a failed rm
// deleted nothing.
static __always_inline int remember(u64 upath, s32 dfd, u32 mode, u32 op)
{
	if (!is_watched())
		return 0;
	u64 id = bpf_get_current_pid_tgid();
	struct pending p = {.upath = upath, .dfd = dfd, .mode = mode, .op = op};
	bpf_map_update_elem(&pendings, &id, &p, BPF_ANY);
	return 0;
}

static __always_inline int finish(long ret)
{
	u64 id = bpf_get_current_pid_tgid();
	struct pending *pp = bpf_map_lookup_elem(&pendings, &id);
	if (!pp)
		return 0;
	struct pending p = *pp;
	bpf_map_delete_elem(&pendings, &id);
	if (ret != 0)
		return 0;
	struct scratch *s = get_scratch();
	if (!s)
		return 0;
	struct task_struct *task = (void *)bpf_get_current_task();
	fill_hdr(s, task, p.op);
	if (p.upath) {
		resolve_user_path(s, task, p.dfd, (const char *)p.upath);
	} else {
		struct file *f = fd_file(task, p.dfd);
		if (f)
			s->hdr.path_len = resolve_file(s, task, f, 0);
	}
	emit(s);
	return 0;
}

// deleteFile: unlink and unlinkat, not rmdir (AT_REMOVEDIR): a rule
// names files.
SEC("tracepoint/syscalls/sys_enter_unlinkat")
int on_unlinkat_enter(struct trace_event_raw_sys_enter *ctx)
{
	if (ctx->args[2] & AT_REMOVEDIR)
		return 0;
	return remember(ctx->args[1], (s32)ctx->args[0], 0, OP_DELETE_FILE);
}

SEC("tracepoint/syscalls/sys_enter_unlink")
int on_unlink_enter(struct trace_event_raw_sys_enter *ctx)
{
	return remember(ctx->args[0], AT_FDCWD, 0, OP_DELETE_FILE);
}

SEC("tracepoint/syscalls/sys_exit_unlinkat")
int on_unlinkat_exit(struct trace_event_raw_sys_exit *ctx) { return finish(ctx->ret); }

SEC("tracepoint/syscalls/sys_exit_unlink")
int on_unlink_exit(struct trace_event_raw_sys_exit *ctx) { return finish(ctx->ret); }

// chmod: a mode with an exec bit makes (or keeps) the file executable:
// modifyExecutable; any other mode change is modifyFile. The entry
// tracepoint sees only the new mode, so a chmod that leaves an already
// executable file executable, or sets +x on a directory, also reads as
// modifyExecutable.
static __always_inline u32 chmod_op(u64 mode)
{
	return (mode & S_IXUGO) ? OP_MODIFY_EXECUTABLE : OP_MODIFY_FILE;
}

SEC("tracepoint/syscalls/sys_enter_fchmodat")
int on_fchmodat_enter(struct trace_event_raw_sys_enter *ctx)
{
	return remember(ctx->args[1], (s32)ctx->args[0], ctx->args[2], chmod_op(ctx->args[2]));
}

SEC("tracepoint/syscalls/sys_enter_fchmodat2")
int on_fchmodat2_enter(struct trace_event_raw_sys_enter *ctx)
{
	return remember(ctx->args[1], (s32)ctx->args[0], ctx->args[2], chmod_op(ctx->args[2]));
}

SEC("tracepoint/syscalls/sys_enter_chmod")
int on_chmod_enter(struct trace_event_raw_sys_enter *ctx)
{
	return remember(ctx->args[0], AT_FDCWD, ctx->args[1], chmod_op(ctx->args[1]));
}

SEC("tracepoint/syscalls/sys_enter_fchmod")
int on_fchmod_enter(struct trace_event_raw_sys_enter *ctx)
{
	return remember(0, (s32)ctx->args[0], ctx->args[1], chmod_op(ctx->args[1]));
}

SEC("tracepoint/syscalls/sys_exit_fchmodat")
int on_fchmodat_exit(struct trace_event_raw_sys_exit *ctx) { return finish(ctx->ret); }

SEC("tracepoint/syscalls/sys_exit_fchmodat2")
int on_fchmodat2_exit(struct trace_event_raw_sys_exit *ctx) { return finish(ctx->ret); }

SEC("tracepoint/syscalls/sys_exit_chmod")
int on_chmod_exit(struct trace_event_raw_sys_exit *ctx) { return finish(ctx->ret); }

SEC("tracepoint/syscalls/sys_exit_fchmod")
int on_fchmod_exit(struct trace_event_raw_sys_exit *ctx) { return finish(ctx->ret); }
