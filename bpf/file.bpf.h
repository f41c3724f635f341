/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Judging a file-system object: one lookup for the object itself, then one per
 * directory above it, up to the global root, crossing mounts, for subtree
 * rules. Used by the open and exec hooks.
 *
 * The hot path is mask arithmetic with no per-policy branches, and the walk
 * runs only while an undecided policy has subtree rules for the slots asked.
 * Which rule decided is looked up only when an alert is emitted, by a second
 * walk for that one policy (sn_find_rule).
 */
#ifndef SENTINEL_FILE_BPF_H
#define SENTINEL_FILE_BPF_H

#include "decide.bpf.h"

#define SN_FILE_SLOTS 3 /* exec, read, write */

/* The walk reads a mount's device once and climbs through mounts without
 * subtree rules. Built with -DSN_WALK_EVERY_DIR it reads every directory's
 * device and visits every directory, as before: `scripts/bench --ablate
 * SN_WALK_EVERY_DIR` measures one against the other in one session. */
#ifdef SN_WALK_EVERY_DIR
#define SN_WALK_CUT 0
#else
#define SN_WALK_CUT 1
#endif

/* State of one walk up the tree, on the hook's stack; bpf_loop passes it to
 * each step. Kernel pointers are kept as integers and read with CO-RE. */
struct sn_walk {
	struct sn_masks m[SN_FILE_SLOTS];
	struct sn_file_key key;
	__u64 dentry;  /* the object or directory reached so far */
	__u64 mnt;     /* struct mount of the mount it is in */
	__u64 root;    /* that mount's root dentry */
	__u32 dev;     /* that mount's s_dev: every directory in it has this device */
	__u32 _pad;
	__u32 slots;   /* bits of the slots asked */
	__u32 gen;
	__u32 done;    /* 1: reached the global root, or nothing left to decide */
	__u32 find_slot;    /* sn_find_rule: the slot and policy looked for */
	__u32 find_policy;
	__u32 found;
};

/* Fields of FILE, read as HOW allows (SN_HOW_* in decide.bpf.h): directly
 * where FILE is a typed hook argument, with CO-RE where it was found by a
 * walk (the tracepoint programs). Shared by the open, exec and mapping hooks. */
static __always_inline fmode_t sn_f_mode(struct file *file, int how)
{
	return how == SN_HOW_CORE ? BPF_CORE_READ(file, f_mode) : file->f_mode;
}

static __always_inline unsigned int sn_f_flags(struct file *file, int how)
{
	return how == SN_HOW_CORE ? BPF_CORE_READ(file, f_flags) : file->f_flags;
}

static __always_inline __u64 sn_f_ino(struct file *file, int how)
{
	return how == SN_HOW_CORE ? BPF_CORE_READ(file, f_inode, i_ino) : file->f_inode->i_ino;
}

static __always_inline __u32 sn_f_dev(struct file *file, int how)
{
	return how == SN_HOW_CORE ? BPF_CORE_READ(file, f_inode, i_sb, s_dev) : file->f_inode->i_sb->s_dev;
}

static __always_inline struct dentry *sn_f_dentry(struct file *file, int how)
{
	return how == SN_HOW_CORE ? BPF_CORE_READ(file, f_path.dentry) : file->f_path.dentry;
}

static __always_inline struct vfsmount *sn_f_mnt(struct file *file, int how)
{
	return how == SN_HOW_CORE ? BPF_CORE_READ(file, f_path.mnt) : file->f_path.mnt;
}

static __always_inline struct mount *sn_real_mount(__u64 vfsmnt)
{
	return (struct mount *)(vfsmnt - bpf_core_field_offset(struct mount, mnt));
}

static __always_inline void sn_key_of(struct sn_file_key *k, __u64 dentry_addr)
{
	/* A typed local: BPF_CORE_READ must relocate only kernel fields. */
	struct dentry *dentry = (struct dentry *)dentry_addr;
	struct inode *inode = BPF_CORE_READ(dentry, d_inode);

	k->ino = BPF_CORE_READ(inode, i_ino);
	k->dev = BPF_CORE_READ(inode, i_sb, s_dev);
}

static __always_inline void sn_walk_start(struct sn_walk *w, struct dentry *dentry, struct vfsmount *vfsmnt)
{
	w->dentry = (__u64)dentry;
	w->mnt = (__u64)sn_real_mount((__u64)vfsmnt);
	w->root = (__u64)BPF_CORE_READ(vfsmnt, mnt_root);
	w->dev = BPF_CORE_READ(vfsmnt, mnt_sb, s_dev);
	w->done = 0;
}

