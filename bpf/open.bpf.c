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
#include "path.bpf.h"
#include "tp.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/* OPEN_FLAGS: flags the open asked for that f_flags no longer shows (the
 * tracepoint programs judge after the open, which clears O_TRUNC). */
static __always_inline __u32 sn_open_access(struct file *file, int how, __u32 open_flags)
{
	fmode_t mode = sn_f_mode(file, how);
	__u32 acc = 0;

	if (mode & FMODE_READ)
		acc |= SN_ACC_READ;
	/* O_TRUNC changes content even on a read-only open. */
	if ((mode & FMODE_WRITE) || ((sn_f_flags(file, how) | open_flags) & O_TRUNC))
		acc |= SN_ACC_WRITE;
	return acc;
}

/* While the daemon resolves rule paths, record what this hook sees for its
 * opens: stat() can disagree with the kernel (overlayfs, btrfs, 9p). */
static __always_inline bool sn_probe_open(struct file *file, int how)
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
		p->ino[i] = sn_f_ino(file, how);
		p->dev[i] = sn_f_dev(file, how);
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

/*
 * The decision on an open of FILE, for every mechanism. HOW says how FILE
 * may be read (SN_HOW_DPATH for the hooks, SN_HOW_CORE for the tracepoint
 * programs, which judge after the open returned an fd); OPEN_FLAGS as in
 * sn_open_access.
 */
static __always_inline int sn_decide_open_as(struct file *file, int how, __u32 open_flags)
{
	struct sn_walk w = {};
	const struct sn_config *cfg;
	struct sn_verdict v;
	struct sn_event *e;
	__u64 applicable;
	__u32 gen = 0, acc;
	__u16 rule = SN_NO_RULE;
	int slot;

	if (how != SN_HOW_CORE && ((file->f_mode & FMODE_EXEC) || (file->f_flags & __FMODE_EXEC))) {
		sn_note_exec_open(file);
		return 0;
	}
	if (sn_probe_open(file, how))
		return 0;
	cfg = sn_current(&gen);
	if (!cfg || !cfg->active)
		return 0;
	applicable = sn_applicable(cfg, gen);
	if (!applicable)
		return 0;
	sn_count(SN_CNT_DECIDED);

	acc = sn_open_access(file, how, open_flags);
	if (acc & SN_ACC_READ)
		w.slots |= 1U << SN_SLOT_READ;
	if (acc & SN_ACC_WRITE)
		w.slots |= 1U << SN_SLOT_WRITE;
	sn_judge_file(&w, cfg, gen, sn_f_dentry(file, how), sn_f_mnt(file, how), applicable);
	v = sn_fold_file(&w, cfg, &slot);
	if (v.policy < 0)
		return 0;
	if (v.blocked)
		sn_count(SN_CNT_DENIED);

	if (v.policy != SN_CANARY_POLICY)
		rule = sn_find_rule(&w, gen, sn_f_dentry(file, how), sn_f_mnt(file, how), slot, v.policy);
	e = sn_event_start(cfg, &v, SN_OP_OPEN, rule, gen);
	if (e) {
		e->access = acc;
		e->dev = sn_f_dev(file, how);
		e->ino = sn_f_ino(file, how);
		if (how == SN_HOW_CORE) {
			sn_build_file_path(e->path, file);
			sn_fill_exe_walk(e);
		} else {
			if (bpf_d_path(&file->f_path, e->path, sizeof(e->path)) < 0)
				e->path[0] = 0;
			sn_fill_exe(e);
		}
		bpf_ringbuf_submit(e, 0);
	}
	return v.blocked ? -EPERM : 0;
}

static __always_inline int sn_decide_open(struct file *file)
{
	return sn_decide_open_as(file, SN_HOW_DPATH, 0);
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

/*
 * Mechanism "tracepoint" (audit only, where none of the above loads): the
 * open is judged after it succeeded, on the struct file its fd now names.
 * sys_enter notes O_TRUNC, which the open clears from f_flags.
 */
static __always_inline void sn_tp_open_enter(__u64 flags)
{
	__u64 id;
	__u32 f;

	if (!(flags & O_TRUNC))
		return;
	id = bpf_get_current_pid_tgid();
	f = O_TRUNC;
	bpf_map_update_elem(&sn_tp_open, &id, &f, BPF_ANY);
}

static __always_inline void sn_tp_open_exit(long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 *noted = bpf_map_lookup_elem(&sn_tp_open, &id);
	__u32 flags = 0;
	struct file *file;

	if (noted) {
		flags = *noted;
		bpf_map_delete_elem(&sn_tp_open, &id);
	}
	if (ret < 0)
		return;
	file = sn_tp_fd_file(ret);
	if (!file || (BPF_CORE_READ(file, f_mode) & FMODE_PATH))
		return;
	sn_decide_open_as(file, SN_HOW_CORE, flags);
}

SEC("tracepoint/syscalls/sys_enter_openat")
int tp_enter_openat(struct sn_tp_sys_enter *ctx)
{
	sn_tp_open_enter(ctx->args[2]);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_open")
int tp_enter_open(struct sn_tp_sys_enter *ctx)
{
	sn_tp_open_enter(ctx->args[1]);
	return 0;
}

/* openat2(dfd, filename, struct open_how *how, size): flags are how->flags. */
SEC("tracepoint/syscalls/sys_enter_openat2")
int tp_enter_openat2(struct sn_tp_sys_enter *ctx)
{
	__u64 flags = 0;

	if (bpf_probe_read_user(&flags, sizeof(flags), (void *)ctx->args[2]) == 0)
		sn_tp_open_enter(flags);
	return 0;
}

/* creat(2) is open(O_CREAT | O_WRONLY | O_TRUNC): a write by f_mode already. */

SEC("tracepoint/syscalls/sys_exit_openat")
int tp_exit_openat(struct sn_tp_sys_exit *ctx)
{
	sn_tp_open_exit(ctx->ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_open")
int tp_exit_open(struct sn_tp_sys_exit *ctx)
{
	sn_tp_open_exit(ctx->ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_openat2")
int tp_exit_openat2(struct sn_tp_sys_exit *ctx)
{
	sn_tp_open_exit(ctx->ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_creat")
int tp_exit_creat(struct sn_tp_sys_exit *ctx)
{
	sn_tp_open_exit(ctx->ret);
	return 0;
}
