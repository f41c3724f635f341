// SPDX-License-Identifier: GPL-2.0
/*
 * connect: judge every way a TCP or UDP socket reaches a remote address:
 * connect(2), and sendmsg/sendto/sendmmsg with an explicit address (an
 * unconnected UDP socket, or TCP Fast Open with MSG_FASTOPEN). IPv4-mapped
 * IPv6 destinations (::ffff:a.b.c.d) are judged as the IPv4 address they are.
 *
 * One array lookup (port -> port class) and one LPM lookup per operation.
 */
#include "kernel_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "decide.bpf.h"
#include "path.bpf.h"
#include "tp.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/* The destination, read from a kernel copy of the sockaddr (the hooks) or
 * from the caller's memory (the tracepoint programs, before the syscall has
 * copied it: another thread may change it in between). */
struct sn_dest {
	__u8 addr[16];
	__u16 port;      /* host order */
	__u8 family;     /* AF_INET or AF_INET6 after unmapping */
	__u8 protocol;
};

static __always_inline long sn_read_addr(void *dst, __u32 size, const void *src, int how)
{
	return how == SN_HOW_CORE ? bpf_probe_read_user(dst, size, src) : bpf_probe_read_kernel(dst, size, src);
}

/* UNSPEC_INET: AF_UNSPEC is AF_INET (udp_sendmsg on an IPv4 socket). */
static __always_inline int sn_read_dest(struct sn_dest *d, const void *uaddr, int addrlen, int how, bool unspec_inet)
{
	sa_family_t family = 0;

	if (!uaddr || addrlen < (int)sizeof(struct sockaddr_in))
		return -1;
	if (sn_read_addr(&family, sizeof(family), uaddr, how))
		return -1;
	if (family == AF_INET || (family == AF_UNSPEC && unspec_inet)) {
		struct sockaddr_in sin = {};

		if (sn_read_addr(&sin, sizeof(sin), uaddr, how))
			return -1;
		d->family = AF_INET;
		d->port = bpf_ntohs(sin.sin_port);
		__builtin_memcpy(d->addr, &sin.sin_addr.s_addr, 4);
		return 0;
	}
	if (family == AF_INET6 && addrlen >= (int)sizeof(struct sockaddr_in6)) {
		struct sockaddr_in6 sin6 = {};
		const __u8 *a;

		if (sn_read_addr(&sin6, sizeof(sin6), uaddr, how))
			return -1;
		a = sin6.sin6_addr.s6_addr;
		d->port = bpf_ntohs(sin6.sin6_port);
		if (!(a[0] | a[1] | a[2] | a[3] | a[4] | a[5] | a[6] | a[7] | a[8] | a[9]) && a[10] == 0xff && a[11] == 0xff) {
			d->family = AF_INET;  /* ::ffff:a.b.c.d is a.b.c.d */
			__builtin_memcpy(d->addr, a + 12, 4);
		} else {
			d->family = AF_INET6;
			__builtin_memcpy(d->addr, a, 16);
		}
		return 0;
	}
	return -1;  /* AF_UNSPEC otherwise (a disconnect, or no address), AF_UNIX and others: not network egress */
}

/*
 * 0.0.0.0 and :: name this host. Replace them with the address the kernel
 * will route to (README, design notes section 4), so that a rule on
 * 127.0.0.0/8 or ::1 holds for them too:
 * - IPv4 (also ::ffff:0.0.0.0 and AF_INET on an IPv6 datagram socket):
 *   ip_route_output_key_hash_rcu() makes daddr the flow's saddr, which
 *   starts as inet_saddr (bound address); if that is 0 too, 127.0.0.1.
 * - IPv6: tcp_v6_connect(), __ip6_datagram_connect() and udpv6_sendmsg()
 *   make :: ::1, or ::ffff:127.0.0.1 (so 127.0.0.1) when the socket is
 *   bound to an IPv4-mapped address. The bound IPv6 address is not used.
 * Only an all-zero address pays for this. It is a global function, verified
 * once on its own: inlined, its branches
 * multiplied the states of every caller and tp_sendto passed the verifier's
 * 1M-instruction limit on 6.1. SK is a kernel pointer read with CO-RE.
 */