/* Whether a subtree-rule directory of this generation can lie on device DEV:
 * the walk climbs through other mounts without a lookup per directory. */
static __always_inline bool sn_dev_has_subtrees(const struct sn_config *cfg, __u32 dev)
{
	int i;

	if (!SN_WALK_CUT || cfg->subtree_dev_count > SN_SUBTREE_DEVS)
		return true;
	for (i = 0; i < SN_SUBTREE_DEVS; i++)
		if (i < cfg->subtree_dev_count && cfg->subtree_devs[i] == dev)
			return true;
	return false;
}

/* Entering a mount (the object's own, or a parent crossed into): with no
 * subtree rule on its device, go straight to its root, no lookups. */
static __always_inline void sn_walk_enter_mount(struct sn_walk *w, const struct sn_config *cfg)
{
	if (!sn_dev_has_subtrees(cfg, w->dev))
		w->dentry = w->root;
}

/* One step up from *DENTRY, in the mount *MNT whose root is *ROOT (also used
 * by the tracepoint programs' path walk, bpf/path.bpf.h). Returns 0 after
 * moving to the parent directory, 1 after crossing to a parent mount (the
 * mount point is the same directory), 2 at the global root. */
static __always_inline int sn_climb(__u64 *dentry, __u64 *mnt, __u64 *root)
{
	if (*dentry == *root) {
		struct mount *m = (struct mount *)*mnt;
		struct mount *parent = BPF_CORE_READ(m, mnt_parent);

		if ((__u64)parent == *mnt)
			return 2;
		*dentry = (__u64)BPF_CORE_READ(m, mnt_mountpoint);
		*mnt = (__u64)parent;
		*root = (__u64)BPF_CORE_READ(parent, mnt.mnt_root);
		return 1;
	}
	struct dentry *cur = (struct dentry *)*dentry;
	__u64 up = (__u64)BPF_CORE_READ(cur, d_parent);

	if (up == *dentry)  /* the root of a file system mounted nowhere we can see */
		return 2;
	*dentry = up;
	return 0;
}

/* Move to the parent directory. Returns 0 when w->key now names a directory
 * to look up, 1 after crossing to a parent mount (nothing to look up: the
 * mount point is the same directory), 2 at the global root. */
static __always_inline int sn_walk_up(struct sn_walk *w)
{
	int moved = sn_climb(&w->dentry, &w->mnt, &w->root);

	if (moved == 0 && !SN_WALK_CUT) {
		sn_key_of(&w->key, w->dentry);
	} else if (moved == 0) {
		/* The mount's device, read once per mount: two reads fewer per directory. */
		struct dentry *d = (struct dentry *)w->dentry;

		w->key.ino = BPF_CORE_READ(d, d_inode, i_ino);
		w->key.dev = w->dev;
	} else if (moved == 1) {
		struct mount *m = (struct mount *)w->mnt;

		w->dev = BPF_CORE_READ(m, mnt.mnt_sb, s_dev);
	}
	return moved;
}

/* Branch-free: policies decided here for each asked slot stop being undecided. */
static __always_inline void sn_apply_entry(struct sn_walk *w, const struct sn_file_val *v)
{
	int slot;

	for (slot = 0; slot < SN_FILE_SLOTS; slot++) {
		__u64 asked = -(__u64)((w->slots >> slot) & 1);
		__u64 hit = v->match[slot] & w->m[slot].undecided & asked;

		w->m[slot].deny |= v->deny[slot] & hit;
		w->m[slot].audit |= v->audit[slot] & hit;
		w->m[slot].undecided &= ~hit;
	}
}

static __always_inline __u64 sn_walk_wanted(const struct sn_walk *w, const struct sn_config *cfg)
{
	__u64 want = 0;
	int slot;

	for (slot = 0; slot < SN_FILE_SLOTS; slot++)
		want |= cfg->subtree_any[slot] & w->m[slot].undecided & -(__u64)((w->slots >> slot) & 1);
	return want;
}

static long sn_walk_step(__u32 i, void *ctx)
{
	struct sn_walk *w = ctx;
	const struct sn_file_val *v;
	const struct sn_config *cfg;
	__u32 gen = w->gen;
	int moved;

	cfg = bpf_map_lookup_elem(&sn_config, &gen);
	moved = sn_walk_up(w);
	if (!cfg || moved == 2) {
		w->done = 1;
		return 1;
	}
	if (moved == 1) {
		sn_walk_enter_mount(w, cfg);
		return 0;
	}
	v = bpf_map_lookup_elem(&sn_files, &w->key);
	if (v)
		sn_apply_entry(w, v);
	if (!sn_walk_wanted(w, cfg)) {
		w->done = 1;
		return 1;
	}
	return 0;
}

