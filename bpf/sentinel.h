/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Every struct, enum and constant that both the BPF programs and user space
 * see. sentinel/kernel/abi.py mirrors this file field by field, and
 * tests/abi/test_layout.py checks the two against the compiled object's BTF.
 * Rules: fixed-width types, fixed arrays with *_LEN macros, explicit _pad
 * fields so there are no holes, no pointers, no vmlinux.h.
 */
#ifndef SENTINEL_H
#define SENTINEL_H

#define SN_MAX_POLICIES   64       /* per-policy verdicts are bits of a __u64 */
#define SN_CANARY_POLICY  63       /* bit reserved for the daemon's self-check */
#define SN_NO_RULE        0xFFFF   /* the policy's default decided */
#define SN_SLOTS          4        /* exec, read, write, connect */
#define SN_COMM_LEN       16
#define SN_PATH_LEN       4096     /* PATH_MAX: d_path output, NUL included */
#define SN_MAX_FILES      262144   /* sn_files entries, both generations together */
#define SN_MAX_RULE_REFS  524288   /* sn_rule_refs entries */
#define SN_RINGBUF_BYTES  (16 * 1024 * 1024)
#define SN_MAX_NETS       524288   /* sn_net4 / sn_net6 entries, both generations together */
#define SN_PORTS          65536
#define SN_MAX_UID_BOUNDS 4096     /* sn_uids entries per generation */
#define SN_MAX_CG_DEPTH   16       /* cgroup ancestors looked up for cgroup selectors */
#define SN_MAX_SELECTORS  65536    /* sn_bins / sn_cgroups entries, both generations */
#define SN_SUBTREE_DEVS   8        /* devices with subtree rules the walk can tell apart (more: none skipped) */
#define SN_MAX_DEPTH      64       /* directories walked above an object; past it, subtree deny rules fail closed */
#define SN_EXE_LEN        3968     /* a stored executable path: with the kernel's local-storage header, one 4 KiB allocation */
#define SN_EXEC_OPENS     1024     /* sn_exec_open entries: exec opens waiting for their exec to commit */

enum sn_slot {
	SN_SLOT_EXEC = 0,
	SN_SLOT_READ = 1,
	SN_SLOT_WRITE = 2,
	SN_SLOT_CONNECT = 3,
};

enum sn_op {
	SN_OP_EXEC = 0,
	SN_OP_OPEN = 1,
	SN_OP_CONNECT = 2,
};

/* Numeric order is strictness, as in sentinel/compiler/ir.py Action. */
enum sn_action {
	SN_ACT_NONE = 0,
	SN_ACT_ALLOW = 1,
	SN_ACT_AUDIT = 2,
	SN_ACT_DENY = 3,
};

enum sn_path_kind {
	SN_KIND_EXACT = 0,   /* the object itself */
	SN_KIND_SUBTREE = 1, /* everything strictly below this directory */
	SN_KIND_GUARD = 2,   /* a directory on the way to a deny rule's object: renaming or removing it is a write */
};

/* How an open- or exec-operation alert reached the object (sn_event.via). */
enum sn_via {
	SN_VIA_OPEN = 0,
	SN_VIA_TRUNCATE = 1,  /* truncate(2), ftruncate(2) */
	SN_VIA_RENAME = 2,    /* renamed away, or another object renamed over it */
	SN_VIA_LINK = 3,      /* a hard link to it made */
	SN_VIA_UNLINK = 4,    /* unlink(2) */
	SN_VIA_RMDIR = 5,     /* rmdir(2) */
	SN_VIA_MMAP = 6,      /* exec: mapped executable (mmap, mprotect with PROT_EXEC) */
};

enum sn_access {
	SN_ACC_READ = 1,
	SN_ACC_WRITE = 2,
};

enum sn_event_kind {
	SN_EV_ALERT = 0,
	SN_EV_CANARY = 1,    /* the self-check's own denial */
};

