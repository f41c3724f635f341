/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The verdict logic shared by every hook: fold per-policy masks into one
 * verdict, name the deciding rule, count and report. Bounded work only.
 */
#ifndef SENTINEL_DECIDE_BPF_H
#define SENTINEL_DECIDE_BPF_H

#include "maps.bpf.h"

/* Masks gathered for one slot while looking entries up. */
struct sn_masks {
	__u64 undecided; /* applicable policies no entry has decided yet */
	__u64 deny;
	__u64 audit;
};

/* The outcome: which policy decided and how. policy < 0: nothing to report. */
struct sn_verdict {
	int policy;
	__u8 action;
	__u8 blocked;
};

static __always_inline void sn_count(__u32 which)
{
	__u64 *c = bpf_map_lookup_elem(&sn_counters, &which);

	if (c)
		*c += 1;
}

static __always_inline const struct sn_config *sn_current(__u32 *gen)
{
	__u32 zero = 0;
	struct sn_state *st = bpf_map_lookup_elem(&sn_state, &zero);

	if (!st)
		return 0;
	*gen = st->gen & 1;
	return bpf_map_lookup_elem(&sn_config, gen);
}

/* Binary search state for sn_uid_mask; a bpf_loop callback is verified once,
 * where an unrolled search multiplies the verifier's paths. */
struct sn_uid_search {
	__u32 lo;
	__u32 hi;
	__u32 base;
	__u32 uid;
};

static long sn_uid_step(__u32 i, void *ctx)
{
	struct sn_uid_search *s = ctx;
	__u32 mid, idx;
	struct sn_uid_bound *b;

	if (s->hi - s->lo <= 1)
		return 1;
	mid = s->lo + (s->hi - s->lo) / 2;
	idx = s->base + mid;
	b = bpf_map_lookup_elem(&sn_uids, &idx);
	if (b && b->first <= s->uid)
		s->lo = mid;
	else
		s->hi = mid;
	return 0;
}

/* Policies whose uid selector covers UID: the last interval starting at or below it. */
static __always_inline __u64 sn_uid_mask(const struct sn_config *cfg, __u32 gen, __u32 uid)
{
	struct sn_uid_search s = { .lo = 0, .hi = cfg->uid_count, .base = (gen & 1) * SN_MAX_UID_BOUNDS, .uid = uid };
	struct sn_uid_bound *b;
	__u32 idx;

	if (s.hi > SN_MAX_UID_BOUNDS)
		s.hi = SN_MAX_UID_BOUNDS;
	bpf_loop(13, sn_uid_step, &s, 0);  /* 2^13 > SN_MAX_UID_BOUNDS */
	idx = s.base + s.lo;
	b = bpf_map_lookup_elem(&sn_uids, &idx);
	return b ? b->mask : 0;
}

struct sn_cg_walk {
	__u64 mask;
	__u32 gen;
	__u32 _pad;
};

static long sn_cg_step(__u32 level, void *ctx)
{
	struct sn_cg_walk *w = ctx;
	struct sn_cgroup_key key = {};
	__u64 *m;

	key.id = bpf_get_current_ancestor_cgroup_id(level);
	if (!key.id)
		return 1;
	key.gen = w->gen;
	m = bpf_map_lookup_elem(&sn_cgroups, &key);
	if (m)
		w->mask |= *m;
	return 0;
}

/* Policies whose cgroup selector covers the current cgroup or an ancestor. */
static __always_inline __u64 sn_cgroup_mask(__u32 gen)
{
	struct sn_cg_walk w = { .gen = gen };

	bpf_loop(SN_MAX_CG_DEPTH, sn_cg_step, &w, 0);
	return w.mask;
}

/* The daemon itself, by pid and start time (a reused pid is someone else). */
static __always_inline bool sn_is_daemon(const struct sn_config *cfg)
{
	struct task_struct *task;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (!cfg->canary_tgid || tgid != cfg->canary_tgid)
		return false;
	task = bpf_get_current_task_btf();
	/* /proc/PID/stat reports start_boottime / (NSEC_PER_SEC / USER_HZ). */
	return BPF_CORE_READ(task, group_leader, start_boottime) / 10000000ULL == cfg->canary_start_ticks;
}

/*
 * How a hook's entry point may read the kernel objects it was handed, passed
 * as a constant to the always-inline decision functions so that each entry
 * point's copy keeps only its own branch:
 * - SN_HOW_DPATH: BTF-typed pointers, and bpf_d_path is allowed (BPF-LSM,
 *   fmod_ret and fentry on security_file_open);
 * - SN_HOW_BTF: BTF-typed pointers, no bpf_d_path;
 * - SN_HOW_CORE: pointers found by CO-RE reads (the tracepoint programs of
 *   mechanism "tracepoint"): only BPF_CORE_READ on them, paths by dentry walk.
 */
