// SPDX-License-Identifier: GPL-2.0
//
// BPF LSM: the preferred backend. Each hook runs before the operation and
// denies it with -EPERM, so the caller's syscall fails; nothing has
// happened yet.
//
//   file_open            write-open of a blocked path (exact or prefix);
//                        marks the inode when drift prevention is on
//   path_mknod           creating a file at a blocked write path
//                        (open(O_CREAT) passes here before file_open)
//   bprm_check_security  exec of a blocked path, or of an inode marked as
//                        written inside a drift-prevention cgroup, or
//                        (drift prevention) of one with no link left
//   path_unlink          unlink of a blocked path
//   path_chmod           chmod adding an exec bit to a regular file in a
//                        drift-prevention cgroup
//   path_rename, path_link, path_symlink, path_mkdir, path_rmdir,
//   path_truncate        the other ways to change a blocked path
//
// Limits: a path longer than 239 bytes or deeper than MAX_DEPTH
// components (mount crossings included) matches no rule; such a path
// cannot be created under a blocked prefix (its first new component is
// checked), so only one already in the image escapes a prefix rule.
// Rules match paths, not inodes: a hard link made before the rule reaches
// the same file by another name.
//
// Decisions go by the current task's cgroup id: a cgroup not in `cgroups`
// (the host, any unwatched container) pays one hash lookup per hook.
// Paths are built as the task sees them (up to its root, like d_path) and
// looked up in one LPM trie keyed by (op, cgroup id, path bytes): an exact
// rule's prefix includes the path's NUL, a directory rule ("/etc/") stops
// before it.

#include "../../bpf/vmlinux.h"
#include "lsm_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

#define EPERM 1
#define FMODE_WRITE 0x2
#define S_IFMT 0170000
#define S_IFREG 0100000
#define S_IXUGO 0111

// Path bytes in a rule key, NUL included: the trie's data (op, cgroup id,
// path) must fit the kernel's 256-byte LPM limit.
#define PATH_KEY 240
#define NAME_MAX 255
// Build area, as in execkill.c: positions are masked with BUILD-1 and a
// component adds at most NAME_MAX bytes.
#define BUILD 512
#define MAX_DEPTH 32

// Per-cgroup flags, the value of `cgroups`.
#define CG_WATCHED 1
#define CG_DRIFT 2
#define CG_EXEC 4
#define CG_WRITE 8
#define CG_DELETE 16

// Rule operations, the key's op; also the index of `denials` (with
// DENY_CHMOD and DENY_DRIFT, which have no rules).
enum op {
	OP_EXEC = 0,
	OP_WRITE = 1,
	OP_DELETE = 2,
	DENY_CHMOD = 3,
	DENY_DRIFT = 4,
	DENY_KINDS = 5,
};

struct rule_key {
	u32 prefixlen;
	u32 op;
	u64 cgroup_id;
	char path[PATH_KEY];
};

struct scratch {
	struct rule_key key;
	char build[2 * BUILD];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, u64);
	__type(value, u32);
} cgroups SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct rule_key);
	__type(value, u8);
} rules SEC(".maps");

// Inodes written by a task of a drift-prevention cgroup: value is 1.
struct {
	__uint(type, BPF_MAP_TYPE_INODE_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, u8);
} marks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DENY_KINDS);
	__type(key, u32);
	__type(value, u64);
} denials SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct scratch);
} scratch SEC(".maps");

#include "walk.h"

