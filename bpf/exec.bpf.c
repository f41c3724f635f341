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
#include "path.bpf.h"
#include "tp.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/*
 * The decision on an exec of FILE, for every mechanism. HOW (SN_HOW_* in
 * decide.bpf.h) says how FILE may be read and where the alert's paths come
 * from: bpf_d_path (BPF-LSM), BPRM's name and sn_exe (fmod_ret, trace), or
 * dentry walks (tracepoint: FILE is the new mm->exe_file, CALLER_EXE the
 * executable of the process that called execve, NULL if unknown).
 */
static __always_inline int sn_decide_exec_as(struct file *file, int how, struct linux_binprm *bprm,
					     struct file *caller_exe)
{
	struct sn_walk w = {};
	const struct sn_config *cfg;
	struct sn_verdict v;
	struct sn_event *e;
	struct dentry *dentry;
	struct vfsmount *mnt;
	__u64 applicable;
	__u32 gen = 0;
	__u16 rule = SN_NO_RULE;
	bool fileless;
	int slot;

	cfg = sn_current(&gen);
	if (!cfg || !cfg->active)
		return 0;
	applicable = how == SN_HOW_CORE ? sn_applicable_as(cfg, gen, true, caller_exe) : sn_applicable(cfg, gen);
	if (!applicable)
		return 0;
	sn_count(SN_CNT_DECIDED);

	dentry = sn_f_dentry(file, how);
	mnt = sn_f_mnt(file, how);
	/* bprm->file is what will run: for fexecve, execveat(AT_EMPTY_PATH) and
	 * /proc/PID/fd/N, a reopened struct file on the same dentry. */
	fileless = (cfg->fileless_match & applicable) && sn_is_fileless(dentry);
	w.slots = 1U << SN_SLOT_EXEC;
	sn_judge_file_as(&w, cfg, gen, dentry, mnt, applicable, fileless, false);
	v = sn_fold_file(&w, cfg, &slot);
	if (v.policy < 0)
		return 0;
	if (v.blocked)
		sn_count(SN_CNT_DENIED);

	rule = sn_find_rule_as(&w, cfg, gen, dentry, mnt, slot, v.policy, fileless);
	e = sn_event_start(cfg, &v, SN_OP_EXEC, rule, gen);
	if (e) {
		e->dev = sn_f_dev(file, how);
		e->ino = sn_f_ino(file, how);
		if (how == SN_HOW_CORE) {
			sn_build_path(e->path, dentry, mnt);
			if (caller_exe)
				sn_build_file_path(e->exe, caller_exe);
		}
		if (how == SN_HOW_DPATH) {
			if (bpf_d_path(&file->f_path, e->path, sizeof(e->path)) < 0)
				e->path[0] = 0;
			sn_fill_exe(e);
		} else if (how == SN_HOW_BTF) {
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

static __always_inline int sn_decide_exec(struct linux_binprm *bprm, bool can_d_path)
{
	return sn_decide_exec_as(bprm->file, can_d_path ? SN_HOW_DPATH : SN_HOW_BTF, bprm, 0);
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

/*
 * Mechanism "tracepoint" (audit only): the exec is judged once it has
 * happened, on the new program (mm->exe_file: for a #! script, its
 * interpreter; the script itself is gone by then and is not judged).
 * sys_enter notes the caller's executable, which `binaries` selectors and
 * the alert's process.exe are about, before exec replaces it.
 */
static __always_inline void sn_tp_exec_enter(void)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u64 exe = (__u64)BPF_CORE_READ(task, mm, exe_file);
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	const struct sn_config *cfg;
	__u32 gen;

	cfg = sn_current(&gen);
	if (!cfg || !cfg->active)
		return;
	bpf_map_update_elem(&sn_tp_exec, &tid, &exe, BPF_ANY);
}

/* A failed exec returns to its caller: forget what its sys_enter noted. */
static __always_inline void sn_tp_exec_exit(long ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();

	if (ret < 0)
		bpf_map_delete_elem(&sn_tp_exec, &tid);
}

SEC("tracepoint/syscalls/sys_enter_execve")
int tp_enter_execve(struct sn_tp_sys_enter *ctx)
{
	sn_tp_exec_enter();
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_execveat")
int tp_enter_execveat(struct sn_tp_sys_enter *ctx)
{
	sn_tp_exec_enter();
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_execve")
int tp_exit_execve(struct sn_tp_sys_exit *ctx)
{
	sn_tp_exec_exit(ctx->ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_execveat")
int tp_exit_execveat(struct sn_tp_sys_exit *ctx)
{
	sn_tp_exec_exit(ctx->ret);
	return 0;
}

SEC("tracepoint/sched/sched_process_exec")
int tp_exec(struct sn_tp_exec *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct file *file = BPF_CORE_READ(task, mm, exe_file);
	__u32 tid = ctx->old_pid;
	__u64 *noted = bpf_map_lookup_elem(&sn_tp_exec, &tid);
	struct file *caller = 0;

	if (noted) {
		caller = (struct file *)*noted;
		bpf_map_delete_elem(&sn_tp_exec, &tid);
	}
	if (file)
		sn_decide_exec_as(file, SN_HOW_CORE, 0, caller);
	return 0;
}
