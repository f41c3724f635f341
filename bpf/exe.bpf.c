// SPDX-License-Identifier: GPL-2.0
/*
 * exe: keep each process's executable path in the kernel (sn_exe), for the
 * alerts of hooks that cannot call bpf_d_path (connect; exec under fmod_ret
 * and trace; name changes). /proc/PID/exe is gone once a short-lived process
 * exits, often before user space reads the alert.
 *
 * - The open hook (bpf/open.bpf.c) notes the path of each of exec's own
 *   opens in sn_exec_open, keyed by the struct file.
 * - When an exec commits, bprm->file is the file that becomes mm->exe_file
 *   (for a #! script: its interpreter): its entry moves into sn_exe on the
 *   task, which by then leads its thread group (de_thread ran).
 * - A fork copies the parent's entry; a thread shares its leader's.
 *
 * Processes that exec'd before sentinel loaded have no entry (user space
 * reads /proc for them). The entry is the path at exec time: a later rename
 * does not change it.
 */
#include "kernel_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "decide.bpf.h"

char LICENSE[] SEC("license") = "GPL";

static __always_inline void sn_exe_commit(struct linux_binprm *bprm)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u64 key = (__u64)bprm->file;
	struct sn_exe_path *src, *dst;

	src = bpf_map_lookup_elem(&sn_exec_open, &key);
	if (!src) {
		/* Opened before sentinel loaded, evicted, or too long a path:
		 * the entry from before this exec would name the wrong file. */
		bpf_task_storage_delete(&sn_exe, task);
		return;
	}
	dst = bpf_task_storage_get(&sn_exe, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (dst && bpf_probe_read_kernel(dst->path, sizeof(dst->path), src->path) < 0)
		bpf_task_storage_delete(&sn_exe, task);
	bpf_map_delete_elem(&sn_exec_open, &key);
}

static __always_inline void sn_exe_inherit(struct task_struct *child, unsigned long clone_flags)
{
	struct task_struct *task;
	struct sn_exe_path *parent;

	if (clone_flags & CLONE_THREAD)
		return;  /* threads read their leader's entry */
	task = bpf_get_current_task_btf();
	parent = bpf_task_storage_get(&sn_exe, task->group_leader, 0, 0);
	if (parent)  /* created with the parent's value as its initial value */
		bpf_task_storage_get(&sn_exe, child, parent, BPF_LOCAL_STORAGE_GET_F_CREATE);
}

SEC("lsm/bprm_committed_creds")
int BPF_PROG(lsm_exe_commit, struct linux_binprm *bprm)
{
	sn_exe_commit(bprm);
	return 0;
}

SEC("lsm/task_alloc")
int BPF_PROG(lsm_exe_fork, struct task_struct *task, unsigned long clone_flags, int ret)
{
	if (ret)
		return ret;
	sn_exe_inherit(task, clone_flags);
	return 0;
}

/* fmod_ret and trace: observing is enough here, nothing is decided. */
SEC("fentry/security_bprm_committed_creds")
int BPF_PROG(fentry_exe_commit, struct linux_binprm *bprm)
{
	sn_exe_commit(bprm);
	return 0;
}

SEC("fentry/security_task_alloc")
int BPF_PROG(fentry_exe_fork, struct task_struct *task, unsigned long clone_flags)
{
	sn_exe_inherit(task, clone_flags);
	return 0;
}