__noinline int sn_reached_dest(struct sn_dest *d, __u64 sk_ptr)
{
	struct sock *sk = (struct sock *)sk_ptr;
	__u64 hi, lo;
	__u32 a4;

	if (!d)
		return 0;

	if (d->family == AF_INET) {
		__builtin_memcpy(&a4, d->addr, 4);
		if (a4)
			return 0;
		a4 = BPF_CORE_READ((struct inet_sock *)sk, inet_saddr);
		if (!a4)
			a4 = bpf_htonl(0x7f000001);
		__builtin_memcpy(d->addr, &a4, 4);
		return 1;
	}
	__builtin_memcpy(&hi, d->addr, 8);
	__builtin_memcpy(&lo, d->addr + 8, 8);
	if (hi | lo)
		return 0;
	if (bpf_core_field_exists(sk->__sk_common.skc_v6_rcv_saddr)) {
		struct in6_addr bound = BPF_CORE_READ(sk, __sk_common.skc_v6_rcv_saddr);
		const __u8 *b = bound.s6_addr;

		if (!(b[0] | b[1] | b[2] | b[3] | b[4] | b[5] | b[6] | b[7] | b[8] | b[9]) && b[10] == 0xff && b[11] == 0xff) {
			a4 = bpf_htonl(0x7f000001);
			d->family = AF_INET;
			__builtin_memcpy(d->addr, &a4, 4);
			return 1;
		}
	}
	d->addr[15] = 1;  /* ::1 */
	return 1;
}

static __always_inline const struct sn_net_val *sn_net_lookup(const struct sn_dest *d, __u32 gen)
{
	__u32 idx = (gen & 1) * SN_PORTS + d->port;
	__u32 *cls = bpf_map_lookup_elem(&sn_ports, &idx);
	__u32 c = cls ? *cls : 0;

	if (d->family == AF_INET) {
		struct sn_net4_key k = {};

		k.prefixlen = 64;
		k.gen = gen;
		k.protocol = d->protocol;
		k.port_class[0] = c >> 8;
		k.port_class[1] = c & 0xff;
		__builtin_memcpy(k.addr, d->addr, 4);
		return bpf_map_lookup_elem(&sn_net4, &k);
	} else {
		struct sn_net6_key k = {};

		k.prefixlen = 160;
		k.gen = gen;
		k.protocol = d->protocol;
		k.port_class[0] = c >> 8;
		k.port_class[1] = c & 0xff;
		__builtin_memcpy(k.addr, d->addr, 16);
		return bpf_map_lookup_elem(&sn_net6, &k);
	}
}

/*
 * The decision on SOCK reaching the address at UADDR, for every mechanism.
 * HOW: SN_HOW_BTF for the hooks (UADDR is the kernel's copy), SN_HOW_CORE for
 * the tracepoint programs (SOCK found from the fd, UADDR in user memory).
 * SEND: a send's msg_name rather than connect's address.
 */
