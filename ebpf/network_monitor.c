// SPDX-License-Identifier: Apache-2.0
/*
 * Network observer, kernel side: TCP connect failures, retransmits and
 * smoothed-RTT samples.
 *
 * The connecting process is captured once, at CLOSE -> SYN_SENT, where the
 * current task is the caller of connect(), and kept while the socket is in
 * SYN_SENT in `owner_slots` (direct-mapped, claimed by BPF atomics) or, on a
 * slot collision or where the verifier has no atomics, in `owner_table` (a
 * preallocated hash keyed by the socket): no allocation on the connect
 * path. The connect's outcome takes it from there: a refusal or timeout
 * (SYN_SENT -> CLOSE) is reported and the slot freed; an established
 * connection moves it into socket-local storage (the only allocation, paid
 * by connections that live on), where retransmits and
 * RTT samples find it. Every later fact usually fires in softirq context and
 * takes its owner from the table or the storage, never from `current`. A
 * socket whose connect predates the agent has no owner: its facts say so
 * (NET_REC_F_OWNER_KNOWN clear) instead of naming a wrong pid.
 */
#include "vmlinux.h"
#include "tapio.bpf.h"
#include "core_fixes.bpf.h"
#include "network_monitor.h"

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct network_config);
} tapio_config SEC(".maps");

#include "network_owner.bpf.h"

static __always_inline const struct network_config *net_config(__u32 need)
{
	__u32 zero = 0;
	const struct network_config *cfg = bpf_map_lookup_elem(&tapio_config, &zero);

	if (!cfg || !tapio_config_active(&cfg->hdr))
		return NULL;
	if (!(cfg->hdr.flags & need))
		return NULL;
	return cfg;
}

