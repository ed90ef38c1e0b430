// SPDX-License-Identifier: GPL-2.0
//
// Palisade's runtime sensor: process and file events of watched containers.
//
// Every program looks the current cgroup id up in `watched`, a set user
// space fills with the cgroup ids of containers, before any other work;
// the syscall programs compare the syscall number even before that, so a
// host process pays a compare per syscall and a lookup per exec, fork and
// followed syscall. Events go to one ring buffer as a fixed
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
#define O_TRUNC 01000
#define RENAME_EXCHANGE 2
#define FMODE_WRITE 0x2
#define FMODE_CREATED 0x100000
#define S_IFMT 00170000
#define S_IFREG 0100000
#define S_IFDIR 0040000
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

// The build area of the shared path walk (../enforce/bpf/walk.h): a path
// is built backwards from PATH_BUF - 1, positions are masked with BUILD - 1.
#define BUILD PATH_BUF

// One per CPU: the event being built, and room to build a path backwards.
// The data area is twice PATH_BUF so that joining a directory and a
// relative path, each bounded by PATH_BUF, stays in bounds; build is
// twice BUILD for walk.h (a component adds up to NAME_MAX bytes past a
// masked position).
struct scratch {
	struct event_hdr hdr;
	char data[2 * PATH_BUF];
	char build[2 * BUILD];
	char upath[PATH_BUF];
};