/*
 * Whether the object has no name in any directory at this moment: no links
 * (memfd, O_TMPFILE, deleted), or a deleted name whose dentry is unhashed
 * while other links remain (d_unlinked: unhashed and not a root; a memfd's
 * pseudo dentry is its own root but has no links). Sampled now: an unlink can
 * race either side of the hook.
 */
static __always_inline bool sn_is_fileless(struct dentry *dentry)
{
	struct inode *inode = BPF_CORE_READ(dentry, d_inode);

	if (!BPF_CORE_READ(inode, i_nlink))
		return true;
	return !BPF_CORE_READ(dentry, d_hash.pprev) && BPF_CORE_READ(dentry, d_parent) != dentry;
}

/* `fileless: true` rules, at the level of the object's own entry: with an
 * exact entry of the same policy, the stricter action holds (deny, audit). */
static __always_inline void sn_apply_fileless(struct sn_walk *w, const struct sn_config *cfg, __u64 applicable)
{
	__u64 f = cfg->fileless_match & applicable;

	w->m[SN_SLOT_EXEC].deny |= cfg->fileless_deny & f;
	w->m[SN_SLOT_EXEC].audit |= cfg->fileless_audit & f;
	w->m[SN_SLOT_EXEC].undecided &= ~f;
}

/*
 * Judge the object at (DENTRY, VFSMNT) for the slots in w->slots: its own
 * entry (and, when FILELESS, the `fileless` rules), then subtree entries up
 * to the global root, then defaults unless NO_DEFAULTS (executable mappings:
 * every library of every process is mapped, and only a rule that names the
 * object may deny it).
 */
static __always_inline void sn_judge_file_as(struct sn_walk *w, const struct sn_config *cfg, __u32 gen,
					     struct dentry *dentry, struct vfsmount *vfsmnt, __u64 applicable,
					     bool fileless, bool no_defaults)
{
	const struct sn_file_val *v;
	int slot;

	for (slot = 0; slot < SN_FILE_SLOTS; slot++)
		w->m[slot].undecided = applicable;
	w->gen = gen;
	w->key.kind = SN_KIND_EXACT;
	w->key.gen = gen;
	sn_key_of(&w->key, (__u64)dentry);
	v = bpf_map_lookup_elem(&sn_files, &w->key);
	if (v)
		sn_apply_entry(w, v);
	if (fileless && (w->slots & (1U << SN_SLOT_EXEC)))
		sn_apply_fileless(w, cfg, applicable);

	if (sn_walk_wanted(w, cfg)) {
		w->key.kind = SN_KIND_SUBTREE;
		sn_walk_start(w, dentry, vfsmnt);
		sn_walk_enter_mount(w, cfg);
		bpf_loop(SN_MAX_DEPTH, sn_walk_step, w, 0);
		if (!w->done) {
			/* Deeper than we walk: a subtree deny rule that might apply, denies. */
			sn_count(SN_CNT_DEPTH_CUT);
			for (slot = 0; slot < SN_FILE_SLOTS; slot++) {
				__u64 cut = cfg->subtree_deny[slot] & w->m[slot].undecided;

				w->m[slot].deny |= cut;
				w->m[slot].undecided &= ~cut;
			}
		}
	}
	if (no_defaults)
		return;
	for (slot = 0; slot < SN_FILE_SLOTS; slot++)
		if (w->slots & (1U << slot))
			sn_apply_defaults(&w->m[slot], cfg, slot);
}

static __always_inline void sn_judge_file(struct sn_walk *w, const struct sn_config *cfg, __u32 gen,
					  struct dentry *dentry, struct vfsmount *vfsmnt, __u64 applicable)
{
	sn_judge_file_as(w, cfg, gen, dentry, vfsmnt, applicable, false, false);
}

/* Fold the asked slots into one verdict; *slot_out is the slot in which the
 * deciding policy had that verdict (write before read), -1 if none. */