// lookup builds the path of dentry on vmnt as the current task sees it and
// reports whether the trie holds a rule of op for the cgroup covering it.
// A path deeper or longer than a key matches nothing.
static bool lookup(u64 cg, enum op op, struct dentry *dentry, struct vfsmount *vmnt)
{
	u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s)
		return false;
	struct task_struct *task = (void *)bpf_get_current_task();
	struct walk w = {
		.dentry = dentry,
		.vmnt = vmnt,
		.mnt = (void *)vmnt - bpf_core_field_offset(struct mount, mnt),
		.root_dentry = BPF_CORE_READ(task, fs, root.dentry),
		.root_mnt = BPF_CORE_READ(task, fs, root.mnt),
		.s = s,
		.pos = PATH_KEY - 1, // the path ends before the key's last byte: NUL
	};
	bpf_loop(MAX_DEPTH, walk_step, &w, 0);
	if (!w.done)
		return false;
	u32 pos = w.pos & (BUILD - 1);
	if (pos >= PATH_KEY - 1)
		return false; // "/" itself: no rule names it
	s->key.prefixlen = (sizeof(s->key) - sizeof(s->key.prefixlen)) * 8;
	s->key.op = op;
	s->key.cgroup_id = cg;
	__builtin_memset(s->key.path, 0, PATH_KEY);
	// PATH_KEY is no power of two, so the length is bounded by a test
	// the verifier follows, not by a mask.
	u32 len = PATH_KEY - 1 - pos;
	if (len > PATH_KEY - 1)
		return false;
	bpf_probe_read_kernel(s->key.path, len, &s->build[pos & (BUILD - 1)]);
	return bpf_map_lookup_elem(&rules, &s->key) != 0;
}

static int deny(u32 kind)
{
	u64 *n = bpf_map_lookup_elem(&denials, &kind);
	if (n)
		*n += 1;
	return -EPERM;
}

static u32 cgroup_flags(u64 cg)
{
	u32 *f = bpf_map_lookup_elem(&cgroups, &cg);
	return f ? *f : 0;
}

