// SPDX-License-Identifier: GPL-2.0
/*
 * mmap: mapping a file executable is executing it. `ld.so /path/prog` and
 * dlopen() never execve the file, they mmap it with PROT_EXEC (or mprotect a
 * mapping to PROT_EXEC): exec rules are judged here too, on the same entries
 * as bprm_check, with `file.via: mmap` in the alert.
 *
 * Every dynamically linked process maps ld.so, libc and each library with
 * PROT_EXEC, and maps far more without it: a mapping without PROT_EXEC, an
 * anonymous one, and one exec itself makes return before any map lookup.
 * Policy defaults do not apply here (an allow-list's `defaults: exec: deny`
 * would otherwise deny libc to every program): only a rule that names the
 * file, or `fileless`, decides a mapping.
 */
#include "kernel_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "path.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/* Built with -DSN_NO_MMAP the entry points return at once: `scripts/bench
 * --ablate SN_NO_MMAP` measures what judging mappings costs a process start. */
#ifdef SN_NO_MMAP
#define SN_MMAP_ON 0
#else
#define SN_MMAP_ON 1
#endif

/*
 * Mappings made by exec itself (the program and its ELF interpreter, mapped
 * after begin_new_exec): a deny there is a SIGSEGV, not an EPERM. The exec'd
 * program was judged by bprm_check; its mappings are left alone, during the
 * exec (in_execve, set by bprm_execve) and after it (mm->exe_file).
 */
static __always_inline bool sn_exec_mapping(struct file *file)
{
	struct task_struct *task = bpf_get_current_task_btf();

	if (BPF_CORE_READ_BITFIELD_PROBED(task, in_execve))
		return true;
	return file == BPF_CORE_READ(task, mm, exe_file);
}

/* The protection mmap will apply: security_mmap_file's mmap_prot() adds
 * PROT_EXEC to a PROT_READ request under READ_IMPLIES_EXEC (personality(2))
 * unless the mount is noexec. The LSM hook is handed that result; the
 * fmod_ret program sees security_mmap_file's own argument, the request. */
static __always_inline unsigned long sn_mmap_prot(struct file *file, unsigned long prot)
{
	struct task_struct *task;
	struct vfsmount *mnt;

	if ((prot & (PROT_READ | PROT_EXEC)) != PROT_READ)
		return prot;
	task = bpf_get_current_task_btf();
	if (!(BPF_CORE_READ(task, personality) & READ_IMPLIES_EXEC))
		return prot;
	mnt = file->f_path.mnt;
	if ((BPF_CORE_READ(mnt, mnt_flags) & MNT_NOEXEC) || (BPF_CORE_READ(mnt, mnt_sb, s_iflags) & SB_I_NOEXEC))
		return prot;
	return prot | PROT_EXEC;
}

/* The decision on mapping FILE executable. HOW: SN_HOW_DPATH (lsm mmap_file)
 * or SN_HOW_BTF (file_mprotect, fmod_ret: the alert's path by dentry walk). */
static __always_inline int sn_decide_mmap(struct file *file, int how)
{
	struct sn_walk w = {};
	const struct sn_config *cfg;
	struct sn_verdict v;
	struct sn_event *e;
	struct dentry *dentry;
	struct vfsmount *mnt;
	__u64 applicable;
	__u32 gen = 0;
	__u16 rule;
	bool fileless;
	int slot;

	cfg = sn_current(&gen);
	if (!cfg || !cfg->active)
		return 0;
	applicable = sn_applicable(cfg, gen);
	if (!applicable)
		return 0;
	dentry = sn_f_dentry(file, how);
	mnt = sn_f_mnt(file, how);
	fileless = (cfg->fileless_match & applicable) && sn_is_fileless(dentry);
	w.slots = 1U << SN_SLOT_EXEC;
	sn_judge_file_as(&w, cfg, gen, dentry, mnt, applicable, fileless, true);
	v = sn_fold_file(&w, cfg, &slot);
	if (v.policy < 0)
		return 0;
	sn_count(SN_CNT_DECIDED);
	if (v.blocked)
		sn_count(SN_CNT_DENIED);

	rule = sn_find_rule_as(&w, cfg, gen, dentry, mnt, slot, v.policy, fileless);
	e = sn_event_start(cfg, &v, SN_OP_EXEC, rule, gen);
	if (e) {
		e->via = SN_VIA_MMAP;
		e->dev = sn_f_dev(file, how);
		e->ino = sn_f_ino(file, how);
		if (how == SN_HOW_DPATH) {
			if (bpf_d_path(&file->f_path, e->path, sizeof(e->path)) < 0)
				e->path[0] = 0;
			sn_fill_exe(e);
		} else {
			sn_build_path(e->path, dentry, mnt);
			sn_fill_exe_stored(e);
		}
		bpf_ringbuf_submit(e, 0);
	}
	return v.blocked ? -EPERM : 0;
}

/* prot is what mmap will apply (mmap_prot() of the request): decide on it. */
SEC("lsm/mmap_file")
int BPF_PROG(lsm_mmap_file, struct file *file, unsigned long reqprot, unsigned long prot, unsigned long flags,
	     int ret)
{
	if (ret)
		return ret;
	if (!SN_MMAP_ON)
		return 0;
	if (!(prot & PROT_EXEC) || !file || sn_exec_mapping(file))
		return 0;
	return sn_decide_mmap(file, SN_HOW_DPATH);
}

/* bpf_d_path is allowed neither on security_mmap_file nor on file_mprotect. */
SEC("fmod_ret/security_mmap_file")
int BPF_PROG(fmodret_mmap_file, struct file *file, unsigned long prot, unsigned long flags, int ret)
{
	if (ret)
		return ret;
	if (!SN_MMAP_ON)
		return 0;
	if (!file || !(sn_mmap_prot(file, prot) & PROT_EXEC) || sn_exec_mapping(file))
		return 0;
	return sn_decide_mmap(file, SN_HOW_BTF);
}

/* Called per VMA with the protection to apply (READ_IMPLIES_EXEC included);
 * vm_file is NULL for anonymous and JIT memory. */
static __always_inline int sn_decide_mprotect(struct vm_area_struct *vma, unsigned long prot)
{
	struct file *file;

	if (!SN_MMAP_ON || !(prot & PROT_EXEC))
		return 0;
	file = vma->vm_file;
	if (!file)
		return 0;
	return sn_decide_mmap(file, SN_HOW_BTF);
}

SEC("lsm/file_mprotect")
int BPF_PROG(lsm_file_mprotect, struct vm_area_struct *vma, unsigned long reqprot, unsigned long prot, int ret)
{
	if (ret)
		return ret;
	return sn_decide_mprotect(vma, prot);
}

SEC("fmod_ret/security_file_mprotect")
int BPF_PROG(fmodret_file_mprotect, struct vm_area_struct *vma, unsigned long reqprot, unsigned long prot,
	     int ret)
{
	if (ret)
		return ret;
	return sn_decide_mprotect(vma, prot);
}
