// SPDX-License-Identifier: GPL-2.0
/*
 * open: judge every file open by the object opened, not the name used.
 *
 * The hook sees the struct file after path resolution, so symlinks, "..",
 * relative names, /proc/self/fd/N and bind mounts all arrive as the same
 * inode. Opens made by exec are left to the exec hook: on 6.1 they arrive with
 * __FMODE_EXEC in f_flags (FMODE_EXEC in f_mode is set only later, if ever).
 * This hook may call bpf_d_path, so it notes their paths for sn_exe.
 */
#include "kernel_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "file.bpf.h"

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

/* While the daemon resolves rule paths, record what this hook sees for its
 * opens: stat() can disagree with the kernel (overlayfs, btrfs, 9p). */
static __always_inline bool sn_probe_open(struct file *file)
{
	__u32 zero = 0, i;
	struct sn_state *st = bpf_map_lookup_elem(&sn_state, &zero);
	struct task_struct *task;
	struct sn_probe *p;

	if (!st || !st->probe_tgid || (bpf_get_current_pid_tgid() >> 32) != st->probe_tgid)
		return false;
	task = bpf_get_current_task_btf();
	if (BPF_CORE_READ(task, group_leader, start_boottime) / 10000000ULL != st->probe_ticks)
		return false;
	p = bpf_map_lookup_elem(&sn_probe, &zero);
	if (!p)
		return true;
	i = p->count;
	if (i < SN_PROBE_IDS) {
		p->ino[i] = file->f_inode->i_ino;
		p->dev[i] = file->f_inode->i_sb->s_dev;
		p->count = i + 1;
	}
	return true;
}

/* The initial value of a new sn_exec_open entry (.rodata), overwritten at once. */
static const struct sn_exe_path sn_no_exe = {};

/*
 * One of exec's own opens: the binary, a #! interpreter or the ELF loader
 * (which comes after the binary, so "the last exec open" would be wrong).
 * Noted under its struct file for bpf/exe.bpf.c, which takes the entry of
 * the file that becomes the executable. d_path writes straight into the map
 * value: 4 KiB fits no BPF stack, and a per-CPU scratch is not race-free in
 * a preemptible (sleepable) hook.
 */
static __always_inline void sn_note_exec_open(struct file *file)
{
	__u64 key = (__u64)file;
	struct sn_exe_path *p;

	if (bpf_map_update_elem(&sn_exec_open, &key, &sn_no_exe, BPF_ANY)) {
		/* An older file's entry under this address must not be taken for this one. */
		bpf_map_delete_elem(&sn_exec_open, &key);
		return;
	}
	p = bpf_map_lookup_elem(&sn_exec_open, &key);
	if (p && bpf_d_path(&file->f_path, p->path, sizeof(p->path)) < 0)
		bpf_map_delete_elem(&sn_exec_open, &key);  /* too long for SN_EXE_LEN: /proc then */
}

static __always_inline int sn_decide_open(struct file *file)
{
	struct sn_walk w = {};
	const struct sn_config *cfg;
	struct sn_verdict v;
	struct sn_event *e;
	__u64 applicable;
	__u32 gen = 0, acc;
	__u16 rule = SN_NO_RULE;
	int slot;

	if ((file->f_mode & FMODE_EXEC) || (file->f_flags & __FMODE_EXEC)) {
		sn_note_exec_open(file);
		return 0;
	}
	if (sn_probe_open(file))
		return 0;
	cfg = sn_current(&gen);
	if (!cfg || !cfg->active)
		return 0;
	applicable = sn_applicable(cfg, gen);
	if (!applicable)
		return 0;
	sn_count(SN_CNT_DECIDED);

	acc = sn_open_access(file);
	if (acc & SN_ACC_READ)
		w.slots |= 1U << SN_SLOT_READ;
	if (acc & SN_ACC_WRITE)
		w.slots |= 1U << SN_SLOT_WRITE;
	sn_judge_file(&w, cfg, gen, file->f_path.dentry, file->f_path.mnt, applicable);
	v = sn_fold_file(&w, cfg, &slot);
	if (v.policy < 0)
		return 0;
	if (v.blocked)
		sn_count(SN_CNT_DENIED);

	if (v.policy != SN_CANARY_POLICY)
		rule = sn_find_rule(&w, gen, file->f_path.dentry, file->f_path.mnt, slot, v.policy);
	e = sn_event_start(cfg, &v, SN_OP_OPEN, rule, gen);
	if (e) {
		e->access = acc;
		e->dev = file->f_inode->i_sb->s_dev;
		e->ino = file->f_inode->i_ino;
		if (bpf_d_path(&file->f_path, e->path, sizeof(e->path)) < 0)
			e->path[0] = 0;
		sn_fill_exe(e);
		bpf_ringbuf_submit(e, 0);
	}
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

/* Tracing only (mechanism "trace", where neither of the above can load):
 * judged and reported, never denied. Audit mode only. */
SEC("fentry/security_file_open")
int BPF_PROG(fentry_file_open, struct file *file)
{
	sn_decide_open(file);
	return 0;
}