/* Fills addresses, ports, state and owner; the caller sets the rest. */
static __always_inline void fill_socket(struct network_record *r, const struct sock *sk,
					const struct tcp_sock *tp, const struct sock_owner *owner)
{
	__u16 family = sk->__sk_common.skc_family;

	r->family = family;
	/* inet_sport, not skc_num: at SYN_SENT -> CLOSE inet_put_port() has
	 * already cleared skc_num, while inet_sport keeps the bound port. */
	r->sport = bpf_ntohs(tp->inet_conn.icsk_inet.inet_sport);
	r->dport = bpf_ntohs(sk->__sk_common.skc_dport);
	r->state = sk->__sk_common.skc_state;
	if (family == AF_INET6) {
		BPF_CORE_READ_INTO(&r->saddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(&r->daddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
	} else {
		__builtin_memcpy(r->saddr, &sk->__sk_common.skc_rcv_saddr, 4);
		__builtin_memcpy(r->daddr, &sk->__sk_common.skc_daddr, 4);
	}
	if (owner && (owner->flags & NET_REC_F_OWNER_KNOWN)) {
		r->tgid = owner->tgid;
		r->pid = owner->pid;
		__builtin_memcpy(r->comm, owner->comm, sizeof(r->comm));
		r->cgroup_id = owner->cgroup_id;
		r->flags |= NET_REC_F_OWNER_KNOWN;
	}
}

/* The socket's windowed minimum RTT (tcp_min_rtt(): rtt_min.s[0].v, in
 * microseconds), or 0 while the kernel has measured none (~0U). */
static __always_inline __u32 tapio_min_rtt_us(const struct tcp_sock *tp)
{
	__u32 v = tp->rtt_min.s[0].v;

	return v == ~0U ? 0 : v;
}

static __always_inline bool is_tcp_inet(const struct sock *sk)
{
	__u16 family = sk->__sk_common.skc_family;

	return sk->sk_protocol == IPPROTO_TCP && (family == AF_INET || family == AF_INET6);
}

static __always_inline void emit_connect_failed(const struct sock *sk,
						const struct network_config *cfg)
{
	struct tcp_sock *tp = bpf_skc_to_tcp_sock((void *)sk);
	struct network_record *r;
	struct sock_owner *o;

	if (!tp)
		return;
	r = tapio_reserve(sizeof(*r));
	if (!r)
		return;
	__builtin_memset(r, 0, sizeof(*r));
	tapio_fill_header(&r->hdr, NET_REC_CONNECT_FAILED, sizeof(*r), cfg->hdr.generation);
	o = owner_connecting(sk);
	fill_socket(r, sk, tp, o);
	r->state = TCP_SYN_SENT;
	r->sk_err = sk->sk_err;
	r->retransmits = tp->total_retrans;
	r->segs_out = tp->segs_out;
	if (o) {
		r->flags |= o->flags & NET_REC_F_RST;
		if (o->syn_sent_ns)
			r->duration_ns = r->hdr.ts_boot_ns - o->syn_sent_ns;
	}
	tapio_submit(r, sizeof(*r));
}

/* `atomics`: a constant of each program below, so the program built without
 * them holds no atomic instruction (a verifier without BPF atomics rejects a
 * program holding one, reachable or not). */
static __always_inline int set_state(const struct sock *sk, const int oldstate,
				     const int newstate, const bool atomics)
{
	const struct network_config *cfg;

	if (newstate != TCP_SYN_SENT && oldstate != TCP_SYN_SENT) {
		if (owner_in_table && newstate == TCP_CLOSE)
			owner_forget(sk, atomics);
		return 0;
	}
	cfg = net_config(NET_CFG_CONNECT | NET_CFG_RTT);
	if (!cfg || !is_tcp_inet(sk)) {
		if (oldstate == TCP_SYN_SENT || newstate == TCP_CLOSE)
			owner_forget(sk, atomics);
		return 0;
	}
	if (newstate == TCP_SYN_SENT) {
		capture_owner(sk, atomics);
	} else if (newstate == TCP_CLOSE) {
		if (cfg->hdr.flags & NET_CFG_CONNECT)
			emit_connect_failed(sk, cfg);
		owner_forget(sk, atomics);
	} else {
		owner_settle(sk, atomics);
	}
	return 0;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(inet_sock_set_state, const struct sock *sk, const int oldstate, const int newstate)
{
	return set_state(sk, oldstate, newstate, true);
}

/* The same hook where the verifier refuses BPF atomics (the loader attaches
 * one of the two; the part of the name after "__" names the variant). */
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(inet_sock_set_state__no_atomics, const struct sock *sk, const int oldstate,
	     const int newstate)
{
	return set_state(sk, oldstate, newstate, false);
}

SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(tcp_receive_reset, struct sock *sk)
{
	struct sock_owner *o;

	if (sk->__sk_common.skc_state != TCP_SYN_SENT)
		return 0;
	if (!net_config(NET_CFG_CONNECT))
		return 0;
	o = owner_connecting(sk);
	if (o)
		o->flags |= NET_REC_F_RST;
	return 0;
}

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(tcp_retransmit_skb, const struct sock *sk, const struct sk_buff *skb)
{
	const struct network_config *cfg;
	const struct tcp_skb_cb *cb;
	struct network_record *r;
	struct tcp_sock *tp;
	int err = 0;
	__u16 segs;

	/* The third argument exists only where the tracepoint carries it. */
	if (tapio_tcp_retransmit_has_err())
		err = (int)ctx[2];
	/* SYN retransmits belong to the connect's outcome (B2), not to B3. */
	if (sk->__sk_common.skc_state == TCP_SYN_SENT)
		return 0;
	cfg = net_config(NET_CFG_RETRANSMIT);
	if (!cfg || !is_tcp_inet(sk))
		return 0;
	if (err) {
		tapio_count(NET_STAT_RETRANSMIT_FAILED);
		return 0;
	}
	tp = bpf_skc_to_tcp_sock((void *)sk);
	if (!tp)
		return 0;
	r = tapio_reserve(sizeof(*r));
	if (!r)
		return 0;
	__builtin_memset(r, 0, sizeof(*r));
	tapio_fill_header(&r->hdr, NET_REC_RETRANSMIT, sizeof(*r), cfg->hdr.generation);
	fill_socket(r, sk, tp, owner_get(sk));
	/* Segments in this retransmission (tcp_skb_pcount): one skb may carry
	 * many under TSO, and tcpi_total_retrans counts segments. */
	cb = (const struct tcp_skb_cb *)&skb->cb[0];
	segs = BPF_CORE_READ(cb, tcp_gso_segs);
	r->retransmits = segs ? segs : 1;
	r->srtt_us = tp->srtt_us >> 3;
	r->min_rtt_us = tapio_min_rtt_us(tp);
	tapio_submit(r, sizeof(*r));
	return 0;
}

/* The config when the owner's socket has an RTT sample due now (marked
 * taken); NULL when none is due, with *off set when RTT sampling is off. */
static __always_inline const struct network_config *rtt_due(struct sock_owner *o, bool *off)
{
	const struct network_config *cfg = net_config(NET_CFG_RTT);
	__u32 jiffy;
	__u64 now;

	*off = !cfg || !cfg->rtt_sample_interval_ms;
	if (*off)
		return NULL;
	/* Still the jiffy of the last check: under one tick (10 ms at the
	 * lowest HZ) has passed, so an interval of 10 ms or more is not due,
	 * known without reading the clock (bpf_jiffies64 is a plain load). */
	jiffy = (__u32)bpf_jiffies64();
	if (jiffy == o->rtt_jiffy && cfg->rtt_sample_interval_ms >= 10)
		return NULL;
	o->rtt_jiffy = jiffy;
	now = bpf_ktime_get_boot_ns();
	if (now - o->last_rtt_ns < (__u64)cfg->rtt_sample_interval_ms * 1000000ull)
		return NULL;
	o->last_rtt_ns = now;
	return cfg;
}

/* Fills and submits one RTT sample of the socket `tp` whose smoothed RTT
 * is `srtt_us`. */
static __always_inline void rtt_emit(const struct tcp_sock *tp, const struct sock_owner *o,
				     const struct network_config *cfg, __u32 srtt_us)
{
	const struct sock *sk = (const struct sock *)tp;
	struct network_record *r;

	r = tapio_reserve(sizeof(*r));
	if (!r)
		return;
	__builtin_memset(r, 0, sizeof(*r));
	tapio_fill_header(&r->hdr, NET_REC_RTT_SAMPLE, sizeof(*r), cfg->hdr.generation);
	fill_socket(r, sk, tp, o);
	r->srtt_us = srtt_us;
	r->retransmits = tp->total_retrans;
	r->min_rtt_us = tapio_min_rtt_us(tp);
	tapio_submit(r, sizeof(*r));
}

/* RTT samples, first choice: a sock_ops program the loader attaches to the
 * root of the cgroup v2 hierarchy. At ACTIVE_ESTABLISHED it asks the kernel
 * for RTT callbacks on the sockets whose connect Tapio saw, and on no other:
 * every other socket of the node costs nothing per segment, and an owned
 * socket runs it once per RTT measurement, with srtt just updated. Where no
 * cgroup v2 root can take it, the loader attaches tcp_probe instead; never
 * both. Returns 1 (the kernel's "continue") in every case. Each call stores
 * the socket's srtt for the next one (one 4-byte store). */
SEC("sockops")
int rtt_sockops(struct bpf_sock_ops *ctx)
{
	const struct network_config *cfg;
	struct sock_owner *o;
	struct tcp_sock *tp;
	struct bpf_sock *bsk;
	__u32 op = ctx->op;
	bool off = false;

	if (op != BPF_SOCK_OPS_RTT_CB && op != BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB)
		return 1;
	bsk = ctx->sk;
	if (!bsk)
		return 1;
	o = owner_get_ops(bsk);
	if (op == BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB) {
		if (o && net_config(NET_CFG_RTT))
			bpf_sock_ops_cb_flags_set(ctx, ctx->bpf_sock_ops_cb_flags |
							   BPF_SOCK_OPS_RTT_CB_FLAG);
		return 1;
	}
	cfg = o ? rtt_due(o, &off) : NULL;
	/* No owner any more, or RTT switched off: stop the callbacks of this
	 * socket (a socket established while RTT was off never asked). */
	if (!o || off) {
		bpf_sock_ops_cb_flags_set(ctx, ctx->bpf_sock_ops_cb_flags &
						   ~BPF_SOCK_OPS_RTT_CB_FLAG);
		return 1;
	}
	/* The sample is srtt as it stood before this callback's measurement,
	 * as tcp_probe sees it (before the segment is processed): a delay
	 * that both makes a sample due and inflates this ACK's RTT (a stalled
	 * CPU) cannot choose what is sampled. */
	if (cfg && (tp = bpf_skc_to_tcp_sock(bsk)))
		rtt_emit(tp, o, cfg, (o->srtt_before ? o->srtt_before : ctx->srtt_us) >> 3);
	o->srtt_before = ctx->srtt_us;
	return 1;
}

/* RTT samples, fallback: runs on every received segment of every socket. The
 * common case (a socket Tapio holds nothing for, or no sample due) returns
 * before any record work. Only connections seen at connect: their
 * destination is a service (address, port), not a peer's ephemeral port. */
SEC("tp_btf/tcp_probe")
int BPF_PROG(tcp_probe, struct sock *sk, const struct sk_buff *skb)
{
	const struct network_config *cfg;
	struct sock_owner *o;
	struct tcp_sock *tp;
	bool off = false;

	o = owner_get(sk);
	if (!o)
		return 0;
	cfg = rtt_due(o, &off);
	if (cfg && (tp = bpf_skc_to_tcp_sock(sk)))
		rtt_emit(tp, o, cfg, tp->srtt_us >> 3);
	return 0;
}

/* RTT samples, first choice where owners live in socket storage: an
 * iterator over the `sockets` storage map, which the agent runs once per
 * sample interval (reading an iterator fd runs this once per element). It
 * visits only the sockets whose connect Tapio saw, and no packet of any
 * socket runs it. A socket that received no ACK since its last sample (an
 * idle connection: srtt cannot have moved) is skipped, as the per-segment
 * hooks never see it; a pass arriving up to a quarter interval early (timer
 * jitter) still takes its sample. */
SEC("iter/bpf_sk_storage_map")
int rtt_iter(struct bpf_iter__bpf_sk_storage_map *ctx)
{
	const struct network_config *cfg;
	struct sock *sk = ctx->sk;
	struct sock_owner *o = ctx->value;
	struct tcp_sock *tp;
	__u64 now, every;

	if (!sk || !o || sk->__sk_common.skc_state == TCP_CLOSE)
		return 0;
	cfg = net_config(NET_CFG_RTT);
	if (!cfg || !cfg->rtt_sample_interval_ms)
		return 0;
	tp = bpf_skc_to_tcp_sock(sk);
	if (!tp || tp->rcv_tstamp == o->acked_at)
		return 0;
	now = bpf_ktime_get_boot_ns();
	every = (__u64)cfg->rtt_sample_interval_ms * 1000000ull;
	if (now - o->last_rtt_ns < every - every / 4)
		return 0;
	o->last_rtt_ns = now;
	o->acked_at = tp->rcv_tstamp;
	rtt_emit(tp, o, cfg, tp->srtt_us >> 3);
	return 0;
}
