// SPDX-License-Identifier: GPL-2.0
/*
 * open: judge every file open by the object opened, not the name used.
 *
 * The hook sees the struct file after path resolution, so symlinks, "..",
 * relative names, /proc/self/fd/N and bind mounts all arrive as the same
 * inode. Opens made by exec (FMODE_EXEC) are left to the exec hook.
 */
#include "kernel_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "decide.bpf.h"

char LICENSE[] SEC("license") = "GPL";

static __always_inline __u32 sn_open_access(const struct file *file)
{
	__u32 acc = 0;

	if (file->f_mode & FMODE_READ)
		acc |= SN_ACC_READ;
	/* O_TRUNC changes content even on a read-only open. */
	if ((file->f_mode & FMODE_WRITE) || (file->f_flags & O_TRUNC))
		acc |= SN_ACC_WRITE;
	return acc;
}

static __always_inline void sn_judge_slot(struct sn_masks *m, const struct sn_file_val *exact,
					  const struct sn_config *cfg, int slot, __u64 applicable)
{
	m->undecided = applicable;
	m->deny = 0;
	m->audit = 0;
	if (exact)
		sn_apply(m, exact, slot);
	sn_apply_defaults(m, cfg, slot);
}

static __always_inline int sn_decide_open(struct file *file)
{
	struct sn_file_key key = {};
	struct sn_masks rd = {}, wr = {}, all = {};
	const struct sn_file_val *exact;
	const struct sn_config *cfg;
	struct sn_verdict v;
	struct sn_event *e;
	__u64 applicable;
	__u32 gen = 0, acc;
	int slot;

	if (file->f_mode & FMODE_EXEC)
		return 0;
	cfg = sn_current(&gen);
	if (!cfg || !cfg->active)
		return 0;
	applicable = sn_applicable(cfg);
	if (!applicable)
		return 0;
	sn_count(SN_CNT_DECIDED);

	acc = sn_open_access(file);
	key.ino = file->f_inode->i_ino;
	key.dev = file->f_inode->i_sb->s_dev;
	key.kind = SN_KIND_EXACT;
	key.gen = gen;
	exact = bpf_map_lookup_elem(&sn_files, &key);

	if (acc & SN_ACC_READ)
		sn_judge_slot(&rd, exact, cfg, SN_SLOT_READ, applicable);
	if (acc & SN_ACC_WRITE)
		sn_judge_slot(&wr, exact, cfg, SN_SLOT_WRITE, applicable);
	all.deny = rd.deny | wr.deny;
	all.audit = rd.audit | wr.audit;
	v = sn_fold(&all, cfg);
	if (v.policy < 0)
		return 0;
	if (v.blocked)
		sn_count(SN_CNT_DENIED);

	/* Name the rule from the slot in which the deciding policy was strictest. */
	slot = (wr.deny >> v.policy) & 1 ? SN_SLOT_WRITE :
	       (rd.deny >> v.policy) & 1 ? SN_SLOT_READ :
	       (wr.audit >> v.policy) & 1 ? SN_SLOT_WRITE : SN_SLOT_READ;

	e = bpf_ringbuf_reserve(&sn_events, sizeof(*e), 0);
	if (!e) {
		sn_count(SN_CNT_RINGBUF_FULL);
		return v.blocked ? -EPERM : 0;
	}
	e->kind = v.policy == SN_CANARY_POLICY ? SN_EV_CANARY : SN_EV_ALERT;
	e->op = SN_OP_OPEN;
	e->action = v.action;
	e->blocked = v.blocked;
	e->policy = v.policy;
	/* An exact-entry decision names its rule; otherwise the default decided. */
	e->rule = (exact && ((exact->match[slot] >> v.policy) & 1)) ?
		  sn_rule_of(&key, slot, v.policy) : SN_NO_RULE;
	e->gen = gen;
	e->access = acc;
	e->dev = key.dev;
	e->ino = key.ino;
	e->family = 0;
	e->protocol = 0;
	e->dport = 0;
	__builtin_memset(e->daddr, 0, sizeof(e->daddr));
	__builtin_memset(e->_pad, 0, sizeof(e->_pad));
	sn_fill_process(e);
	if (bpf_d_path(&file->f_path, e->path, sizeof(e->path)) < 0)
		e->path[0] = 0;
	e->exe[0] = 0;
	e->_tail = 0;
	bpf_ringbuf_submit(e, 0);
	return v.blocked ? -EPERM : 0;
}

/* BPF-LSM: the normal way. Sleepable so that bpf_d_path may be used. */
SEC("lsm.s/file_open")
int BPF_PROG(lsm_file_open, struct file *file, int ret)
{
	if (ret)
		return ret;
	return sn_decide_open(file);
}

/* Fallback where BPF-LSM is built in but not in the active LSM list. */
SEC("fmod_ret/security_file_open")
int BPF_PROG(fmodret_file_open, struct file *file, int ret)
{
	if (ret)
		return ret;
	return sn_decide_open(file);
}
