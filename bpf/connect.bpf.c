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

char LICENSE[] SEC("license") = "GPL";

/* The destination, read from a kernel copy of the sockaddr. */
struct sn_dest {
	__u8 addr[16];
	__u16 port;      /* host order */
	__u8 family;     /* AF_INET or AF_INET6 after unmapping */
	__u8 protocol;
};

static __always_inline int sn_read_dest(struct sn_dest *d, const void *uaddr, int addrlen)
{
	sa_family_t family = 0;

	if (!uaddr || addrlen < (int)sizeof(struct sockaddr_in))
		return -1;
	if (bpf_probe_read_kernel(&family, sizeof(family), uaddr))
		return -1;
	if (family == AF_INET) {
		struct sockaddr_in sin = {};

		if (bpf_probe_read_kernel(&sin, sizeof(sin), uaddr))
			return -1;
		d->family = AF_INET;
		d->port = bpf_ntohs(sin.sin_port);
		__builtin_memcpy(d->addr, &sin.sin_addr.s_addr, 4);
		return 0;
	}
	if (family == AF_INET6 && addrlen >= (int)sizeof(struct sockaddr_in6)) {
		struct sockaddr_in6 sin6 = {};
		const __u8 *a;

		if (bpf_probe_read_kernel(&sin6, sizeof(sin6), uaddr))
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
	return -1;  /* AF_UNSPEC (disconnect), AF_UNIX and others: not network egress */
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

static __always_inline int sn_decide_connect(struct socket *sock, const void *uaddr, int addrlen)
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
	if (sn_read_dest(&d, uaddr, addrlen))
		return 0;
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
		sn_fill_exe_stored(e);  /* no bpf_d_path in socket hooks */
		bpf_ringbuf_submit(e, 0);
	}
	return verdict.blocked ? -EPERM : 0;
}

/* sendmsg with an address: judged for UDP always, for TCP only with Fast Open
 * (otherwise TCP ignores or rejects msg_name). */
static __always_inline int sn_decide_sendmsg(struct socket *sock, struct msghdr *msg)
{
	void *name = BPF_CORE_READ(msg, msg_name);
	int namelen = BPF_CORE_READ(msg, msg_namelen);
	__u16 proto = BPF_CORE_READ(sock, sk, sk_protocol);

	if (!name || namelen <= 0)
		return 0;
	if (proto == IPPROTO_TCP && !(BPF_CORE_READ(msg, msg_flags) & MSG_FASTOPEN))
		return 0;
	return sn_decide_connect(sock, name, namelen);
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
