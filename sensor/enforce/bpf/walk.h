// walk.h: the path walk of execkill.c, lsm.c and ../../bpf/sensor.c: a path
// as the current task sees it is built backwards into struct scratch's
// build buffer (2 * BUILD bytes), one component per bpf_loop iteration,
// crossing mounts up to the task's root, as d_path does. The including
// file defines BUILD and struct scratch (with char build[2 * BUILD])
// before including this header.
#ifndef PALISADE_WALK_H
#define PALISADE_WALK_H

struct walk {
	struct dentry *dentry;
	struct vfsmount *vmnt;
	struct mount *mnt;
	struct dentry *root_dentry;
	struct vfsmount *root_mnt;
	struct scratch *s;
	u32 pos;
	bool done;
};

// walk_step prepends one path component, or crosses from a mount's root
// to its mount point, as d_path does (up to the current task's
// root). Run by bpf_loop so the verifier checks one iteration.
static long walk_step(u32 i, void *ctx)
{
	struct walk *w = ctx;
	struct scratch *s = w->s;
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
		if (parent == mnt) {
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
	u32 pos = w->pos & (BUILD - 1);
	if (pos <= len + 1)
		return 1; // too long for the buffer: leaves done false
	pos -= len;
	bpf_probe_read_kernel(&s->build[pos & (BUILD - 1)], len, name);
	pos -= 1;
	s->build[pos & (BUILD - 1)] = '/';
	w->pos = pos;
	w->dentry = parent;
	return 0;
}

#endif
