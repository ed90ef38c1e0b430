/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A trimmed vmlinux.h: only the kernel types sensor.c reads, written by
 * hand from `bpftool btf dump file /sys/kernel/btf/vmlinux format c`
 * (kernel 6.18). It is committed rather than generated in `make generate`
 * so that the objects do not depend on the kernel of the machine that
 * regenerates them. Every struct is marked preserve_access_index: field
 * offsets are relocated against the running kernel's BTF at load (CO-RE),
 * so the order and the set of fields here need not match any kernel.
 * Fields the kernel keeps in anonymous unions (dentry.d_name, file.f_path)
 * are declared directly; CO-RE finds them by name. struct pt_regs is the
 * one per-architecture type (bpf2go defines __TARGET_ARCH_x86 or _arm64).
 */
#ifndef __VMLINUX_H__
#define __VMLINUX_H__

typedef unsigned char __u8;
typedef short unsigned int __u16;
typedef unsigned int __u32;
typedef long long unsigned int __u64;
typedef signed char __s8;
typedef short int __s16;
typedef int __s32;
typedef long long int __s64;
typedef __u8 u8;
typedef __u16 u16;
typedef __u32 u32;
typedef __u64 u64;
typedef __s32 s32;
typedef __s64 s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef int pid_t;
typedef unsigned short umode_t;
typedef unsigned int fmode_t;
typedef _Bool bool;
enum { false = 0, true = 1 };

enum bpf_map_type {
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_LRU_HASH = 9,
	BPF_MAP_TYPE_RINGBUF = 27,
};

enum {
	BPF_ANY = 0,
	BPF_NOEXIST = 1,
	BPF_EXIST = 2,
};

enum {
	BPF_RB_NO_WAKEUP = 1,
	BPF_RB_FORCE_WAKEUP = 2,
};

enum {
	BPF_RB_AVAIL_DATA = 0,
	BPF_RB_RING_SIZE = 1,
	BPF_RB_CONS_POS = 2,
	BPF_RB_PROD_POS = 3,
};

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

struct qstr {
	union {
		struct {
			u32 hash;
			u32 len;
		};
		u64 hash_len;
	};
	const unsigned char *name;
};

struct dentry {
	struct dentry *d_parent;
	struct qstr d_name;
};

struct list_head {
	struct list_head *next;
	struct list_head *prev;
};

struct hlist_node {
	struct hlist_node *next;
	struct hlist_node **pprev;
};

struct hlist_head {
	struct hlist_node *first;
};

/*
 * struct dentry's fields for sensor.c's dcache lookup, as flavours (CO-RE
 * drops the ___suffix) so that struct dentry, which the enforce objects
 * share, stays as it is: d_inode, and the children list, an hlist since
 * 6.8 (d_children/d_sib), a list before (d_subdirs/d_child).
 */
struct dentry___lookup {
	unsigned int d_flags;
	struct inode *d_inode;
	struct hlist_node d_sib;
	struct hlist_head d_children;
};

struct dentry___subdirs {
	struct list_head d_child;
	struct list_head d_subdirs;
};

/* A mount's children, for the lookup's crossing into mounts. */
struct mount___lookup {
	struct list_head mnt_mounts;
	struct list_head mnt_child;
};

/*
 * d_flags: DCACHE_MOUNTED is BIT(15) in the enum of 6.15 and later, a
 * #define of 0x10000 before (sensor.c falls back to that value).
 */
enum dentry_flags {
	DCACHE_MOUNTED = 32768,
};

struct vfsmount {
	struct dentry *mnt_root;
};

struct mount {
	struct mount *mnt_parent;
	struct dentry *mnt_mountpoint;
	struct vfsmount mnt;
};

struct path {
	struct vfsmount *mnt;
	struct dentry *dentry;
};

struct inode {
	umode_t i_mode;
};

struct file {
	fmode_t f_mode;
	struct inode *f_inode;
	struct path f_path;
};

struct fdtable {
	unsigned int max_fds;
	struct file **fd;
};

struct files_struct {
	struct fdtable *fdt;
};

struct fs_struct {
	struct path root;
	struct path pwd;
};

struct tty_struct;

struct signal_struct {
	struct tty_struct *tty;
};

struct mm_struct {
	unsigned long arg_start;
	unsigned long arg_end;
	struct file *exe_file;
};

struct kernfs_node {
	u64 id;
};

struct cgroup {
	struct kernfs_node *kn;
};

struct css_set {
	struct cgroup *dfl_cgrp;
};

struct task_struct {
	pid_t pid;
	pid_t tgid;
	struct task_struct *real_parent;
	struct mm_struct *mm;
	struct fs_struct *fs;
	struct files_struct *files;
	struct signal_struct *signal;
	struct css_set *cgroups;
};

#if defined(__TARGET_ARCH_x86)
/* thread_info.status, as a flavour of task_struct's: TS_COMPAT marks a
 * 32-bit syscall in progress. */
struct thread_info___x86 {
	u32 status;
};

struct task_struct___x86 {
	struct thread_info___x86 thread_info;
};

struct pt_regs {
	unsigned long di;
	unsigned long si;
	unsigned long dx;
	unsigned long r10;
	unsigned long r8;
	unsigned long orig_ax;
};
#elif defined(__TARGET_ARCH_arm64)
struct pt_regs {
	u64 regs[31];
	u64 orig_x0;
	s32 syscallno;
};
#endif

struct linux_binprm {
	struct file *file;
};
#pragma clang attribute pop

#endif /* __VMLINUX_H__ */
