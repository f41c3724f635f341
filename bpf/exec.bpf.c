// SPDX-License-Identifier: GPL-2.0
/*
 * exec: judge the file the kernel is about to execute.
 *
 * bprm_check_security runs once per binary handler round with bprm->file set
 * to what will run, so execve, execveat(AT_EMPTY_PATH), fexecve, symlinks and
 * a #! script's interpreter (the second round) are all judged by identity.
 */
#include "kernel_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "file.bpf.h"

char LICENSE[] SEC("license") = "GPL";

static __always_inline int sn_decide_exec(struct linux_binprm *bprm, bool can_d_path)
{
	struct sn_walk w = {};
	const struct sn_config *cfg;
	struct sn_verdict v;
	struct sn_event *e;
	struct file *file;
	__u64 applicable;
	__u32 gen = 0;
	__u16 rule = SN_NO_RULE;
	int slot;

	cfg = sn_current(&gen);
	if (!cfg || !cfg->active)
		return 0;
	applicable = sn_applicable(cfg, gen);
	if (!applicable)
		return 0;
	sn_count(SN_CNT_DECIDED);

	file = bprm->file;
	w.slots = 1U << SN_SLOT_EXEC;
	sn_judge_file(&w, cfg, gen, file->f_path.dentry, file->f_path.mnt, applicable);
	v = sn_fold_file(&w, cfg, &slot);
	if (v.policy < 0)
		return 0;
	if (v.blocked)
		sn_count(SN_CNT_DENIED);

	rule = sn_find_rule(&w, gen, file->f_path.dentry, file->f_path.mnt, slot, v.policy);
	e = sn_event_start(cfg, &v, SN_OP_EXEC, rule, gen);
	if (e) {
		e->dev = file->f_inode->i_sb->s_dev;
		e->ino = file->f_inode->i_ino;
		if (can_d_path) {
			if (bpf_d_path(&file->f_path, e->path, sizeof(e->path)) < 0)
				e->path[0] = 0;
			sn_fill_exe(e);
		} else {
			/* The name asked for; user space resolves it when it can. */
			if (bpf_probe_read_kernel_str(e->path, sizeof(e->path), bprm->filename) < 0)
				e->path[0] = 0;
			/* The caller's executable, as stored at its own exec. */
			sn_fill_exe_stored(e);
		}
		bpf_ringbuf_submit(e, 0);
	}
	return v.blocked ? -EPERM : 0;
}

SEC("lsm.s/bprm_check_security")
int BPF_PROG(lsm_bprm_check, struct linux_binprm *bprm, int ret)
{
	if (ret)
		return ret;
	return sn_decide_exec(bprm, true);
}

/* bpf_d_path is not allowed on security_bprm_check: the name asked for is
 * used, and the caller's executable comes from sn_exe. */
SEC("fmod_ret/security_bprm_check")
int BPF_PROG(fmodret_bprm_check, struct linux_binprm *bprm, int ret)
{
	if (ret)
		return ret;
	return sn_decide_exec(bprm, false);
}

/* Tracing only (mechanism "trace"): judged and reported, never denied. */
SEC("fentry/security_bprm_check")
int BPF_PROG(fentry_bprm_check, struct linux_binprm *bprm)
{
	sn_decide_exec(bprm, false);
	return 0;
}
