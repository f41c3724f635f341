// SPDX-License-Identifier: GPL-2.0
/*
 * Names and content changed without an open: rename, link, unlink, rmdir and
 * truncate. Rules match objects by identity, so these hooks keep the names
 * that rules were written for from being moved, replaced or removed, and a
 * protected object from escaping a subtree rule under a new name.
 *
 * What each change is judged as (all report as `open` alerts, `via` says how):
 * - giving an object a new name (rename source, link source) or replacing it
 *   (rename target): read and write, every rule and default as for an open;
 * - removing a name (unlink, rmdir): write, plus any read rule on the object
 *   itself (an exact rule would not cover a file recreated at that name);
 * - truncate: write;
 * - renaming or removing a directory on the way to a deny rule's object (a
 *   GUARD entry): write, denied by that rule.
 *
 * These LSM hooks are not sleepable, so there is no bpf_d_path: the event
 * carries the object's last name component and user space completes it, and
 * the process's executable as stored at its exec (sn_exe).
 */
#include "kernel_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "file.bpf.h"

char LICENSE[] SEC("license") = "GPL";

enum sn_change {
	SN_CH_NAME_GIVEN = 0,   /* rename source, link source, rename target */
	SN_CH_NAME_REMOVED = 1, /* unlink, rmdir */
	SN_CH_CONTENT = 2,      /* truncate */
};

static __always_inline int sn_decide_name(struct dentry *dentry, struct vfsmount *mnt, int change, __u32 via)
{
	struct sn_walk w = {};
	struct sn_file_key own = {}, guard = {};
	const struct sn_file_val *v;
	const struct sn_config *cfg;
	struct sn_verdict verdict;
	struct sn_event *e;
	struct inode *inode;
	__u64 applicable, guard_deny = 0;
	__u32 gen = 0;
	__u16 rule = SN_NO_RULE;
	int slot;

	if (!dentry || !mnt)
		return 0;
	inode = BPF_CORE_READ(dentry, d_inode);
	if (!inode)  /* a rename onto a name that does not exist yet */
		return 0;
	cfg = sn_current(&gen);
	if (!cfg || !cfg->active)
		return 0;
	applicable = sn_applicable(cfg, gen);
	if (!applicable)
		return 0;
	sn_count(SN_CNT_DECIDED);

	w.slots = 1U << SN_SLOT_WRITE;
	if (change == SN_CH_NAME_GIVEN)
		w.slots |= 1U << SN_SLOT_READ;
	sn_judge_file(&w, cfg, gen, dentry, mnt, applicable);

	own.kind = SN_KIND_EXACT;
	own.gen = gen;
	sn_key_of(&own, (__u64)dentry);
	if (change == SN_CH_NAME_REMOVED) {
		/* The object's own read rule, not subtree rules nor defaults: a
		 * file recreated inside a subtree is covered again, one recreated
		 * at an exact rule's name would not be. */
		v = bpf_map_lookup_elem(&sn_files, &own);
		if (v) {
			__u64 hit = v->match[SN_SLOT_READ] & applicable;

			w.m[SN_SLOT_READ].deny |= v->deny[SN_SLOT_READ] & hit;
			w.m[SN_SLOT_READ].audit |= v->audit[SN_SLOT_READ] & hit;
		}
		w.slots |= 1U << SN_SLOT_READ;
	}
	if (change != SN_CH_CONTENT) {
		guard = own;
		guard.kind = SN_KIND_GUARD;
		v = bpf_map_lookup_elem(&sn_files, &guard);
		if (v) {
			guard_deny = v->deny[SN_SLOT_WRITE] & applicable;
			w.m[SN_SLOT_WRITE].deny |= guard_deny;
		}
	}

	verdict = sn_fold_file(&w, cfg, &slot);
	if (verdict.policy < 0)
		return 0;
	if (verdict.blocked)
		sn_count(SN_CNT_DENIED);
	if (verdict.policy != SN_CANARY_POLICY) {
		if (slot == SN_SLOT_WRITE && ((guard_deny >> (verdict.policy & 63)) & 1))
			rule = sn_rule_of(&guard, SN_SLOT_WRITE, verdict.policy);
		else
			rule = sn_find_rule(&w, gen, dentry, mnt, slot, verdict.policy);
	}
	e = sn_event_start(cfg, &verdict, SN_OP_OPEN, rule, gen);
	if (e) {
		e->access = SN_ACC_WRITE | (change == SN_CH_CONTENT ? 0 : SN_ACC_READ);
		e->via = via;
		e->dev = own.dev;
		e->ino = own.ino;
		if (bpf_probe_read_kernel_str(e->path, sizeof(e->path), BPF_CORE_READ(dentry, d_name.name)) < 0)
			e->path[0] = 0;
		sn_fill_exe_stored(e);
		bpf_ringbuf_submit(e, 0);
	}
	return verdict.blocked ? -EPERM : 0;
}

/* Both sides of a rename: the object renamed and whatever it replaces (or,
 * with RENAME_EXCHANGE, swaps with). The first denial stops it. */
static __always_inline int sn_decide_rename(const struct path *old_dir, struct dentry *old_dentry,
					    const struct path *new_dir, struct dentry *new_dentry)
{
	int ret = sn_decide_name(old_dentry, BPF_CORE_READ(old_dir, mnt), SN_CH_NAME_GIVEN, SN_VIA_RENAME);

	if (ret)
		return ret;
	return sn_decide_name(new_dentry, BPF_CORE_READ(new_dir, mnt), SN_CH_NAME_GIVEN, SN_VIA_RENAME);
}

