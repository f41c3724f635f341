// SPDX-License-Identifier: GPL-2.0
/*
 * guard: sentinel protects itself while its daemon runs.
 *
 * Other processes, root included, are denied what would switch enforcement
 * off or change it: a writable fd on an sn_* map (every map write needs
 * one), removing, renaming or replacing sentinel's pins (the last reference
 * to a link is what keeps a program attached once the daemon is gone),
 * unmounting the bpffs that holds them, and ptrace of the daemon (which
 * covers /proc/PID/mem, process_vm_writev and pidfd_getfd too). Read-only
 * map fds stay allowed so `sentinel status` and bpftool can look.
 *
 * The guard holds only while sn_guard.expires_ns lies ahead: the daemon
 * renews it every second and clears it when it stops, and the kernel clears
 * it when the daemon's last thread exits (kill -9 included), so `sentinel
 * unload` after a stop, and a restarted daemon after a crash, take over at
 * once. The lease's time limit remains the backstop.
 */
#include "kernel_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "decide.bpf.h"

char LICENSE[] SEC("license") = "GPL";

static __always_inline bool sn_same_process(struct task_struct *task, __u32 tgid, __u64 ticks)
{
	return BPF_CORE_READ(task, tgid) == tgid &&
	       BPF_CORE_READ(task, group_leader, start_boottime) / 10000000ULL == ticks;
}

/* The guard in force, or 0 when it has lapsed or the caller is its owner. */
static __always_inline const struct sn_guard *sn_guard_against_current(void)
{
	__u32 zero = 0;
	const struct sn_guard *g = bpf_map_lookup_elem(&sn_guard, &zero);

	if (!g || bpf_ktime_get_boot_ns() >= g->expires_ns)
		return 0;
	if (sn_same_process(bpf_get_current_task_btf(), g->owner_tgid, g->owner_ticks))
		return 0;
	return g;
}

static __always_inline int sn_tamper(void)
{
	sn_count(SN_CNT_TAMPER);
	return -EPERM;
}

static __always_inline int sn_guard_map(struct bpf_map *map, fmode_t fmode)
{
	char name[4] = {};

	if (!(fmode & FMODE_WRITE) || !sn_guard_against_current())
		return 0;
	bpf_probe_read_kernel(name, 3, map->name);
	if (name[0] == 's' && name[1] == 'n' && name[2] == '_')
		return sn_tamper();
	return 0;
}

/* Is DIR one of sentinel's pin directories? */
static __always_inline bool sn_pin_dir(const struct sn_guard *g, struct inode *dir)
{
	__u64 ino;

	if (!dir || BPF_CORE_READ(dir, i_sb, s_dev) != g->pin_dev)
		return false;
	ino = BPF_CORE_READ(dir, i_ino);
	return ino == g->pin_dirs[0] || ino == g->pin_dirs[1] || ino == g->pin_dirs[2];
}

/* Unlink or rmdir of NAME in DIR; rmdir of a pin directory itself too. */
static __always_inline int sn_guard_remove(struct inode *dir, struct dentry *dentry)
{
	const struct sn_guard *g = sn_guard_against_current();

	if (!g)
		return 0;
	if (sn_pin_dir(g, dir) || sn_pin_dir(g, BPF_CORE_READ(dentry, d_inode)))
		return sn_tamper();
	return 0;
}

static __always_inline int sn_guard_rename(struct inode *old_dir, struct dentry *old_dentry,
					   struct inode *new_dir)
{
	const struct sn_guard *g = sn_guard_against_current();

	if (!g)
		return 0;
	if (sn_pin_dir(g, old_dir) || sn_pin_dir(g, new_dir) ||
	    sn_pin_dir(g, BPF_CORE_READ(old_dentry, d_inode)))
		return sn_tamper();
	return 0;
}

static __always_inline int sn_guard_umount(struct vfsmount *mnt)
{
	const struct sn_guard *g = sn_guard_against_current();

	if (g && BPF_CORE_READ(mnt, mnt_sb, s_dev) == g->pin_dev)
		return sn_tamper();
	return 0;
}