static __always_inline int sn_decide_connect_as(struct socket *sock, const void *uaddr, int addrlen, int how, bool send)
{
	const struct sn_config *cfg;
	const struct sn_net_val *v;
	struct sn_masks m = {};
	struct sn_dest d = {};
	struct sn_verdict verdict;
	struct sn_event *e;
	__u64 applicable;
	__u32 gen = 0;
	__u16 rule = SN_NO_RULE;

	cfg = sn_current(&gen);
	if (!cfg || !cfg->active)
		return 0;
	d.protocol = BPF_CORE_READ(sock, sk, sk_protocol);
	if (d.protocol != IPPROTO_TCP && d.protocol != IPPROTO_UDP)
		return 0;
	/* udp_sendmsg() takes AF_UNSPEC as AF_INET; connect() takes it as a disconnect. */
	if (sn_read_dest(&d, uaddr, addrlen, how,
			 send && d.protocol == IPPROTO_UDP && BPF_CORE_READ(sock, sk, __sk_common.skc_family) == AF_INET))
		return 0;
	sn_reached_dest(&d, (__u64)BPF_CORE_READ(sock, sk));
	applicable = sn_applicable(cfg, gen);
	if (!applicable)
		return 0;
	sn_count(SN_CNT_DECIDED);

	m.undecided = applicable;
	v = sn_net_lookup(&d, gen);
	if (v) {
		__u64 hit = v->match & m.undecided;

		m.deny |= v->deny & hit;
		m.audit |= v->audit & hit;
		m.undecided &= ~hit;
	}
	sn_apply_defaults(&m, cfg, SN_SLOT_CONNECT);
	verdict = sn_fold(&m, cfg);
	if (verdict.policy < 0)
		return 0;
	if (verdict.blocked)
		sn_count(SN_CNT_DENIED);
	if (v && verdict.policy >= 0 && verdict.policy < SN_MAX_POLICIES && ((v->match >> verdict.policy) & 1))
		rule = v->rule[verdict.policy];

	e = sn_event_start(cfg, &verdict, SN_OP_CONNECT, rule, gen);
	if (e) {
		e->family = d.family;
		e->protocol = d.protocol;
		e->dport = d.port;
		__builtin_memcpy(e->daddr, d.addr, 16);
		if (how == SN_HOW_CORE)
			sn_fill_exe_walk(e);
		else
			sn_fill_exe_stored(e);  /* no bpf_d_path in socket hooks */
		bpf_ringbuf_submit(e, 0);
	}
	return verdict.blocked ? -EPERM : 0;
}

static __always_inline int sn_decide_connect(struct socket *sock, const void *uaddr, int addrlen)
{
	return sn_decide_connect_as(sock, uaddr, addrlen, SN_HOW_BTF, false);
}

/* A send with an address: judged for UDP always, for TCP only with Fast Open
 * (otherwise TCP ignores or rejects msg_name). */
static __always_inline int sn_decide_send_as(struct socket *sock, void *name, int namelen, unsigned int flags, int how)
{
	__u16 proto = BPF_CORE_READ(sock, sk, sk_protocol);

	if (!name || namelen <= 0)
		return 0;
	if (proto == IPPROTO_TCP && !(flags & MSG_FASTOPEN))
		return 0;
	return sn_decide_connect_as(sock, name, namelen, how, true);
}

static __always_inline int sn_decide_sendmsg(struct socket *sock, struct msghdr *msg)
{
	void *name = BPF_CORE_READ(msg, msg_name);
	int namelen = BPF_CORE_READ(msg, msg_namelen);

	return sn_decide_send_as(sock, name, namelen, BPF_CORE_READ(msg, msg_flags), SN_HOW_BTF);
}

SEC("lsm/socket_connect")
int BPF_PROG(lsm_connect, struct socket *sock, struct sockaddr *address, int addrlen, int ret)
{
	if (ret)
		return ret;
	return sn_decide_connect(sock, address, addrlen);
}

SEC("lsm/socket_sendmsg")
int BPF_PROG(lsm_sendmsg, struct socket *sock, struct msghdr *msg, int size, int ret)
{
	if (ret)
		return ret;
	return sn_decide_sendmsg(sock, msg);
}

SEC("fmod_ret/security_socket_connect")
int BPF_PROG(fmodret_connect, struct socket *sock, struct sockaddr *address, int addrlen, int ret)
{
	if (ret)
		return ret;
	return sn_decide_connect(sock, address, addrlen);
}

SEC("fmod_ret/security_socket_sendmsg")
int BPF_PROG(fmodret_sendmsg, struct socket *sock, struct msghdr *msg, int size, int ret)
{
	if (ret)
		return ret;
	return sn_decide_sendmsg(sock, msg);
}

/* Tracing only (mechanism "trace"): judged and reported, never denied. */
SEC("fentry/security_socket_connect")
int BPF_PROG(fentry_connect, struct socket *sock, struct sockaddr *address, int addrlen)
{
	sn_decide_connect(sock, address, addrlen);
	return 0;
}

SEC("fentry/security_socket_sendmsg")
int BPF_PROG(fentry_sendmsg, struct socket *sock, struct msghdr *msg, int size)
{
	sn_decide_sendmsg(sock, msg);
	return 0;
}

