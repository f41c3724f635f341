// SPDX-License-Identifier: GPL-2.0
/*
 * Another BPF-LSM user, independent of sentinel (as systemd's
 * RestrictFileSystems is): denies opening, unlinking and renaming the
 * objects in ot_deny, by (inode, device). Like systemd's program and
 * libbpf-bootstrap's example, it first returns an earlier program's denial
 * unchanged. Built and loaded by tests/kernel/test_coexist.py: the lsm/
 * entry points where BPF-LSM is active, the fmod_ret/ ones where it is not
 * (an lsm/ program attaches there but never runs).
 */
#include "kernel_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";

struct ot_key {
	__u64 ino;
	__u32 dev;  /* the kernel's s_dev */
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8);
	__type(key, struct ot_key);
	__type(value, __u32);
} ot_deny SEC(".maps");

/* Denials made, for the test to see that this program did deny. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} ot_denied SEC(".maps");

static __always_inline int ot_decide(struct inode *inode)
{
	struct ot_key key = {};
	__u32 zero = 0;
	__u64 *n;

	if (!inode)
		return 0;
	key.ino = BPF_CORE_READ(inode, i_ino);
	key.dev = BPF_CORE_READ(inode, i_sb, s_dev);
	if (!bpf_map_lookup_elem(&ot_deny, &key))
		return 0;
	n = bpf_map_lookup_elem(&ot_denied, &zero);
	if (n)
		__sync_fetch_and_add(n, 1);
	return -EPERM;
}

SEC("lsm/file_open")
int BPF_PROG(ot_lsm_open, struct file *file, int ret)
{
	if (ret)
		return ret;
	return ot_decide(BPF_CORE_READ(file, f_inode));
}

SEC("lsm/path_unlink")
int BPF_PROG(ot_lsm_unlink, const struct path *dir, struct dentry *dentry, int ret)
{
	if (ret)
		return ret;
	return ot_decide(BPF_CORE_READ(dentry, d_inode));
}

SEC("lsm/path_rename")
int BPF_PROG(ot_lsm_rename, const struct path *old_dir, struct dentry *old_dentry,
	     const struct path *new_dir, struct dentry *new_dentry, unsigned int flags, int ret)
{
	if (ret)
		return ret;
	return ot_decide(BPF_CORE_READ(old_dentry, d_inode));
}

SEC("fmod_ret/security_file_open")
int BPF_PROG(ot_fmr_open, struct file *file, int ret)
{
	if (ret)
		return ret;
	return ot_decide(BPF_CORE_READ(file, f_inode));
}

SEC("fmod_ret/security_path_unlink")
int BPF_PROG(ot_fmr_unlink, const struct path *dir, struct dentry *dentry, int ret)
{
	if (ret)
		return ret;
	return ot_decide(BPF_CORE_READ(dentry, d_inode));
}

SEC("fmod_ret/security_path_rename")
int BPF_PROG(ot_fmr_rename, const struct path *old_dir, struct dentry *old_dentry,
	     const struct path *new_dir, struct dentry *new_dentry, unsigned int flags, int ret)
{
	if (ret)
		return ret;
	return ot_decide(BPF_CORE_READ(old_dentry, d_inode));
}