static __always_inline int sn_guard_ptrace(struct task_struct *child, unsigned int mode)
{
	const struct sn_guard *g;

	if (!(mode & PTRACE_MODE_ATTACH))
		return 0;
	g = sn_guard_against_current();
	if (g && sn_same_process(child, g->owner_tgid, g->owner_ticks))
		return sn_tamper();
	return 0;
}

SEC("lsm/bpf_map")
int BPF_PROG(lsm_guard_map, struct bpf_map *map, fmode_t fmode, int ret)
{
	return ret ? ret : sn_guard_map(map, fmode);
}

SEC("lsm/inode_unlink")
int BPF_PROG(lsm_guard_unlink, struct inode *dir, struct dentry *dentry, int ret)
{
	return ret ? ret : sn_guard_remove(dir, dentry);
}

SEC("lsm/inode_rmdir")
int BPF_PROG(lsm_guard_rmdir, struct inode *dir, struct dentry *dentry, int ret)
{
	return ret ? ret : sn_guard_remove(dir, dentry);
}

SEC("lsm/inode_rename")
int BPF_PROG(lsm_guard_rename, struct inode *old_dir, struct dentry *old_dentry,
	     struct inode *new_dir, struct dentry *new_dentry, int ret)
{
	return ret ? ret : sn_guard_rename(old_dir, old_dentry, new_dir);
}

SEC("lsm/sb_umount")
int BPF_PROG(lsm_guard_umount, struct vfsmount *mnt, int flags, int ret)
{
	return ret ? ret : sn_guard_umount(mnt);
}

SEC("lsm/ptrace_access_check")
int BPF_PROG(lsm_guard_ptrace, struct task_struct *child, unsigned int mode, int ret)
{
	return ret ? ret : sn_guard_ptrace(child, mode);
}

SEC("fmod_ret/security_bpf_map")
int BPF_PROG(fmodret_guard_map, struct bpf_map *map, fmode_t fmode, int ret)
{
	return ret ? ret : sn_guard_map(map, fmode);
}

SEC("fmod_ret/security_inode_unlink")
int BPF_PROG(fmodret_guard_unlink, struct inode *dir, struct dentry *dentry, int ret)
{
	return ret ? ret : sn_guard_remove(dir, dentry);
}

SEC("fmod_ret/security_inode_rmdir")
int BPF_PROG(fmodret_guard_rmdir, struct inode *dir, struct dentry *dentry, int ret)
{
	return ret ? ret : sn_guard_remove(dir, dentry);
}

SEC("fmod_ret/security_inode_rename")
int BPF_PROG(fmodret_guard_rename, struct inode *old_dir, struct dentry *old_dentry,
	     struct inode *new_dir, struct dentry *new_dentry, unsigned int flags, int ret)
{
	return ret ? ret : sn_guard_rename(old_dir, old_dentry, new_dir);
}

SEC("fmod_ret/security_sb_umount")
int BPF_PROG(fmodret_guard_umount, struct vfsmount *mnt, int flags, int ret)
{
	return ret ? ret : sn_guard_umount(mnt);
}

SEC("fmod_ret/security_ptrace_access_check")
int BPF_PROG(fmodret_guard_ptrace, struct task_struct *child, unsigned int mode, int ret)
{
	return ret ? ret : sn_guard_ptrace(child, mode);
}

/*
 * The lease ends with its owner. sched_process_exit fires in do_exit after
 * the thread has left signal->live, so the last thread of the owning process
 * sees 0 there; any other thread (an output worker ending) leaves the lease.
 * It decides nothing, so one tracing program serves both enforcing mechanisms.
 */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(tp_guard_exit, struct task_struct *task)
{
	__u32 zero = 0;
	struct sn_guard *g = bpf_map_lookup_elem(&sn_guard, &zero);

	if (!g || !g->expires_ns || !sn_same_process(task, g->owner_tgid, g->owner_ticks))
		return 0;
	if (BPF_CORE_READ(task, signal, live.counter) == 0)
		g->expires_ns = 0;
	return 0;
}
