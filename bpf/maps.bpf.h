/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Every map, defined once. Each hook's object includes this file; the
 * definitions are __weak so `bpftool gen object` merges them into one map per
 * name in sentinel.bpf.o. Names are sn_<what>, at most 15 characters.
 */
#ifndef SENTINEL_MAPS_BPF_H
#define SENTINEL_MAPS_BPF_H

#include "sentinel.h"

/* Objects by identity (dev, ino) -> per-policy verdict masks. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SN_MAX_FILES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct sn_file_key);
	__type(value, struct sn_file_val);
} sn_files SEC(".maps") __weak;

/* (object, slot, policy) -> the rule that decided: read only to name it in an alert. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SN_MAX_RULE_REFS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct sn_rule_ref_key);
	__type(value, struct sn_rule_ref);
} sn_rule_refs SEC(".maps") __weak;

/* Connect destinations: longest prefix match per family. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, SN_MAX_NETS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct sn_net4_key);
	__type(value, struct sn_net_val);
} sn_net4 SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, SN_MAX_NETS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct sn_net6_key);
	__type(value, struct sn_net_val);
} sn_net6 SEC(".maps") __weak;

/* [gen * SN_PORTS + port] -> port class of that generation. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * SN_PORTS);
	__type(key, __u32);
	__type(value, __u32);
} sn_ports SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SN_MAX_SELECTORS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct sn_file_key);
	__type(value, struct sn_bin_val);
} sn_bins SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * SN_MAX_UID_BOUNDS);
	__type(key, __u32);
	__type(value, struct sn_uid_bound);
} sn_uids SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SN_MAX_SELECTORS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct sn_cgroup_key);
	__type(value, __u64);
} sn_cgroups SEC(".maps") __weak;

/* Per-generation configuration, indexed by generation (0, 1). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct sn_config);
} sn_config SEC(".maps") __weak;

/* [0]: the generation in force. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sn_state);
} sn_state SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sn_probe);
} sn_probe SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sn_guard);
} sn_guard SEC(".maps") __weak;

/* Flood control: least recently alerting (process, rule) pairs are forgotten first. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SN_RATE_ENTRIES);
	__type(key, struct sn_rate_key);
	__type(value, struct sn_rate_val);
} sn_rate SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SN_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} sn_counters SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, SN_RINGBUF_BYTES);
} sn_events SEC(".maps") __weak;

/*
 * The executable of each process that exec'd while sentinel was loaded, for
 * hooks where bpf_d_path is not allowed (connect, exec under fmod_ret and
 * trace, name changes). Kept on the thread-group leader: threads share it,
 * a fork copies it, an exec replaces it (bpf/exe.bpf.c).
 */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sn_exe_path);
} sn_exe SEC(".maps") __weak;

/*
 * Exec's own opens (the binary, a #! interpreter, the ELF loader) by struct
 * file pointer, d_path'd in the open hook where that is allowed; the exec
 * that commits takes its file's entry into sn_exe. Entries of failed execs
 * and of ELF loaders are left for the LRU to evict.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SN_EXEC_OPENS);
	__type(key, __u64);
	__type(value, struct sn_exe_path);
} sn_exec_open SEC(".maps") __weak;

/*
 * Mechanism "tracepoint" (bpf/tracepoint.bpf.c) only.
 *
 * sn_path_buf: per-CPU scratch in which an alert's path is built backwards
 * from the dentries (bpf/path.bpf.h): no bpf_d_path in tracepoint programs.
 */
#define SN_NAME_MAX 255

struct sn_path_scratch {
	char buf[SN_PATH_LEN + SN_NAME_MAX + 1];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sn_path_scratch);
} sn_path_buf SEC(".maps") __weak;

/* Opens in flight with O_TRUNC, by thread (pid_tgid): the open clears O_TRUNC
 * from f_flags before the syscall returns, so sys_enter notes it for sys_exit. */
#define SN_TP_INFLIGHT 4096

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SN_TP_INFLIGHT);
	__type(key, __u64);
	__type(value, __u32);
} sn_tp_open SEC(".maps") __weak;

/* execs in flight, by thread id: the caller's executable (struct file
 * pointer, which exec keeps referenced until the syscall returns), noted at
 * sys_enter_execve(at) for sched_process_exec, where mm->exe_file is already
 * the new program's. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SN_TP_INFLIGHT);
	__type(key, __u32);
	__type(value, __u64);
} sn_tp_exec SEC(".maps") __weak;

/* Ring-buffer records are only ever pointers in the programs; this keeps
 * struct sn_event in the object's BTF so tests/abi can check its layout. */
struct sn_event *sn_event_btf __weak __attribute__((unused));

#endif /* SENTINEL_MAPS_BPF_H */