enum sn_counter {
	SN_CNT_RINGBUF_FULL = 0, /* alerts that could not be reserved: lost */
	SN_CNT_DECIDED = 1,      /* operations judged while policies were active */
	SN_CNT_DENIED = 2,       /* operations failed with EPERM */
	SN_CNT_DEPTH_CUT = 3,    /* path walks that hit SN_MAX_DEPTH (failed closed) */
	SN_CNT_TAMPER = 4,       /* attempts on sentinel's own maps, pins or daemon, denied */
	SN_CNT_SUPPRESSED = 5,   /* alerts held back by the per-process, per-rule rate limit */
	SN_CNT_MAX = 8,
};

/* sn_files key: a file-system object by identity, in one policy generation. */
struct sn_file_key {
	__u64 ino;
	__u32 dev;      /* the kernel's s_dev: major << 20 | minor */
	__u8 kind;      /* enum sn_path_kind */
	__u8 gen;       /* policy generation (0 or 1) the entry belongs to */
	__u16 _pad;
};

/*
 * sn_files value: per slot, which policies have a most-specific rule here
 * (match) and what it says. allow = match & ~deny & ~audit.
 */
struct sn_file_val {
	__u64 match[SN_SLOTS];
	__u64 deny[SN_SLOTS];
	__u64 audit[SN_SLOTS];
};

/* sn_rule_refs: which rule of a policy decided at an entry (alert path only). */
struct sn_rule_ref_key {
	struct sn_file_key file;
	__u8 slot;
	__u8 policy;
	__u16 _pad;
	__u32 _pad2;
};

struct sn_rule_ref {
	__u32 rule;
	__u32 _pad;
};

/*
 * sn_net4 / sn_net6 keys (LPM): the prefix covers gen, protocol and port
 * class entirely, then PREFIX bits of the address (network byte order).
 * prefixlen = 32 + address prefix length.
 */
struct sn_net4_key {
	__u32 prefixlen;
	__u8 gen;
	__u8 protocol;        /* IPPROTO_TCP, IPPROTO_UDP */
	__u8 port_class[2];   /* big endian: it is part of the matched prefix */
	__u8 addr[4];
};

struct sn_net6_key {
	__u32 prefixlen;
	__u8 gen;
	__u8 protocol;
	__u8 port_class[2];
	__u8 addr[16];
};

/* Per policy: already the winner among its rules for every address under this prefix. */
struct sn_net_val {
	__u64 match;
	__u64 deny;
	__u64 audit;
	__u16 rule[SN_MAX_POLICIES];
};

/* sn_bins: executables named by selectors, by identity (key kind 0). */
struct sn_bin_val {
	__u64 in;      /* policies whose `binaries` list this file */
	__u64 notin;   /* policies whose `notBinaries` list it */
};

/* sn_uids[gen * SN_MAX_UID_BOUNDS + i]: sorted interval starts; the policies
 * whose uid selector covers [first, next first). */
struct sn_uid_bound {
	__u32 first;
	__u32 _pad;
	__u64 mask;
};

struct sn_cgroup_key {
	__u64 id;      /* cgroup v2 id: the inode number of its directory */
	__u32 gen;
	__u32 _pad;
};

/* sn_config[gen]: everything about one policy generation that is not per object. */
struct sn_config {
	__u64 active;                    /* policies loaded in this generation */
	__u64 audit_mode;                /* policies whose deny only reports */
	__u64 default_deny[SN_SLOTS];
	__u64 default_audit[SN_SLOTS];
	__u64 subtree_any[SN_SLOTS];     /* policies with a subtree entry: walk only for them */
	__u64 subtree_deny[SN_SLOTS];    /* ... with a subtree deny: they deny when the walk is cut short */
	__u64 sel_bin;                   /* policies with a `binaries` selector */
	__u64 sel_uid;                   /* ... with a `uids` selector */
	__u64 sel_cgroup;                /* ... with a `cgroups` selector */
	__u64 sel_notbin_any;            /* ... with `notBinaries` (sn_bins is looked up) */
	__u64 canary_start_ticks;        /* its start time in clock ticks (/proc/PID/stat field 22) */
	__u32 uid_count;                 /* sn_uids entries of this generation */
	__u32 canary_tgid;               /* the daemon: exempt from user policies, denied the canary */
	__u32 alert_rate;                /* alerts per second per process and rule; 0: no limit */
	__u32 subtree_dev_count;         /* devices holding subtree-rule directories; > SN_SUBTREE_DEVS: unknown */
	__u32 subtree_devs[SN_SUBTREE_DEVS]; /* their s_dev: the walk skips every other mount's directories */
	/* `fileless: true` exec rules: per policy, as if an exact entry every
	 * file with no name in any directory shared (memfd, O_TMPFILE, deleted). */
	__u64 fileless_match;            /* policies with such a rule */
	__u64 fileless_deny;
	__u64 fileless_audit;
	__u16 fileless_rule[SN_MAX_POLICIES]; /* the rule that decides it, per policy */
};