static __always_inline struct sn_verdict sn_fold_file(const struct sn_walk *w, const struct sn_config *cfg,
						      int *slot_out)
{
	struct sn_masks all = {};
	struct sn_verdict v;
	int slot;

	for (slot = 0; slot < SN_FILE_SLOTS; slot++) {
		if (!(w->slots & (1U << slot)))
			continue;
		all.deny |= w->m[slot].deny;
		all.audit |= w->m[slot].audit;
	}
	v = sn_fold(&all, cfg);
	*slot_out = -1;
	if (v.policy < 0)
		return v;
	for (slot = SN_FILE_SLOTS - 1; slot >= 0; slot--) {
		__u64 bits = v.action == SN_ACT_AUDIT ? w->m[slot].audit & ~w->m[slot].deny : w->m[slot].deny;

		if ((w->slots & (1U << slot)) && ((bits >> v.policy) & 1)) {
			*slot_out = slot;
			break;
		}
	}
	return v;
}

static long sn_find_step(__u32 i, void *ctx)
{
	struct sn_walk *w = ctx;
	const struct sn_file_val *v;
	__u32 slot = w->find_slot;
	int moved = sn_walk_up(w);

	if (moved == 2)
		return 1;
	if (moved == 1)
		return 0;
	v = bpf_map_lookup_elem(&sn_files, &w->key);
	if (v && slot < SN_FILE_SLOTS && ((v->match[slot] >> (w->find_policy & 63)) & 1)) {
		w->found = 1;
		return 1;
	}
	return 0;
}

/*
 * Alert path only: the rule of POLICY that decided SLOT for the object, found
 * where the judging walk found it (the object's own entry, else the deepest
 * subtree entry of that policy), or SN_NO_RULE when its default decided.
 */
static __always_inline __u16 sn_find_rule(struct sn_walk *w, __u32 gen, struct dentry *dentry,
					  struct vfsmount *vfsmnt, int slot, int policy)
{
	const struct sn_file_val *v;

	if (slot < 0 || slot >= SN_FILE_SLOTS || policy < 0)
		return SN_NO_RULE;
	w->key.kind = SN_KIND_EXACT;
	w->key.gen = gen;
	sn_key_of(&w->key, (__u64)dentry);
	v = bpf_map_lookup_elem(&sn_files, &w->key);
	if (v && ((v->match[slot] >> (policy & 63)) & 1))
		return sn_rule_of(&w->key, slot, policy);
	w->key.kind = SN_KIND_SUBTREE;
	w->find_slot = slot;
	w->find_policy = policy;
	w->found = 0;
	sn_walk_start(w, dentry, vfsmnt);
	bpf_loop(SN_MAX_DEPTH, sn_find_step, w, 0);
	return w->found ? sn_rule_of(&w->key, slot, policy) : SN_NO_RULE;
}

/* The action an entry or a `fileless` rule gives POLICY, from its masks. */
static __always_inline __u8 sn_action_of(__u64 deny, __u64 audit, int policy)
{
	if ((deny >> (policy & 63)) & 1)
		return SN_ACT_DENY;
	return ((audit >> (policy & 63)) & 1) ? SN_ACT_AUDIT : SN_ACT_ALLOW;
}

/*
 * sn_find_rule for an exec judged with FILELESS: a policy's `fileless` rule
 * decides at the level of the object's own entry; with both, the stricter
 * action's rule, on a tie the earlier rule (as compiler/evaluate.py).
 */
static __always_inline __u16 sn_find_rule_as(struct sn_walk *w, const struct sn_config *cfg, __u32 gen,
					     struct dentry *dentry, struct vfsmount *vfsmnt, int slot, int policy,
					     bool fileless)
{
	const struct sn_file_val *v;
	__u16 fl_rule, ex_rule;
	__u8 fl_act, ex_act;

	if (!fileless || slot != SN_SLOT_EXEC || policy < 0 || !((cfg->fileless_match >> (policy & 63)) & 1))
		return sn_find_rule(w, gen, dentry, vfsmnt, slot, policy);
	fl_rule = cfg->fileless_rule[policy & 63];
	fl_act = sn_action_of(cfg->fileless_deny, cfg->fileless_audit, policy);
	w->key.kind = SN_KIND_EXACT;
	w->key.gen = gen;
	sn_key_of(&w->key, (__u64)dentry);
	v = bpf_map_lookup_elem(&sn_files, &w->key);
	if (!v || !((v->match[SN_SLOT_EXEC] >> (policy & 63)) & 1))
		return fl_rule;
	ex_act = sn_action_of(v->deny[SN_SLOT_EXEC], v->audit[SN_SLOT_EXEC], policy);
	ex_rule = sn_rule_of(&w->key, SN_SLOT_EXEC, policy);
	if (ex_act != fl_act)
		return ex_act > fl_act ? ex_rule : fl_rule;
	return ex_rule < fl_rule ? ex_rule : fl_rule;
}

#endif /* SENTINEL_FILE_BPF_H */