/*
 * Mechanism "tracepoint" (audit only): judged at syscall entry, on the
 * address in the caller's memory; the socket comes from the fd. io_uring's
 * connect and sendmsg make no syscall and are not seen.
 */
static __always_inline struct socket *sn_tp_socket(long fd)
{
	struct file *file = sn_tp_fd_file(fd);

	if (!file || (BPF_CORE_READ(file, f_inode, i_mode) & S_IFMT) != S_IFSOCK)
		return 0;
	return BPF_CORE_READ(file, private_data);
}

/* The user-space struct msghdr (include/linux/socket.h user_msghdr). */
struct sn_user_msghdr {
	void *msg_name;
	int msg_namelen;
	int _pad;
	void *msg_iov;
	__u64 msg_iovlen;
	void *msg_control;
	__u64 msg_controllen;
	unsigned int msg_flags;
	unsigned int _pad2;
};

/* struct mmsghdr: one message of sendmmsg(2). */
struct sn_user_mmsghdr {
	struct sn_user_msghdr msg_hdr;
	unsigned int msg_len;
	unsigned int _pad;
};

/* sendmmsg(2) messages examined per call: each may name another address. */
#define SN_TP_MMSG 8

static __always_inline void sn_tp_sendmsg(struct socket *sock, const struct sn_user_msghdr *umsg, unsigned int flags)
{
	struct sn_user_msghdr m;

	if (bpf_probe_read_user(&m, sizeof(m), umsg))
		return;
	sn_decide_send_as(sock, m.msg_name, m.msg_namelen, flags, SN_HOW_CORE);
}

/* connect(fd, uservaddr, addrlen) */
SEC("tracepoint/syscalls/sys_enter_connect")
int tp_connect(struct sn_tp_sys_enter *ctx)
{
	struct socket *sock = sn_tp_socket(ctx->args[0]);

	if (sock)
		sn_decide_connect_as(sock, (void *)ctx->args[1], (int)ctx->args[2], SN_HOW_CORE, false);
	return 0;
}

/* sendto(fd, buff, len, flags, addr, addr_len) */
SEC("tracepoint/syscalls/sys_enter_sendto")
int tp_sendto(struct sn_tp_sys_enter *ctx)
{
	struct socket *sock;

	if (!ctx->args[4])
		return 0;
	sock = sn_tp_socket(ctx->args[0]);
	if (sock)
		sn_decide_send_as(sock, (void *)ctx->args[4], (int)ctx->args[5], (unsigned int)ctx->args[3], SN_HOW_CORE);
	return 0;
}

/* sendmsg(fd, msg, flags) */
SEC("tracepoint/syscalls/sys_enter_sendmsg")
int tp_sendmsg(struct sn_tp_sys_enter *ctx)
{
	struct socket *sock = sn_tp_socket(ctx->args[0]);

	if (sock)
		sn_tp_sendmsg(sock, (const struct sn_user_msghdr *)ctx->args[1], (unsigned int)ctx->args[2]);
	return 0;
}

struct sn_tp_mmsg {
	struct socket *sock;
	const struct sn_user_mmsghdr *vec;
	__u32 vlen;
	__u32 flags;
};

static long sn_tp_mmsg_step(__u32 i, void *ctx)
{
	struct sn_tp_mmsg *m = ctx;

	if (i >= m->vlen)
		return 1;
	sn_tp_sendmsg(m->sock, &m->vec[i].msg_hdr, m->flags);
	return 0;
}

/* sendmmsg(fd, mmsg, vlen, flags): the first SN_TP_MMSG messages. */
SEC("tracepoint/syscalls/sys_enter_sendmmsg")
int tp_sendmmsg(struct sn_tp_sys_enter *ctx)
{
	struct sn_tp_mmsg m = {};

	m.sock = sn_tp_socket(ctx->args[0]);
	if (!m.sock)
		return 0;
	m.vec = (const struct sn_user_mmsghdr *)ctx->args[1];
	m.vlen = ctx->args[2];
	m.flags = ctx->args[3];
	bpf_loop(SN_TP_MMSG, sn_tp_mmsg_step, &m, 0);
	return 0;
}
