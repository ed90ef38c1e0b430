/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What lsm.c needs beyond the sensor's trimmed vmlinux.h (which stays as
 * it is): the map types and flags for the rule trie and the inode
 * storage, and dentry.d_inode through a CO-RE flavour (the ___lsm suffix
 * is dropped when relocating, so it resolves against the kernel's struct
 * dentry), and inode.i_nlink the same way.
 */
#ifndef __LSM_TYPES_H__
#define __LSM_TYPES_H__

enum {
	BPF_MAP_TYPE_LPM_TRIE = 11,
	BPF_MAP_TYPE_INODE_STORAGE = 28,
};

enum {
	BPF_F_NO_PREALLOC = 1,
	BPF_LOCAL_STORAGE_GET_F_CREATE = 1,
};

struct dentry___lsm {
	struct inode *d_inode;
} __attribute__((preserve_access_index));

// inode.i_nlink sits in an anonymous union; CO-RE finds it by name.
struct inode___lsm {
	unsigned int i_nlink;
} __attribute__((preserve_access_index));

#endif /* __LSM_TYPES_H__ */