// A followed syscall's arguments, read at its exit.
struct call {
	u64 upath;  // user pointer to the path argument, 0 for fchmod and ftruncate
	u64 upath2; // rename's new path
	u64 how;    // openat2's struct open_how
	s32 dfd;    // the dirfd upath is relative to, or the fd itself
	s32 dfd2;   // the dirfd upath2 is relative to
	u32 mode;   // chmod's mode, open's flags, rename's flags
	u32 op;
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

// The path walk the enforce programs use too: struct walk and walk_step.
#include "../enforce/bpf/walk.h"

// read_path reads a struct path (two pointers, in that order in every
// kernel) with one probe read instead of two: the hot path pays per read.
static __always_inline struct path read_path(const struct path *p)
{
	struct path v = {};
	bpf_probe_read_kernel(&v, sizeof(v), p);
	return v;
}

// task_root is the task's root directory (fs->root).
static __always_inline struct path task_root(struct task_struct *task)
{
	struct fs_struct *fs = BPF_CORE_READ(task, fs);
	return read_path(__builtin_preserve_access_index(&fs->root));
}

// resolve_path writes the path of (mnt, dentry) relative to the task's
// root into s->data at offset off and returns its length. It walks up like
// the kernel's d_path: dentry by dentry, jumping to the mount point at the
// root of each mount, and stops at the task's fs->root, so a container's
// process sees /bin/busybox and not the host path of its rootfs. A file
// outside the task's root (reached through an fd passed in) reads as the
// path from the mount namespace's root. Deleted files have no "(deleted)"
// suffix. Deeper than MAX_DEPTH or longer than PATH_BUF - 2 bytes sets
// FLAG_PATH_TRUNCATED and keeps the tail, which is the part rules match.
static __always_inline u32 resolve_path(struct scratch *s, struct task_struct *task,
					 struct vfsmount *vmnt, struct dentry *dentry, u32 off)
{
	struct path root = task_root(task);
	struct walk w = {
		.dentry = dentry,
		.vmnt = vmnt,
		.mnt = (void *)vmnt - bpf_core_field_offset(struct mount, mnt),
		.root_dentry = root.dentry,
		.root_mnt = root.mnt,
		.s = s,
		.pos = PATH_BUF - 1, // the path grows backwards, ending before build[PATH_BUF - 1]
	};
	bpf_loop(MAX_DEPTH, walk_step, &w, 0);
	if (!w.done)
		s->hdr.flags |= FLAG_PATH_TRUNCATED;
	u32 pos = w.pos & (BUILD - 1);
	if (pos >= PATH_BUF - 1) { // the root itself
		pos = PATH_BUF - 2;
		s->build[pos] = '/';
	}
	u32 len = (PATH_BUF - 1 - pos) & (PATH_BUF - 1);
	bpf_probe_read_kernel(&s->data[off & (PATH_BUF - 1)], len, &s->build[pos & (BUILD - 1)]);
	return len;
}

static __always_inline u32 resolve_file(struct scratch *s, struct task_struct *task,
					 struct file *f, u32 off)
{
	struct path p = read_path(__builtin_preserve_access_index(&f->f_path));
	return resolve_path(s, task, p.mnt, p.dentry, off);
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

// A dcache lookup in progress: the state bpf_loop passes to lookup_step.
struct lookup {
	struct scratch *s;
	struct dentry *dir;   // the dentry the path so far names
	struct dentry *child; // the next child of dir to compare; NULL between components
	struct mount *mnt;    // the mount dir is on
	struct mount *mc;     // the next child mount of mnt to compare
	u32 mstate;           // MOUNT_*: where the check of dir for a mount on it is
	u32 pos;              // the next byte of s->data to match
	u32 end;              // the path's length
	u32 scanned;          // children compared so far
	u32 mode;             // the result: the inode's mode, 0 when unknown
};

// Children compared per lookup: a bound on the cost of a directory with
// many cached entries. The entry a lookup wants is usually first: the
// kernel puts a dentry it creates or moves at the head of its parent's
// list.
#define LOOKUP_CHILDREN 256
#define LOOKUP_STEPS 512

// A dentry's mount check: not done, in progress (scanning child mounts), done.
#define MOUNT_UNCHECKED 0
#define MOUNT_SCANNING 1
#define MOUNT_CHECKED 2

static __always_inline bool mounted_on(struct dentry *d)
{
	u32 flag = 0x10000;
	if (bpf_core_enum_value_exists(enum dentry_flags, DCACHE_MOUNTED))
		flag = bpf_core_enum_value(enum dentry_flags, DCACHE_MOUNTED);
	struct dentry___lookup *dl = (void *)d;
	return BPF_CORE_READ(dl, d_flags) & flag;
}

// child_mount returns the child mount of parent after m (the first when m
// is NULL), or NULL.
static __always_inline struct mount *child_mount(struct mount *parent, struct mount *m)
{
	struct mount___lookup *pl = (void *)parent;
	struct mount___lookup *ml = (void *)m;
	struct list_head *n = m ? BPF_CORE_READ(ml, mnt_child.next) : BPF_CORE_READ(pl, mnt_mounts.next);
	if ((void *)n == (void *)parent + bpf_core_field_offset(struct mount___lookup, mnt_mounts))
		return NULL;
	return (void *)n - bpf_core_field_offset(struct mount___lookup, mnt_child);
}

static __always_inline struct dentry *first_child(struct dentry *d)
{
	if (bpf_core_field_exists(struct dentry___lookup, d_children)) {
		struct dentry___lookup *dl = (void *)d;
		struct hlist_node *n = BPF_CORE_READ(dl, d_children.first);
		if (!n)
			return NULL;
		return (void *)n - bpf_core_field_offset(struct dentry___lookup, d_sib);
	}
	struct dentry___subdirs *ds = (void *)d;
	struct list_head *n = BPF_CORE_READ(ds, d_subdirs.next);
	if ((void *)n == (void *)d + bpf_core_field_offset(struct dentry___subdirs, d_subdirs))
		return NULL;
	return (void *)n - bpf_core_field_offset(struct dentry___subdirs, d_child);
}

static __always_inline struct dentry *next_child(struct dentry *parent, struct dentry *d)
{
	if (bpf_core_field_exists(struct dentry___lookup, d_sib)) {
		struct dentry___lookup *dl = (void *)d;
		struct hlist_node *n = BPF_CORE_READ(dl, d_sib.next);
		if (!n)
			return NULL;
		return (void *)n - bpf_core_field_offset(struct dentry___lookup, d_sib);
	}
	struct dentry___subdirs *ds = (void *)d;
	struct list_head *n = BPF_CORE_READ(ds, d_child.next);
	if ((void *)n == (void *)parent + bpf_core_field_offset(struct dentry___subdirs, d_subdirs))
		return NULL;
	return (void *)n - bpf_core_field_offset(struct dentry___subdirs, d_child);
}

// same_name reports whether the dentry's name is the len bytes of s->data
// at pos: both are copied zero-padded into s->upath (free by now) and
// compared a word at a time.
static __always_inline bool same_name(struct scratch *s, struct dentry *d, u32 pos, u32 len)
{
	u64 *a = (u64 *)s->upath;
	u64 *b = (u64 *)&s->upath[NAME_MAX + 1];
	for (int i = 0; i < (NAME_MAX + 1) / 8; i++) {
		a[i] = 0;
		b[i] = 0;
	}
	barrier_var(len); // keep the mask: the verifier needs it, the compiler sees it as redundant
	len &= NAME_MAX;
	bpf_probe_read_kernel(a, len, BPF_CORE_READ(d, d_name.name));
	bpf_probe_read_kernel(b, len, &s->data[pos & (PATH_BUF - 1)]);
	for (int i = 0; i < (NAME_MAX + 1) / 8; i++)
		if (a[i] != b[i])
			return false;
	return true;
}

// lookup_step takes one step of a lookup: past a "/" or ".", into a child
// that matches the next component, on to the next child of the
// directory, or, when a mount is on the dentry reached, a step through
// the mounts to find it and cross to its root. Run by bpf_loop, so the
// verifier checks one step.
static long lookup_step(u32 i, void *ctx)
{
	struct lookup *l = ctx;
	struct scratch *s = l->s;
	u32 pos = l->pos & (PATH_BUF - 1);
	u32 end = l->end & (PATH_BUF - 1);
	struct dentry *dir = l->dir;
	struct dentry *c = l->child;
	if (!c && l->mstate != MOUNT_CHECKED) {
		if (l->mstate == MOUNT_UNCHECKED) {
			if (!mounted_on(dir)) {
				l->mstate = MOUNT_CHECKED;
				return 0;
			}
			l->mc = child_mount(l->mnt, NULL);
			l->mstate = l->mc ? MOUNT_SCANNING : MOUNT_CHECKED;
			return 0;
		}
		if (++l->scanned > LOOKUP_CHILDREN)
			return 1;
		struct mount *m = l->mc;
		if (BPF_CORE_READ(m, mnt_mountpoint) == dir) {
			l->mnt = m;
			l->dir = BPF_CORE_READ(m, mnt.mnt_root);
			l->mstate = MOUNT_UNCHECKED; // mounts stack
			return 0;
		}
		l->mc = child_mount(l->mnt, m);
		if (!l->mc)
			l->mstate = MOUNT_CHECKED;
		return 0;
	}
	if (!c) { // between components
		if (pos >= end) { // the whole path matched: dir is the file
			struct dentry___lookup *dl = (void *)dir;
			struct inode *inode = BPF_CORE_READ(dl, d_inode);
			if (inode)
				l->mode = BPF_CORE_READ(inode, i_mode);
			return 1;
		}
		char c0 = s->data[pos];
		char c1 = pos + 1 < end ? s->data[(pos + 1) & (PATH_BUF - 1)] : '/';
		if (c0 == '/' || (c0 == '.' && c1 == '/')) {
			l->pos = pos + 1;
			return 0;
		}
		if (c0 == '.' && c1 == '.' && (pos + 2 >= end || s->data[(pos + 2) & (PATH_BUF - 1)] == '/'))
			return 1; // "..": unknown
		l->child = first_child(dir);
		return l->child ? 0 : 1;
	}
	if (++l->scanned > LOOKUP_CHILDREN)
		return 1;
	u32 len = BPF_CORE_READ(c, d_name.len);
	struct dentry___lookup *cl = (void *)c;
	if (len > 0 && len <= NAME_MAX && pos + len <= end &&
	    (pos + len == end || s->data[(pos + len) & (PATH_BUF - 1)] == '/') &&
	    BPF_CORE_READ(cl, d_inode) && same_name(s, c, pos, len)) {
		l->dir = c;
		l->child = NULL;
		l->mstate = MOUNT_UNCHECKED;
		l->pos = pos + len;
		return 0;
	}
	l->child = next_child(dir, c);
	return l->child ? 0 : 1;
}

// lookup_mode returns the mode of the file the path in s->data (path_len
// bytes, absolute as the task sees it) names, found in the dcache from the
// task's root: the file a syscall just renamed or truncated is there, and
// the kernel offers tracing programs no path lookup. It returns 0, for
// unknown, for what it does not follow: a ".." component, a symlink on
// the way, a name not among the first LOOKUP_CHILDREN cached entries of
// its directory (child mounts count too), and a truncated path. Mounts on
// the way are crossed, as the kernel's lookup does.
static __always_inline u32 lookup_mode(struct scratch *s, struct task_struct *task)
{
	if (s->hdr.flags & FLAG_PATH_TRUNCATED)
		return 0;
	struct path root = task_root(task);
	struct lookup l = {
		.s = s,
		.dir = root.dentry,
		.mnt = (void *)root.mnt - bpf_core_field_offset(struct mount, mnt),
		.end = s->hdr.path_len,
	};
	bpf_loop(LOOKUP_STEPS, lookup_step, &l, 0);
	return l.mode;
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

// fork: a new process (not a thread), with the executable it runs. The
// child's cgroup decides, not the parent's: clone3 with CLONE_INTO_CGROUP
// (runc exec does it) starts a container's process from a parent outside.
SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child)
{
	if (BPF_CORE_READ(child, pid) != BPF_CORE_READ(child, tgid))
		return 0;
	u64 cg = BPF_CORE_READ(child, cgroups, dfl_cgrp, kn, id);
	if (!bpf_map_lookup_elem(&watched, &cg))
		return 0;
	struct scratch *s = get_scratch();
	if (!s)
		return 0;
	struct task_struct *task = (void *)bpf_get_current_task();
	fill_hdr(s, task, OP_FORK);
	s->hdr.cgroup_id = cg;
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

// The syscalls the sensor follows, by number on each architecture the
// objects are built for. 32-bit (compat) syscalls of x86 processes have
// other numbers and are not followed: compat_syscall tells them apart.
#if defined(__TARGET_ARCH_x86)
#define NR_open 2
#define NR_creat 85
#define NR_unlink 87
#define NR_chmod 90
#define NR_fchmod 91
#define NR_openat 257
#define NR_unlinkat 263
#define NR_fchmodat 268
#define NR_openat2 437
#define NR_fchmodat2 452
#define NR_truncate 76
#define NR_ftruncate 77
#define NR_rename 82
#define NR_link 86
#define NR_symlink 88
#define NR_renameat 264
#define NR_linkat 265
#define NR_symlinkat 266
#define NR_renameat2 316
#define SC_NR(regs) ((regs)->orig_ax)
#define SC_ARG0(regs) ((regs)->di)
#define SC_ARG1(regs) ((regs)->si)
#define SC_ARG2(regs) ((regs)->dx)
#define SC_ARG3(regs) ((regs)->r10)
#define SC_ARG4(regs) ((regs)->r8)
// A 32-bit syscall's number is in the ia32 table: another call than ours.
#define TS_COMPAT 0x0002
static __always_inline bool compat_syscall(void)
{
	struct task_struct___x86 *t = (void *)bpf_get_current_task();
	return BPF_CORE_READ(t, thread_info.status) & TS_COMPAT;
}
#elif defined(__TARGET_ARCH_arm64)
// asm-generic numbers: no open, creat, unlink, chmod, rename, link or
// symlink.
#define NR_fchmod 52
#define NR_fchmodat 53
#define NR_openat 56
#define NR_unlinkat 35
#define NR_openat2 437
#define NR_fchmodat2 452
#define NR_truncate 45
#define NR_ftruncate 46
#define NR_renameat 38
#define NR_linkat 37
#define NR_symlinkat 36
#define NR_renameat2 276
#define SC_NR(regs) ((regs)->syscallno)
#define SC_ARG0(regs) ((regs)->orig_x0)
#define SC_ARG1(regs) ((regs)->regs[1])
#define SC_ARG2(regs) ((regs)->regs[2])
#define SC_ARG3(regs) ((regs)->regs[3])
#define SC_ARG4(regs) ((regs)->regs[4])
// AArch32 tasks' syscalls are not told apart here (see the package doc).
static __always_inline bool compat_syscall(void)
{
	return false;
}
#else
#error "no syscall numbers for this architecture"
#endif

// Syscalls whose operation is known only at exit. An open's fd names
// the file; a truncate's file decides modifyFile or modifyExecutable; a
// rename is two events.
#define OP_CALL_OPEN 100
#define OP_CALL_TRUNCATE 101
#define OP_CALL_RENAME 102

// open_exit reports an open that succeeded, through the new fd: the kernel
// marks files the open created (FMODE_CREATED), so createFile and
// modifyFile are told apart exactly, and the path is the opened file's,
// whatever dirfd or relative path named it. Only regular files opened for
// writing count, and opens with O_TRUNC (which truncates even a read-only
// open); /dev/null and friends are not files a rule protects.
static __always_inline int open_exit(struct scratch *s, struct task_struct *task, long ret,
				     u32 oflags)
{
	struct file *f = fd_file(task, ret);
	if (!f)
		return 0;
	fmode_t fmode = BPF_CORE_READ(f, f_mode);
	if (!(fmode & (FMODE_WRITE | FMODE_CREATED)) && !(oflags & O_TRUNC))
		return 0;
	umode_t mode = BPF_CORE_READ(f, f_inode, i_mode);
	if ((mode & S_IFMT) != S_IFREG)
		return 0;
	u32 op;
	if (fmode & FMODE_CREATED)
		op = (mode & S_IXUGO) ? OP_CREATE_EXECUTABLE : OP_CREATE_FILE;
	else
		op = (mode & S_IXUGO) ? OP_MODIFY_EXECUTABLE : OP_MODIFY_FILE;
	fill_hdr(s, task, op);
	s->hdr.path_len = resolve_file(s, task, f, 0);
	emit(s);
	return 0;
}

// chmod: a mode with an exec bit makes (or keeps) the file executable:
// modifyExecutable; any other mode change is modifyFile. The entry sees
// only the new mode, so a chmod that leaves an already executable file
// executable, or sets +x on a directory, also reads as modifyExecutable.
static __always_inline u32 chmod_op(u64 mode)
{
	return (mode & S_IXUGO) ? OP_MODIFY_EXECUTABLE : OP_MODIFY_FILE;
}

// executable says whether a mode is a regular file's with an exec bit: a
// symlink's mode has them all, and a truncate through a symlink is
// looked up as the link (lookup_mode follows no symlink).
static __always_inline bool executable(u32 mode)
{
	return (mode & S_IFMT) == S_IFREG && (mode & S_IXUGO);
}

// truncate_exit reports a truncate or ftruncate that succeeded: the file's
// exec bit decides modifyFile or modifyExecutable. truncate(2) names the
// file by path, which lookup_mode finds in the dcache; when it cannot,
// the event is modifyFile.
static __always_inline int truncate_exit(struct scratch *s, struct task_struct *task,
					 struct call *p)
{
	u32 mode = 0;
	fill_hdr(s, task, OP_MODIFY_FILE);
	if (p->upath) {
		resolve_user_path(s, task, p->dfd, (const char *)p->upath);
		mode = lookup_mode(s, task);
	} else {
		struct file *f = fd_file(task, p->dfd);
		if (!f)
			return 0;
		mode = BPF_CORE_READ(f, f_inode, i_mode);
		s->hdr.path_len = resolve_file(s, task, f, 0);
	}
	if (executable(mode))
		s->hdr.op = OP_MODIFY_EXECUTABLE;
	emit(s);
	return 0;
}

// emit_created emits the createFile event built in s, as
// createExecutable when mode (the file's) has an exec bit; a directory's
// is not emitted.
static __always_inline void emit_created(struct scratch *s, u32 mode)
{
	if ((mode & S_IFMT) == S_IFDIR)
		return;
	if (executable(mode))
		s->hdr.op = OP_CREATE_EXECUTABLE;
	emit(s);
}

// created builds the createFile event of the file a rename put at (dfd,
// upath) and returns the file's mode: mode when known, else lookup_mode's.
static __always_inline u32 created(struct scratch *s, struct task_struct *task, s32 dfd, u64 upath,
				   u32 mode)
{
	fill_hdr(s, task, OP_CREATE_FILE);
	resolve_user_path(s, task, dfd, (const char *)upath);
	return mode ? mode : lookup_mode(s, task);
}

// rename_exit reports a rename that succeeded as what it does to the two
// paths, in D4C's terms: the old path's file is gone (deleteFile) and the
// new path names a file it did not before (createFile, or
// createExecutable when the file has an exec bit). A file the rename
// replaced at the new path gets no deleteFile of its own: the createFile
// at that path says its content changed. RENAME_EXCHANGE swaps two files
// that both stay: a createFile (or createExecutable) at each path, no
// deleteFile. Renaming a directory moves no file of its own and reports
// nothing, when lookup_mode can tell it is one; when it cannot, the
// rename is reported as a file's, with createFile.
static __always_inline int rename_exit(struct scratch *s, struct task_struct *task,
				       struct call *p)
{
	// The moved file's mode, looked up at its new path.
	u32 mode = created(s, task, p->dfd2, p->upath2, 0);
	if ((mode & S_IFMT) == S_IFDIR)
		return 0;
	if (p->mode & RENAME_EXCHANGE) {
		emit_created(s, mode);
		emit_created(s, created(s, task, p->dfd, p->upath, 0));
		return 0;
	}
	// The delete first, as it happened: the path is built again after it.
	fill_hdr(s, task, OP_DELETE_FILE);
	resolve_user_path(s, task, p->dfd, (const char *)p->upath);
	emit(s);
	emit_created(s, created(s, task, p->dfd2, p->upath2, mode));
	return 0;
}

// Syscalls are followed from the raw sys_exit tracepoint (BTF-typed): one
// program for every syscall of the host, which returns after comparing
// the syscall number unless it is one of ours. The per-syscall
// tracepoints (syscalls/sys_exit_openat, ...) would build a perf record
// for every call first and need tracefs.
//
// The operation is reported at exit, when it succeeded: a failed rm
// deleted nothing, and an open's fd names the file it opened. The
// arguments are still in the task's saved registers then: the kernel
// writes only the return value back (x86's ax, arm64's x0, whose entry
// value orig_x0 keeps), so no program at sys_enter has to remember them
// in a map for the exit. Path strings are read from user memory at exit.
//
// call_args reads the arguments of syscall id into p, and returns false
// for a syscall the sensor does not follow. It reads no memory: a host
// process's syscall costs the compares and nothing more.
static __always_inline bool call_args(struct pt_regs *regs, long id, struct call *p)
{
	switch (id) {
	case NR_openat:
		p->mode = SC_ARG2(regs);
		p->op = OP_CALL_OPEN;
		break;
	case NR_openat2:
		p->how = SC_ARG2(regs); // the flags are read once the cgroup is known watched
		p->op = OP_CALL_OPEN;
		break;
#ifdef NR_open
	case NR_open:
		p->mode = SC_ARG1(regs);
		p->op = OP_CALL_OPEN;
		break;
	case NR_creat:
		p->mode = O_TRUNC;
		p->op = OP_CALL_OPEN;
		break;
#endif
	case NR_truncate:
		p->upath = SC_ARG0(regs);
		p->op = OP_CALL_TRUNCATE;
		break;
	case NR_ftruncate:
		p->dfd = SC_ARG0(regs); // the fd itself; upath 0 says so
		p->op = OP_CALL_TRUNCATE;
		break;
	case NR_renameat2:
		p->mode = SC_ARG4(regs);
		// fall through
	case NR_renameat:
		p->dfd = SC_ARG0(regs);
		p->upath = SC_ARG1(regs);
		p->dfd2 = SC_ARG2(regs);
		p->upath2 = SC_ARG3(regs);
		p->op = OP_CALL_RENAME;
		break;
	case NR_linkat:
		p->dfd = SC_ARG2(regs);
		p->upath = SC_ARG3(regs);
		p->op = OP_CREATE_FILE;
		break;
	case NR_symlinkat:
		p->dfd = SC_ARG1(regs);
		p->upath = SC_ARG2(regs);
		p->op = OP_CREATE_FILE;
		break;
	case NR_unlinkat:
		// deleteFile is about files: rmdir (AT_REMOVEDIR) is not one.
		if (SC_ARG2(regs) & AT_REMOVEDIR)
			return false;
		p->dfd = SC_ARG0(regs);
		p->upath = SC_ARG1(regs);
		p->op = OP_DELETE_FILE;
		break;
	case NR_fchmodat:
	case NR_fchmodat2:
		p->dfd = SC_ARG0(regs);
		p->upath = SC_ARG1(regs);
		p->mode = SC_ARG2(regs);
		p->op = chmod_op(p->mode);
		break;
	case NR_fchmod:
		p->dfd = SC_ARG0(regs); // the fd itself; upath 0 says so
		p->mode = SC_ARG1(regs);
		p->op = chmod_op(p->mode);
		break;
#ifdef NR_unlink
	case NR_unlink:
		p->upath = SC_ARG0(regs);
		p->op = OP_DELETE_FILE;
		break;
	case NR_chmod:
		p->upath = SC_ARG0(regs);
		p->mode = SC_ARG1(regs);
		p->op = chmod_op(p->mode);
		break;
	case NR_rename:
		p->upath = SC_ARG0(regs);
		p->dfd2 = AT_FDCWD;
		p->upath2 = SC_ARG1(regs);
		p->op = OP_CALL_RENAME;
		break;
	case NR_link:
	case NR_symlink:
		p->upath = SC_ARG1(regs);
		p->op = OP_CREATE_FILE;
		break;
#endif
	default:
		return false;
	}
	return true;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(on_sys_exit, struct pt_regs *regs, long ret)
{
	// The number first: a host syscall costs compares, not a lookup.
	struct call p = {.dfd = AT_FDCWD, .dfd2 = AT_FDCWD};
	if (!call_args(regs, SC_NR(regs), &p))
		return 0;
	if (ret < 0 || (p.op != OP_CALL_OPEN && ret != 0))
		return 0;
	if (!is_watched() || compat_syscall())
		return 0;
	if (p.how) {
		u64 flags = 0; // struct open_how's first field
		bpf_probe_read_user(&flags, sizeof(flags), (void *)p.how);
		p.mode = flags;
	}
	struct scratch *s = get_scratch();
	if (!s)
		return 0;
	struct task_struct *task = (void *)bpf_get_current_task();
	if (p.op == OP_CALL_OPEN)
		return open_exit(s, task, ret, p.mode);
	if (p.op == OP_CALL_TRUNCATE)
		return truncate_exit(s, task, &p);
	if (p.op == OP_CALL_RENAME)
		return rename_exit(s, task, &p);
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