#define SN_HOW_DPATH 0
#define SN_HOW_BTF   1
#define SN_HOW_CORE  2

/*
 * The policies that govern the current process: every loaded policy whose
 * selectors all hold. Each kind of selector costs nothing unless some policy
 * uses it. The daemon is governed by the canary policy only: user policies
 * must not lock it out of its own files nor make its /proc reads alert.
 *
 * EXE_GIVEN: judge `binaries` selectors by EXE_FILE (NULL: unknown, selects
 * no `binaries` policy) instead of the current executable: at
 * sched_process_exec the current executable is already the new program.
 */
static __always_inline __u64 sn_applicable_as(const struct sn_config *cfg, __u32 gen, bool exe_given,
					      struct file *exe_file)
{
	__u64 mask = cfg->active & ~(1ULL << SN_CANARY_POLICY);

	if (sn_is_daemon(cfg))
		return 1ULL << SN_CANARY_POLICY;

	if (cfg->sel_uid)
		mask &= ~cfg->sel_uid | sn_uid_mask(cfg, gen, (__u32)bpf_get_current_uid_gid());
	if (cfg->sel_bin | cfg->sel_notbin_any) {
		struct inode *exe;
		struct sn_file_key key = {};
		struct sn_bin_val *b;

		if (exe_given) {
			exe = BPF_CORE_READ(exe_file, f_inode);
		} else {
			struct task_struct *task = bpf_get_current_task_btf();

			exe = BPF_CORE_READ(task, mm, exe_file, f_inode);
		}
		key.ino = BPF_CORE_READ(exe, i_ino);
		key.dev = BPF_CORE_READ(exe, i_sb, s_dev);
		key.gen = gen;
		b = exe ? bpf_map_lookup_elem(&sn_bins, &key) : 0;
		mask &= ~cfg->sel_bin | (b ? b->in : 0);
		mask &= ~(b ? b->notin : 0);
	}
	if (cfg->sel_cgroup)
		mask &= ~cfg->sel_cgroup | sn_cgroup_mask(gen);
	return mask;
}

static __always_inline __u64 sn_applicable(const struct sn_config *cfg, __u32 gen)
{
	return sn_applicable_as(cfg, gen, false, 0);
}

static __always_inline void sn_apply_defaults(struct sn_masks *m, const struct sn_config *cfg, int slot)
{
	if (slot < 0 || slot >= SN_SLOTS)
		return;
	m->deny |= cfg->default_deny[slot] & m->undecided;
	m->audit |= cfg->default_audit[slot] & m->undecided;
}

static __always_inline int sn_lowest_bit(__u64 x)
{
	int n = 0;

	/* No ctz instruction in BPF: a six-step binary search. */
	if (!(x & 0xffffffffULL)) { n += 32; x >>= 32; }
	if (!(x & 0xffffULL)) { n += 16; x >>= 16; }
	if (!(x & 0xffULL)) { n += 8; x >>= 8; }
	if (!(x & 0xfULL)) { n += 4; x >>= 4; }
	if (!(x & 0x3ULL)) { n += 2; x >>= 2; }
	if (!(x & 0x1ULL)) { n += 1; }
	return n;
}

/*
 * Strictest across policies: a deny by an enforcing policy, then a deny by an
 * audit-mode policy (would_deny), then an audit. Ties: lowest policy index.
 */
static __always_inline struct sn_verdict sn_fold(const struct sn_masks *m, const struct sn_config *cfg)
{
	struct sn_verdict v = { .policy = -1 };
	__u64 enforce_deny = m->deny & ~cfg->audit_mode;
	__u64 would_deny = m->deny & cfg->audit_mode;
	__u64 audit = m->audit & ~m->deny;

	if (enforce_deny) {
		v.policy = sn_lowest_bit(enforce_deny);
		v.action = SN_ACT_DENY;
		v.blocked = 1;
	} else if (would_deny) {
		v.policy = sn_lowest_bit(would_deny);
		v.action = SN_ACT_DENY;
	} else if (audit) {
		v.policy = sn_lowest_bit(audit);
		v.action = SN_ACT_AUDIT;
	}
	return v;
}

static __always_inline __u16 sn_rule_of(const struct sn_file_key *file, int slot, int policy)
{
	struct sn_rule_ref_key key = {};
	struct sn_rule_ref *ref;

	key.file = *file;
	key.slot = slot;
	key.policy = policy;
	ref = bpf_map_lookup_elem(&sn_rule_refs, &key);
	return ref ? (__u16)ref->rule : SN_NO_RULE;
}

