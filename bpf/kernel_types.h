/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The few kernel types sentinel reads, declared with preserve_access_index so
 * that clang emits CO-RE relocations: libbpf resolves every field offset
 * against the running kernel's BTF at load time. Only fields we touch are
 * listed; their order and the structs' sizes here mean nothing. See the
 * README's design section for why this replaces a generated vmlinux.h.
 */
#ifndef SENTINEL_KERNEL_TYPES_H
#define SENTINEL_KERNEL_TYPES_H

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef signed char __s8;
typedef short __s16;
typedef int __s32;
typedef long long __s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef _Bool bool;
#define true 1
#define false 0

typedef unsigned int fmode_t;
typedef __u32 dev_t;
typedef unsigned short umode_t;
typedef struct { unsigned int val; } kuid_t;
typedef struct { unsigned int val; } kgid_t;
typedef struct { int counter; } atomic_t;

enum bpf_map_type {
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_LPM_TRIE = 11,
	BPF_MAP_TYPE_LRU_HASH = 9,
	BPF_MAP_TYPE_RINGBUF = 27,
	BPF_MAP_TYPE_TASK_STORAGE = 29,
};

enum {
	BPF_LOCAL_STORAGE_GET_F_CREATE = (1ULL << 0),
};

enum {
	BPF_F_NO_PREALLOC = (1U << 0),
};

enum {
	BPF_ANY = 0,
	BPF_NOEXIST = 1,
	BPF_EXIST = 2,
};

#define FMODE_READ  ((fmode_t)0x1)
#define FMODE_WRITE ((fmode_t)0x2)
#define FMODE_EXEC  ((fmode_t)0x20)
#define FMODE_PATH  ((fmode_t)0x4000)  /* O_PATH: no access to the content */
#define __FMODE_EXEC 0x20          /* open flag of exec's own opens (fs/exec.c) */
#define O_TRUNC     00001000

#define EPERM 1
#define CLONE_THREAD 0x00010000

struct super_block {
	dev_t s_dev;
	unsigned long s_iflags;
} __attribute__((preserve_access_index));

#define SB_I_NOEXEC 0x00000002  /* include/linux/fs.h: the file system refuses exec */

struct inode {
	umode_t i_mode;
	unsigned long i_ino;
	unsigned int i_nlink;   /* in a union with __i_nlink (include/linux/fs.h) */
	struct super_block *i_sb;
} __attribute__((preserve_access_index));

struct hlist_bl_node {
	struct hlist_bl_node **pprev;
} __attribute__((preserve_access_index));

struct qstr {
	__u32 len;
	const unsigned char *name;
} __attribute__((preserve_access_index));

struct dentry {
	struct hlist_bl_node d_hash;  /* pprev NULL: unhashed (d_unhashed) */
	struct dentry *d_parent;
	struct qstr d_name;
	struct inode *d_inode;
} __attribute__((preserve_access_index));

struct vfsmount {
	struct dentry *mnt_root;
	struct super_block *mnt_sb;
	int mnt_flags;
} __attribute__((preserve_access_index));

#define MNT_NOEXEC 0x04  /* include/linux/mount.h */

struct path {
	struct vfsmount *mnt;
	struct dentry *dentry;
} __attribute__((preserve_access_index));

struct file {
	struct path f_path;
	struct inode *f_inode;
	fmode_t f_mode;
	unsigned int f_flags;
	void *private_data;   /* a socket's struct socket */
} __attribute__((preserve_access_index));

#define S_IFMT   00170000
#define S_IFSOCK 0140000

/* The fd table (include/linux/fdtable.h), read by the tracepoint programs,
 * which see fds where the hooks see struct files. */
struct fdtable {
	unsigned int max_fds;
	struct file **fd;
} __attribute__((preserve_access_index));

struct files_struct {
	struct fdtable *fdt;
} __attribute__((preserve_access_index));

/* struct mount embeds the vfsmount a path points to (fs/mount.h). */
struct mount {
	struct mount *mnt_parent;
	struct dentry *mnt_mountpoint;
	struct vfsmount mnt;
} __attribute__((preserve_access_index));

struct linux_binprm {
	struct file *file;
	const char *filename;
} __attribute__((preserve_access_index));

typedef unsigned short sa_family_t;
#define AF_UNSPEC 0
#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define MSG_FASTOPEN 0x20000000

struct sockaddr {
	sa_family_t sa_family;
} __attribute__((preserve_access_index));

struct in_addr {
	__be32 s_addr;
};

struct sockaddr_in {
	sa_family_t sin_family;
	__be16 sin_port;
	struct in_addr sin_addr;
};

struct in6_addr {
	__u8 s6_addr[16];
};

struct sockaddr_in6 {
	sa_family_t sin6_family;
	__be16 sin6_port;
	__be32 sin6_flowinfo;
	struct in6_addr sin6_addr;
	__u32 sin6_scope_id;
};

/* The bound (receive) addresses; skc_v6_rcv_saddr only with CONFIG_IPV6. */
struct sock_common {
	unsigned short skc_family;
	struct in6_addr skc_v6_rcv_saddr;
} __attribute__((preserve_access_index));

struct sock {
	struct sock_common __sk_common;
	__u16 sk_protocol;
} __attribute__((preserve_access_index));

/* include/net/inet_sock.h: inet_saddr, the source address an IPv4 route
 * starts from (set by bind(2), or by a UDP connect). */
struct inet_sock {
	__be32 inet_saddr;
} __attribute__((preserve_access_index));

struct socket {
	short type;
	struct sock *sk;
} __attribute__((preserve_access_index));

struct msghdr {
	void *msg_name;
	int msg_namelen;
	unsigned int msg_flags;
} __attribute__((preserve_access_index));

struct mm_struct {
	struct file *exe_file;
} __attribute__((preserve_access_index));

/* include/linux/mm_types.h: the file a mapping maps, NULL for anonymous memory. */
struct vm_area_struct {
	struct file *vm_file;
} __attribute__((preserve_access_index));

#define PROT_READ  0x1
#define PROT_EXEC  0x4
#define READ_IMPLIES_EXEC 0x0400000  /* include/uapi/linux/personality.h */

struct cred {
	kuid_t uid;
	kgid_t gid;
} __attribute__((preserve_access_index));

/* The live-thread count: do_exit decrements it before sched_process_exit. */
struct signal_struct {
	atomic_t live;
} __attribute__((preserve_access_index));

struct task_struct {
	struct task_struct *group_leader;
	struct signal_struct *signal;
	int pid;
	int tgid;
	struct task_struct *real_parent;
	struct mm_struct *mm;
	struct files_struct *files;
	const struct cred *cred;
	char comm[16];
	__u64 start_boottime;
	unsigned int personality;
	unsigned in_execve:1;  /* set by bprm_execve (fs/exec.c) for the whole exec */
} __attribute__((preserve_access_index));

#define BPF_OBJ_NAME_LEN 16
struct bpf_map {
	char name[BPF_OBJ_NAME_LEN];
} __attribute__((preserve_access_index));

#define PTRACE_MODE_ATTACH 0x02

#endif /* SENTINEL_KERNEL_TYPES_H */
