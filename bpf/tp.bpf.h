/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Mechanism "tracepoint": what the classic tracepoint programs share. They
 * see the raw records of syscall and sched tracepoints (layouts below, as in
 * /sys/kernel/tracing/events/.../format, stable since long before 6.1) and no
 * BTF-typed kernel pointers: every kernel read is CO-RE.
 */
#ifndef SENTINEL_TP_BPF_H
#define SENTINEL_TP_BPF_H

#include "decide.bpf.h"

/* syscalls/sys_enter_*: 8 bytes of common fields, the syscall number, then
 * each argument as 8 bytes. */
struct sn_tp_sys_enter {
	__u64 common;
	long id;
	unsigned long args[6];
};

/* syscalls/sys_exit_* */
struct sn_tp_sys_exit {
	__u64 common;
	long id;
	long ret;
};

/* sched/sched_process_exec */
struct sn_tp_exec {
	__u64 common;
	__u32 filename_loc;  /* __data_loc char[] */
	int pid;
	int old_pid;         /* the thread id before exec (a non-leader thread becomes the leader) */
};

/* The struct file the current process's fd FD names, or NULL. */
static __always_inline struct file *sn_tp_fd_file(long fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds;
	struct file *file = 0;

	if (!fdt || fd < 0 || fd >= BPF_CORE_READ(fdt, max_fds))
		return 0;
	fds = BPF_CORE_READ(fdt, fd);
	if (bpf_core_read(&file, sizeof(file), &fds[fd]))
		return 0;
	return file;
}

#endif /* SENTINEL_TP_BPF_H */