/* Process facts captured now: the process may be gone before user space reads. */
static __always_inline void sn_fill_process(struct sn_event *e)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u64 uid_gid = bpf_get_current_uid_gid();

	e->ts_boot_ns = bpf_ktime_get_boot_ns();
	e->pid = pid_tgid >> 32;
	e->tid = (__u32)pid_tgid;
	e->uid = (__u32)uid_gid;
	e->gid = uid_gid >> 32;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->cgroup_id = bpf_get_current_cgroup_id();
	bpf_get_current_comm(e->comm, sizeof(e->comm));
}

/*
 * The current executable's path, for hooks where bpf_d_path is allowed (the
 * sleepable LSM hooks and fmod_ret on security_file_open): captured now, as
 * a short-lived process is gone before user space could read /proc.
 */
static __always_inline void sn_fill_exe(struct sn_event *e)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct mm_struct *mm = task->mm;
	struct file *exe;

	if (!mm)
		return;
	exe = mm->exe_file;
	if (!exe)
		return;
	if (bpf_d_path(&exe->f_path, e->exe, sizeof(e->exe)) < 0)
		e->exe[0] = 0;
}

/*
 * The current executable's path as stored when the process exec'd (see
 * bpf/exe.bpf.c), for hooks where bpf_d_path is not allowed. A process that
 * exec'd before sentinel loaded has none: e->exe stays "" and user space
 * falls back to /proc/PID/exe.
 */
static __always_inline void sn_fill_exe_stored(struct sn_event *e)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct sn_exe_path *p = bpf_task_storage_get(&sn_exe, task->group_leader, 0, 0);

	if (p && bpf_probe_read_kernel(e->exe, sizeof(p->path), p->path) < 0)
		e->exe[0] = 0;
}

/*
 * Reserve an event for verdict V and fill what every operation shares.
 * NULL when the ring buffer is full: counted as lost, the verdict still holds.
 */
/*
 * Flood control: at most cfg->alert_rate alerts per second for one process
 * and rule; the rest are counted, not sent. Returns how many were held back
 * in the window before this one (the first alert of a window carries that
 * summary), or -1 when this alert is to be held back. The verdict itself is
 * never affected: a held-back alert's operation is still denied.
 */
static __always_inline long sn_rate_check(const struct sn_config *cfg, const struct sn_verdict *v, __u32 op, __u16 rule)
{
	struct sn_rate_key key = {};
	struct sn_rate_val *r, fresh = {};
	__u64 now;
	__u32 before;

	if (!cfg->alert_rate || v->policy == SN_CANARY_POLICY)
		return 0;
	key.tgid = bpf_get_current_pid_tgid() >> 32;
	key.policy = v->policy;
	key.rule = rule;
	key.op = op;
	now = bpf_ktime_get_boot_ns();
	r = bpf_map_lookup_elem(&sn_rate, &key);
	if (!r) {
		fresh.window_start_ns = now;
		fresh.sent = 1;
		bpf_map_update_elem(&sn_rate, &key, &fresh, BPF_ANY);
		return 0;
	}
	if (now - r->window_start_ns >= SN_RATE_WINDOW_NS) {
		/* Racing CPUs may both start the window: a few extra alerts, never a lost count. */
		before = r->suppressed;
		__sync_fetch_and_add(&r->suppressed, -before);  /* keeps increments made meanwhile */
		r->window_start_ns = now;
		r->sent = 1;
		return before;
	}
	if (r->sent >= cfg->alert_rate) {
		__sync_fetch_and_add(&r->suppressed, 1);
		sn_count(SN_CNT_SUPPRESSED);
		return -1;
	}
	r->sent += 1;
	return 0;
}

static __always_inline struct sn_event *sn_event_start(const struct sn_config *cfg, const struct sn_verdict *v,
						       __u32 op, __u16 rule, __u32 gen)
{
	long held_back = sn_rate_check(cfg, v, op, rule);
	struct sn_event *e;

	if (held_back < 0)
		return 0;
	e = bpf_ringbuf_reserve(&sn_events, sizeof(*e), 0);
	if (!e) {
		sn_count(SN_CNT_RINGBUF_FULL);
		return 0;
	}
	e->kind = v->policy == SN_CANARY_POLICY ? SN_EV_CANARY : SN_EV_ALERT;
	e->op = op;
	e->action = v->action;
	e->blocked = v->blocked;
	e->policy = v->policy;
	e->rule = rule;
	e->gen = gen;
	e->access = 0;
	e->dev = 0;
	e->ino = 0;
	e->family = 0;
	e->protocol = 0;
	e->dport = 0;
	e->suppressed = held_back;
	__builtin_memset(e->daddr, 0, sizeof(e->daddr));
	e->via = SN_VIA_OPEN;
	e->_pad = 0;
	e->path[0] = 0;
	e->exe[0] = 0;
	sn_fill_process(e);
	return e;
}

#endif /* SENTINEL_DECIDE_BPF_H */
