/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Paths for alerts where bpf_d_path is not allowed (the tracepoint programs
 * of mechanism "tracepoint"): a bounded walk up the dentry tree, crossing
 * mounts exactly as the judging walk does (sn_climb), copying each d_name
 * backwards into a per-CPU scratch buffer, then the result into the event.
 *
 * Bounds: the path must fit SN_PATH_LEN (4096) bytes, NUL included, as
 * bpf_d_path's must; a longer one, or a name longer than NAME_MAX, gives ""
 * (user space then reports the path as unknown). SN_PATH_STEPS bounds the
 * steps: every path that fits has fewer than SN_PATH_LEN / 2 components, and
 * the rest of the steps leave room for mount crossings. The path is relative
 * to the global root of the mount namespace (bpf_d_path's is relative to the
 * process's root, which differs inside a chroot), and a deleted file keeps
 * its last name without " (deleted)".
 *
 * Tracepoint programs run with preemption disabled and never nest on one CPU
 * (the kernel skips a tracing program while another runs there), so one
 * scratch buffer per CPU is enough.
 */
#ifndef SENTINEL_PATH_BPF_H
#define SENTINEL_PATH_BPF_H

#include "file.bpf.h"

#define SN_PATH_STEPS 4096

struct sn_path_walk {
	__u64 dentry;
	__u64 mnt;
	__u64 root;
	__u32 pos;   /* the path built so far is buf[pos .. SN_PATH_LEN - 1], NUL last */
	__u32 done;  /* 1: reached the global root; 2: too long, no path */
};

static long sn_path_step(__u32 i, void *ctx)
{
	struct sn_path_walk *p = ctx;
	struct sn_path_scratch *s;
	struct dentry *d = (struct dentry *)p->dentry;
	const unsigned char *name;
	__u32 zero = 0, len, pos;
	int moved;

	moved = sn_climb(&p->dentry, &p->mnt, &p->root);
	if (moved == 2) {
		p->done = 1;
		return 1;
	}
	if (moved == 1)
		return 0;
	/* Moved up from d: its name goes in front of what is there. */
	len = BPF_CORE_READ(d, d_name.len);
	name = BPF_CORE_READ(d, d_name.name);
	pos = p->pos;
	s = bpf_map_lookup_elem(&sn_path_buf, &zero);
	if (!s || len > SN_NAME_MAX || len + 1 > pos || pos >= SN_PATH_LEN) {
		p->done = 2;
		return 1;
	}
	pos -= len;
	bpf_probe_read_kernel(&s->buf[pos & (SN_PATH_LEN - 1)], len & SN_NAME_MAX, name);
	pos -= 1;
	s->buf[pos & (SN_PATH_LEN - 1)] = '/';
	p->pos = pos;
	return 0;
}

/* Write the path of (DENTRY, VFSMNT) into DST (SN_PATH_LEN bytes); "" when it
 * cannot be built within the bounds above. */
static __always_inline void sn_build_path(char *dst, struct dentry *dentry, struct vfsmount *vfsmnt)
{
	struct sn_path_walk p = {};
	struct sn_path_scratch *s;
	__u32 zero = 0, pos;

	dst[0] = 0;
	s = bpf_map_lookup_elem(&sn_path_buf, &zero);
	if (!s || !dentry || !vfsmnt)
		return;
	s->buf[SN_PATH_LEN - 1] = 0;
	p.dentry = (__u64)dentry;
	p.mnt = (__u64)sn_real_mount((__u64)vfsmnt);
	p.root = (__u64)BPF_CORE_READ(vfsmnt, mnt_root);
	p.pos = SN_PATH_LEN - 1;
	bpf_loop(SN_PATH_STEPS, sn_path_step, &p, 0);
	if (p.done != 1)
		return;
	pos = p.pos;
	if (pos == SN_PATH_LEN - 1) {  /* the root itself */
		pos -= 1;
		s->buf[pos] = '/';
	}
	bpf_probe_read_kernel_str(dst, SN_PATH_LEN, &s->buf[pos & (SN_PATH_LEN - 1)]);
}

/* The path of FILE's f_path (a pointer read with CO-RE, not BTF-typed). */
static __always_inline void sn_build_file_path(char *dst, struct file *file)
{
	struct dentry *dentry = BPF_CORE_READ(file, f_path.dentry);
	struct vfsmount *mnt = BPF_CORE_READ(file, f_path.mnt);

	sn_build_path(dst, dentry, mnt);
}

/* The current process's executable, for tracepoint alerts (no bpf_d_path,
 * and sn_exe is filled only by the hooks of the other mechanisms). */
static __always_inline void sn_fill_exe_walk(struct sn_event *e)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct file *exe = BPF_CORE_READ(task, mm, exe_file);

	if (exe)
		sn_build_file_path(e->exe, exe);
	else
		e->exe[0] = 0;
}

#endif /* SENTINEL_PATH_BPF_H */