static __always_inline int sn_decide_link(struct dentry *old_dentry, const struct path *new_dir)
{
	/* link(2) cannot cross mounts: the old name is on new_dir's mount. */
	return sn_decide_name(old_dentry, BPF_CORE_READ(new_dir, mnt), SN_CH_NAME_GIVEN, SN_VIA_LINK);
}

/*
 * The entry points. As every other hook's, each first returns a denial by an
 * earlier BPF program on the same hook unchanged (`ret`, after the hook's own
 * arguments): another BPF-LSM user such as systemd's RestrictFileSystems may
 * share it. path_rename's hook and security_path_rename take the rename flags
 * (6.1), so its `ret` comes after them.
 */
SEC("lsm/path_rename")
int BPF_PROG(lsm_path_rename, const struct path *old_dir, struct dentry *old_dentry,
	     const struct path *new_dir, struct dentry *new_dentry, unsigned int flags, int ret)
{
	if (ret)
		return ret;
	return sn_decide_rename(old_dir, old_dentry, new_dir, new_dentry);
}

SEC("lsm/path_link")
int BPF_PROG(lsm_path_link, struct dentry *old_dentry, const struct path *new_dir, struct dentry *new_dentry,
	     int ret)
{
	if (ret)
		return ret;
	return sn_decide_link(old_dentry, new_dir);
}

SEC("lsm/path_unlink")
int BPF_PROG(lsm_path_unlink, const struct path *dir, struct dentry *dentry, int ret)
{
	if (ret)
		return ret;
	return sn_decide_name(dentry, BPF_CORE_READ(dir, mnt), SN_CH_NAME_REMOVED, SN_VIA_UNLINK);
}

SEC("lsm/path_rmdir")
int BPF_PROG(lsm_path_rmdir, const struct path *dir, struct dentry *dentry, int ret)
{
	if (ret)
		return ret;
	return sn_decide_name(dentry, BPF_CORE_READ(dir, mnt), SN_CH_NAME_REMOVED, SN_VIA_RMDIR);
}

SEC("lsm/path_truncate")
int BPF_PROG(lsm_path_truncate, const struct path *path, int ret)
{
	if (ret)
		return ret;
	return sn_decide_name(BPF_CORE_READ(path, dentry), BPF_CORE_READ(path, mnt), SN_CH_CONTENT, SN_VIA_TRUNCATE);
}

/* fmod_ret on the security_path_* functions: the fallback. */
SEC("fmod_ret/security_path_rename")
int BPF_PROG(fmodret_path_rename, const struct path *old_dir, struct dentry *old_dentry,
	     const struct path *new_dir, struct dentry *new_dentry, unsigned int flags, int ret)
{
	if (ret)
		return ret;
	return sn_decide_rename(old_dir, old_dentry, new_dir, new_dentry);
}

SEC("fmod_ret/security_path_link")
int BPF_PROG(fmodret_path_link, struct dentry *old_dentry, const struct path *new_dir, struct dentry *new_dentry,
	     int ret)
{
	if (ret)
		return ret;
	return sn_decide_link(old_dentry, new_dir);
}

SEC("fmod_ret/security_path_unlink")
int BPF_PROG(fmodret_path_unlink, const struct path *dir, struct dentry *dentry, int ret)
{
	if (ret)
		return ret;
	return sn_decide_name(dentry, BPF_CORE_READ(dir, mnt), SN_CH_NAME_REMOVED, SN_VIA_UNLINK);
}

SEC("fmod_ret/security_path_rmdir")
int BPF_PROG(fmodret_path_rmdir, const struct path *dir, struct dentry *dentry, int ret)
{
	if (ret)
		return ret;
	return sn_decide_name(dentry, BPF_CORE_READ(dir, mnt), SN_CH_NAME_REMOVED, SN_VIA_RMDIR);
}

SEC("fmod_ret/security_path_truncate")
int BPF_PROG(fmodret_path_truncate, const struct path *path, int ret)
{
	if (ret)
		return ret;
	return sn_decide_name(BPF_CORE_READ(path, dentry), BPF_CORE_READ(path, mnt), SN_CH_CONTENT, SN_VIA_TRUNCATE);
}

/* Tracing only (mechanism "trace"): the same judgement, reported, never enforced. */
SEC("fentry/security_path_rename")
int BPF_PROG(fentry_path_rename, const struct path *old_dir, struct dentry *old_dentry,
	     const struct path *new_dir, struct dentry *new_dentry)
{
	sn_decide_rename(old_dir, old_dentry, new_dir, new_dentry);
	return 0;
}

SEC("fentry/security_path_link")
int BPF_PROG(fentry_path_link, struct dentry *old_dentry, const struct path *new_dir, struct dentry *new_dentry)
{
	sn_decide_link(old_dentry, new_dir);
	return 0;
}

SEC("fentry/security_path_unlink")
int BPF_PROG(fentry_path_unlink, const struct path *dir, struct dentry *dentry)
{
	sn_decide_name(dentry, BPF_CORE_READ(dir, mnt), SN_CH_NAME_REMOVED, SN_VIA_UNLINK);
	return 0;
}

SEC("fentry/security_path_rmdir")
int BPF_PROG(fentry_path_rmdir, const struct path *dir, struct dentry *dentry)
{
	sn_decide_name(dentry, BPF_CORE_READ(dir, mnt), SN_CH_NAME_REMOVED, SN_VIA_RMDIR);
	return 0;
}

SEC("fentry/security_path_truncate")
int BPF_PROG(fentry_path_truncate, const struct path *path)
{
	sn_decide_name(BPF_CORE_READ(path, dentry), BPF_CORE_READ(path, mnt), SN_CH_CONTENT, SN_VIA_TRUNCATE);
	return 0;
}