/* sn_state[0]: the generation in force (one aligned __u32 store switches it),
 * and the daemon while it resolves rule paths to the identities hooks see. */
struct sn_state {
	__u32 gen;
	__u32 probe_tgid;        /* non-zero: record this process's opens in sn_probe */
	__u64 probe_ticks;       /* its start time, as sn_config.canary_start_ticks */
};

/*
 * sn_guard[0]: self-protection. While expires_ns (CLOCK_BOOTTIME) lies ahead,
 * only the owner (the daemon, by tgid and start time) may get a writable fd on
 * an sn_* map, remove or rename sentinel's pins, unmount the bpffs holding
 * them, or ptrace the daemon. The daemon pushes expires_ns forward every
 * second; a stopped daemon clears it, a killed one lets it lapse.
 */
#define SN_GUARD_DIRS 3

struct sn_guard {
	__u64 expires_ns;
	__u64 owner_ticks;          /* start time in clock ticks, as canary_start_ticks */
	__u32 owner_tgid;
	__u32 pin_dev;              /* s_dev of the bpffs holding the pins */
	__u64 pin_dirs[SN_GUARD_DIRS]; /* inode numbers of sentinel/, maps/, links/ */
};

/* sn_rate: one process's alerts for one rule in the current one-second window. */
#define SN_RATE_WINDOW_NS 1000000000ULL
#define SN_RATE_ENTRIES   16384

struct sn_rate_key {
	__u32 tgid;
	__u16 policy;
	__u16 rule;
	__u32 op;
};

struct sn_rate_val {
	__u64 window_start_ns;
	__u32 sent;         /* alerts emitted in this window */
	__u32 suppressed;   /* alerts held back in this window */
};

#define SN_PROBE_IDS 4

/* sn_probe[0]: the identities the open hook saw for the daemon's last probe
 * open (overlayfs shows two: the overlay's inode and the one backing it). */
struct sn_probe {
	__u64 ino[SN_PROBE_IDS];
	__u32 dev[SN_PROBE_IDS];
	__u32 count;
	__u32 _pad;
};

/*
 * sn_exe (task storage, on the thread-group leader) and sn_exec_open (by
 * struct file pointer): an executable's path, d_path'd when exec opened it.
 * Paths of SN_EXE_LEN bytes or more are not stored (user space reads /proc).
 */
struct sn_exe_path {
	char path[SN_EXE_LEN];
};

struct sn_event {
	__u64 ts_boot_ns;    /* bpf_ktime_get_boot_ns() */
	__u64 ino;
	__u64 cgroup_id;
	__u32 kind;          /* enum sn_event_kind */
	__u32 op;            /* enum sn_op */
	__u32 pid;
	__u32 tid;
	__u32 ppid;
	__u32 uid;
	__u32 gid;
	__u32 dev;
	__u32 access;        /* enum sn_access bits */
	__u32 gen;
	__u16 policy;
	__u16 rule;          /* SN_NO_RULE: the policy's default */
	__u8 action;         /* enum sn_action */
	__u8 blocked;        /* 1: the operation failed with EPERM */
	__u16 dport;
	__u8 family;         /* AF_INET, AF_INET6 (connect) */
	__u8 protocol;       /* IPPROTO_TCP, IPPROTO_UDP (connect) */
	__u8 via;            /* enum sn_via (open) */
	__u8 _pad;
	__u8 daddr[16];
	char comm[SN_COMM_LEN];
	char path[SN_PATH_LEN];  /* the object's path (d_path), "" if unknown */
	char exe[SN_PATH_LEN];   /* the process's executable (d_path), "" if unknown */
	__u32 suppressed;        /* this process's alerts for this rule held back in the window before this one */
};

#endif /* SENTINEL_H */
