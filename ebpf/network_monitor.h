/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Network observer ABI: TCP connect failures, retransmits, RTT samples.
 * Mirrored in crates/tapio-common/src/ebpf.rs (size and offset tests).
 */
#ifndef __NETWORK_MONITOR_H
#define __NETWORK_MONITOR_H

#include "tapio.h"

#define TASK_COMM_LEN_ABI 16

/* network_config.hdr.flags, beyond TAPIO_CFG_ENABLED */
#define NET_CFG_CONNECT (1u << 1)    /* refused / timed-out connects */
#define NET_CFG_RETRANSMIT (1u << 2) /* data retransmits */
#define NET_CFG_RTT (1u << 3)        /* smoothed RTT samples */

/* Config carrier of network_monitor.o (map `tapio_config`, key 0). */
struct network_config {
	struct tapio_config_header hdr;
	__u32 rtt_sample_interval_ms; /* per-socket sampling period; 0 = RTT off */
	__u32 _pad0;
};

/* Sockets in SYN_SENT at once whose owner `owner_table` keeps (beyond it
 * a connect's owner is unknown, counted in NET_STAT_OWNER_STORE_FAILED; its
 * outcome is still reported). */
#define NET_CONNECTING_MAX 1024
/* Sockets whose owner is kept in `owner_table` for their whole life where
 * tracing programs cannot use socket-local storage (kernels before 5.11). */
#define NET_OWNER_TABLE_MAX 16384

/* tapio_record_header.kind */
enum network_record_kind {
	NET_REC_CONNECT_FAILED = 1, /* SYN_SENT -> CLOSE */
	NET_REC_RETRANSMIT = 2,     /* one retransmitted data segment */
	NET_REC_RTT_SAMPLE = 3,     /* srtt of an established connection */
};

/* network_record.flags */
#define NET_REC_F_OWNER_KNOWN (1u << 0) /* tgid/pid/comm captured at connect */
#define NET_REC_F_RST (1u << 1)         /* tcp_receive_reset seen in SYN_SENT */

/* Observer-specific slots of `tapio_stats`. */
enum network_stat {
	NET_STAT_OWNER_STORE_FAILED = 4, /* socket storage (or an owner_table
	                                  * slot) could not be created */
	NET_STAT_RETRANSMIT_FAILED = 5,  /* retransmit attempts that were not sent */
};

struct network_record {
	struct tapio_record_header hdr;
	__u32 tgid;           /* owner process, captured at connect; 0 = unknown */
	__u32 pid;            /* owner thread; 0 = unknown */
	__u8 comm[TASK_COMM_LEN_ABI];
	__u64 cgroup_id;      /* owner's cgroup v2 id at connect; 0 = unknown */
	__u8 saddr[16];       /* IPv4 in the first 4 bytes, network order */
	__u8 daddr[16];
	__u16 family;         /* AF_INET or AF_INET6 */
	__u16 sport;          /* host order */
	__u16 dport;          /* host order */
	__u8 state;           /* TCP state at the fact */
	__u8 _pad0;
	__u32 flags;          /* NET_REC_F_* */
	__s32 sk_err;         /* sk->sk_err at SYN_SENT -> CLOSE */
	__u32 retransmits;    /* SYN retransmits (connect), segments (retransmit),
	                       * total_retrans (RTT sample) */
	__u32 srtt_us;        /* smoothed RTT, microseconds */
	__u64 duration_ns;    /* time spent in SYN_SENT (connect) */
	__u32 min_rtt_us;     /* the socket's windowed minimum RTT (tcp_sock
	                       * rtt_min), microseconds; 0 = none measured yet */
	__u32 segs_out;       /* segments the socket sent (connect: 0 = the SYN
	                       * never left, a local failure) */
};

#endif /* __NETWORK_MONITOR_H */
