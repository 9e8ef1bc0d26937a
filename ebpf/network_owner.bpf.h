/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Network observer, kernel side: who connected. The connecting process's
 * owner record, where it lives while the socket connects (slots claimed by
 * BPF atomics, or the preallocated table) and once it is established
 * (socket-local storage, or the table where tracing programs may not use
 * socket storage), and how it moves between them. Included once, by
 * network_monitor.c.
 */
#ifndef __NETWORK_OWNER_BPF_H
#define __NETWORK_OWNER_BPF_H

/* Per-socket state: a slot of `owner_table` while connecting; then
 * socket-local storage, freed by the kernel with the socket, or, where
 * tracing programs cannot use socket storage, the same slot until CLOSE
 * (see owner_get). */
struct sock_owner {
	__u32 tgid;
	__u32 pid;
	__u8 comm[TASK_COMM_LEN_ABI];
	__u64 cgroup_id;
	__u64 syn_sent_ns;
	__u64 last_rtt_ns;
	__u32 flags;
	__u32 rtt_jiffy; /* jiffies (low 32 bits) of the last full RTT check */
	__u32 srtt_before; /* sock_ops: tcp_sock.srtt_us (x8) as of the
			    * previous RTT callback; 0 = none yet */
	__u32 acked_at; /* rtt_iter: tcp_sock.rcv_tstamp (jiffies of the
			 * last ACK) as of the last sample */
};

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sock_owner);
} sockets SEC(".maps");

/* struct sock * -> owner, from CLOSE -> SYN_SENT until the socket leaves
 * SYN_SENT, or, where socket storage is missing (owner_in_table), until its
 * next move to CLOSE (every TCP socket passes CLOSE before it is freed, so a
 * slot never outlives its socket). Preallocated: updates work in softirq
 * and allocate nothing. NET_CONNECTING_MAX sockets connecting at once as
 * built; the loader sizes it to NET_OWNER_TABLE_MAX where it keeps every
 * connection's owner. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, NET_CONNECTING_MAX);
	__type(key, __u64);
	__type(value, struct sock_owner);
} owner_table SEC(".maps");

/* Sockets in SYN_SENT, first home: direct-mapped slots (a Fibonacci hash of
 * the socket pointer), claimed by cmpxchg of `sk` from 0 and released by
 * xchg back to 0, so an owner is never read while another socket writes it.
 * Lookup is an inlined array index and one compare, no hash-map lock or
 * element copy. A socket whose slot is taken goes to `owner_table`. Used
 * where the loader found BPF atomics (owner_slots_on). */
#define OWNER_SLOTS_BITS 10
struct owner_slot {
	__u64 sk; /* the claiming socket; 0 = free */
	struct sock_owner o;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1 << OWNER_SLOTS_BITS);
	__type(key, __u32);
	__type(value, struct owner_slot);
} owner_slots SEC(".maps");

/* Set by the loader before loading: 1 where the verifier takes BPF atomics
 * (cmpxchg, xchg: Linux 5.12), found by loading a probe program. */
const volatile __u32 owner_slots_on = 0;

/* Set by the loader before loading: 1 where tracing programs may not call
 * bpf_sk_storage_get (Linux before 5.11, "bpf: Allow using bpf_sk_storage
 * in FENTRY/FEXIT/RAW_TP"), found by asking the verifier. The branch not
 * taken is never walked by the verifier (read-only, frozen value). */
const volatile __u32 owner_in_table = 0;

/* The low 32 bits of a pointer as a plain number. The verifier allows no
 * arithmetic on a socket pointer, but lets a privileged program copy its
 * low half with a 32-bit move; clang without alu32 has no operand
 * constraint for 32-bit registers, hence the fixed ones. */
static __always_inline __u32 ptr_lo32(const void *p)
{
	register __u64 in asm("r1") = (__u64)p;
	register __u64 out asm("r0");

	asm volatile("w0 = w1" : "=r"(out) : "r"(in));
	return (__u32)out;
}

/* The slot `sk` would claim: a Fibonacci hash of the pointer's low half
 * (slab objects differ there). */
static __always_inline struct owner_slot *owner_slot_of(const struct sock *sk)
{
	__u32 idx = (ptr_lo32(sk) * 0x9E3779B9u) >> (32 - OWNER_SLOTS_BITS);

	return bpf_map_lookup_elem(&owner_slots, &idx);
}

/* Owner of a socket in SYN_SENT. */
static __always_inline struct sock_owner *owner_connecting(const struct sock *sk)
{
	__u64 key = (__u64)sk;
	struct owner_slot *slot;

	if (owner_slots_on) {
		slot = owner_slot_of(sk);
		if (slot && slot->sk == key)
			return &slot->o;
	}
	return bpf_map_lookup_elem(&owner_table, &key);
}