SEC("lsm/file_open")
int BPF_PROG(palisade_file_open, struct file *file, int ret)
{
	if (ret)
		return ret;
	u64 cg = bpf_get_current_cgroup_id();
	u32 flags = cgroup_flags(cg);
	if (!flags || !(file->f_mode & FMODE_WRITE))
		return 0;
	if ((flags & CG_WRITE) && lookup(cg, OP_WRITE, file->f_path.dentry, file->f_path.mnt))
		return deny(OP_WRITE);
	if (flags & CG_DRIFT) {
		u8 *m = bpf_inode_storage_get(&marks, file->f_inode, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
		if (m)
			*m = 1;
	}
	return 0;
}

SEC("lsm/path_mknod")
int BPF_PROG(palisade_path_mknod, const struct path *dir, struct dentry *dentry, umode_t mode,
	     unsigned int dev, int ret)
{
	if (ret)
		return ret;
	u64 cg = bpf_get_current_cgroup_id();
	if (!(cgroup_flags(cg) & CG_WRITE))
		return 0;
	if (lookup(cg, OP_WRITE, dentry, BPF_CORE_READ(dir, mnt)))
		return deny(OP_WRITE);
	return 0;
}

SEC("lsm/bprm_check_security")
int BPF_PROG(palisade_bprm_check, struct linux_binprm *bprm, int ret)
{
	if (ret)
		return ret;
	u64 cg = bpf_get_current_cgroup_id();
	u32 flags = cgroup_flags(cg);
	if (!flags)
		return 0;
	struct file *f = bprm->file;
	if (flags & CG_DRIFT) {
		u8 *m = bpf_inode_storage_get(&marks, f->f_inode, 0, 0);
		if (m && *m)
			return deny(DENY_DRIFT);
		// An executable with no name left (a memfd, or a file deleted
		// after opening) is the fileless way around the marks: files
		// written before the cgroup was watched, or through a memfd,
		// which file_open never sees.
		struct inode___lsm *ino = (void *)f->f_inode;
		if (BPF_CORE_READ(ino, i_nlink) == 0)
			return deny(DENY_DRIFT);
	}
	if ((flags & CG_EXEC) && lookup(cg, OP_EXEC, f->f_path.dentry, f->f_path.mnt))
		return deny(OP_EXEC);
	return 0;
}

SEC("lsm/path_unlink")
int BPF_PROG(palisade_path_unlink, const struct path *dir, struct dentry *dentry, int ret)
{
	if (ret)
		return ret;
	u64 cg = bpf_get_current_cgroup_id();
	if (!(cgroup_flags(cg) & CG_DELETE))
		return 0;
	if (lookup(cg, OP_DELETE, dentry, BPF_CORE_READ(dir, mnt)))
		return deny(OP_DELETE);
	return 0;
}

SEC("lsm/path_chmod")
int BPF_PROG(palisade_path_chmod, const struct path *path, umode_t mode, int ret)
{
	if (ret)
		return ret;
	u64 cg = bpf_get_current_cgroup_id();
	if (!(cgroup_flags(cg) & CG_DRIFT))
		return 0;
	struct dentry___lsm *d = (void *)BPF_CORE_READ(path, dentry);
	umode_t old = BPF_CORE_READ(d, d_inode, i_mode);
	if ((old & S_IFMT) == S_IFREG && (mode & S_IXUGO & ~old))
		return deny(DENY_CHMOD);
	return 0;
}

// The other ways to change what sits at a blocked path: without them a
// write rule could be bypassed by creating elsewhere and renaming or
// linking into place, and a delete rule by renaming the file away.

// write_or_delete denies when dentry is covered by a write rule, or (when
// removing is true) by a delete rule: moving a blocked file away deletes
// it.
static int write_or_delete(u64 cg, u32 flags, struct dentry *dentry, struct vfsmount *mnt, bool removing)
{
	if ((flags & CG_WRITE) && lookup(cg, OP_WRITE, dentry, mnt))
		return deny(OP_WRITE);
	if (removing && (flags & CG_DELETE) && lookup(cg, OP_DELETE, dentry, mnt))
		return deny(OP_DELETE);
	return 0;
}

SEC("lsm/path_rename")
int BPF_PROG(palisade_path_rename, const struct path *old_dir, struct dentry *old_dentry,
	     const struct path *new_dir, struct dentry *new_dentry, unsigned int rflags, int ret)
{
	if (ret)
		return ret;
	u64 cg = bpf_get_current_cgroup_id();
	u32 flags = cgroup_flags(cg);
	if (!(flags & (CG_WRITE | CG_DELETE)))
		return 0;
	int r = write_or_delete(cg, flags, old_dentry, BPF_CORE_READ(old_dir, mnt), true);
	if (r)
		return r;
	// The target is replaced when it exists: that deletes it too.
	return write_or_delete(cg, flags, new_dentry, BPF_CORE_READ(new_dir, mnt), true);
}

SEC("lsm/path_link")
int BPF_PROG(palisade_path_link, struct dentry *old_dentry, const struct path *new_dir,
	     struct dentry *new_dentry, int ret)
{
	if (ret)
		return ret;
	u64 cg = bpf_get_current_cgroup_id();
	u32 flags = cgroup_flags(cg);
	if (!(flags & CG_WRITE))
		return 0;
	return write_or_delete(cg, flags, new_dentry, BPF_CORE_READ(new_dir, mnt), false);
}

SEC("lsm/path_symlink")
int BPF_PROG(palisade_path_symlink, const struct path *dir, struct dentry *dentry,
	     const char *old_name, int ret)
{
	if (ret)
		return ret;
	u64 cg = bpf_get_current_cgroup_id();
	u32 flags = cgroup_flags(cg);
	if (!(flags & CG_WRITE))
		return 0;
	return write_or_delete(cg, flags, dentry, BPF_CORE_READ(dir, mnt), false);
}

SEC("lsm/path_mkdir")
int BPF_PROG(palisade_path_mkdir, const struct path *dir, struct dentry *dentry, umode_t mode, int ret)
{
	if (ret)
		return ret;
	u64 cg = bpf_get_current_cgroup_id();
	u32 flags = cgroup_flags(cg);
	if (!(flags & CG_WRITE))
		return 0;
	return write_or_delete(cg, flags, dentry, BPF_CORE_READ(dir, mnt), false);
}

SEC("lsm/path_rmdir")
int BPF_PROG(palisade_path_rmdir, const struct path *dir, struct dentry *dentry, int ret)
{
	if (ret)
		return ret;
	u64 cg = bpf_get_current_cgroup_id();
	u32 flags = cgroup_flags(cg);
	if (!(flags & (CG_WRITE | CG_DELETE)))
		return 0;
	return write_or_delete(cg, flags, dentry, BPF_CORE_READ(dir, mnt), true);
}

// truncate(2) changes a file without opening it.
SEC("lsm/path_truncate")
int BPF_PROG(palisade_path_truncate, const struct path *path, int ret)
{
	if (ret)
		return ret;
	u64 cg = bpf_get_current_cgroup_id();
	u32 flags = cgroup_flags(cg);
	if (!(flags & CG_WRITE))
		return 0;
	return write_or_delete(cg, flags, BPF_CORE_READ(path, dentry), BPF_CORE_READ(path, mnt), false);
}