/* Owner of an established socket, from sock_ops' own socket pointer (no
 * BTF cast: RTT callbacks are only asked for sockets that have one). */
static __always_inline struct sock_owner *owner_get_ops(struct bpf_sock *sk)
{
	__u64 key = (__u64)sk;

	if (owner_in_table)
		return bpf_map_lookup_elem(&owner_table, &key);
	return bpf_sk_storage_get(&sockets, sk, NULL, 0);
}

/* Owner of a socket past SYN_SENT. */
static __always_inline struct sock_owner *owner_get(const struct sock *sk)
{
	__u64 key = (__u64)sk;

	if (owner_in_table)
		return bpf_map_lookup_elem(&owner_table, &key);
	/* No storage at all on this socket: skip the helper. */
	if (!sk->sk_bpf_storage)
		return NULL;
	return bpf_sk_storage_get(&sockets, (struct sock *)sk, NULL, 0);
}

/* The socket left SYN_SENT for a connection (ESTABLISHED, or SYN_RECV on a
 * simultaneous open): its owner moves from its slot or the table into socket
 * storage, or, where the table is the owner's home for the whole connection
 * (owner_in_table), from its slot into the table. */
static __always_inline void owner_settle(const struct sock *sk, const bool atomics)
{
	struct sock_owner *o, *st;
	struct owner_slot *slot = NULL;
	__u64 key = (__u64)sk;

	if (atomics && owner_slots_on) {
		slot = owner_slot_of(sk);
		if (slot && slot->sk != key)
			slot = NULL;
	}
	if (!slot && owner_in_table)
		return;
	o = slot ? &slot->o : bpf_map_lookup_elem(&owner_table, &key);
	if (!o)
		return;
	if (owner_in_table) {
		/* From the slot into the table, its home for the connection. */
		if (bpf_map_update_elem(&owner_table, &key, o, BPF_ANY))
			tapio_count(NET_STAT_OWNER_STORE_FAILED);
	} else {
		st = bpf_sk_storage_get(&sockets, (struct sock *)sk, NULL,
					BPF_SK_STORAGE_GET_F_CREATE);
		if (st)
			__builtin_memcpy(st, o, sizeof(*st));
		else
			tapio_count(NET_STAT_OWNER_STORE_FAILED);
	}
	if (slot)
		__sync_lock_test_and_set(&slot->sk, 0);
	else
		bpf_map_delete_elem(&owner_table, &key);
}

/* The socket's slot or table entry goes (socket storage goes with the
 * socket). */
static __always_inline void owner_forget(const struct sock *sk, const bool atomics)
{
	__u64 key = (__u64)sk;
	struct owner_slot *slot;

	if (atomics && owner_slots_on) {
		slot = owner_slot_of(sk);
		if (slot && slot->sk == key) {
			/* xchg: a full barrier, so the slot is free only after
			 * every read of its owner. */
			__sync_lock_test_and_set(&slot->sk, 0);
			return;
		}
	}
	bpf_map_delete_elem(&owner_table, &key);
}

static __always_inline void capture_owner(const struct sock *sk, const bool atomics)
{
	struct sock_owner o;
	__u64 key = (__u64)sk;
	__u64 id;

	/* Zeroed first: bpf_get_current_comm() copies up to the NUL without
	 * padding on some kernels (6.1), and the rest of `comm` would carry
	 * stale stack bytes into the record (and the userspace fold key). */
	__builtin_memset(&o, 0, sizeof(o));
	id = bpf_get_current_pid_tgid();
	o.tgid = id >> 32;
	o.pid = (__u32)id;
	bpf_get_current_comm(o.comm, sizeof(o.comm));
	o.cgroup_id = bpf_get_current_cgroup_id();
	o.syn_sent_ns = bpf_ktime_get_boot_ns();
	/* The first RTT sample is due one interval after the connect began,
	 * never on the first ACKs: srtt then rests on one or two measurements
	 * (the sock_ops hook would sample right after the first data ACK's). */
	o.last_rtt_ns = o.syn_sent_ns;
	o.flags = NET_REC_F_OWNER_KNOWN;
	if (atomics && owner_slots_on) {
		struct owner_slot *slot = owner_slot_of(sk);

		/* A slot this socket still holds is reused (defensive: every
		 * way out of SYN_SENT releases it). */
		if (slot && (slot->sk == key || __sync_val_compare_and_swap(&slot->sk, 0, key) == 0)) {
			__builtin_memcpy(&slot->o, &o, sizeof(o));
			return;
		}
	}
	if (bpf_map_update_elem(&owner_table, &key, &o, BPF_ANY))
		tapio_count(NET_STAT_OWNER_STORE_FAILED);
}

#endif /* __NETWORK_OWNER_BPF_H */
