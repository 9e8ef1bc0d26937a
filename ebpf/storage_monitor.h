/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Storage observer ABI: block requests that completed with an error or
 * crossed a latency threshold. Mirrored in
 * crates/tapio-common/src/ebpf/storage.rs (size and offset tests).
 */
#ifndef __STORAGE_MONITOR_H
#define __STORAGE_MONITOR_H

#include "tapio.h"

/* Requests tracked between issue and final completion: only those the
 * kernel did not stamp (the fallback path). */
#define STORAGE_INFLIGHT_MAX 8192

/* storage_config.hdr.flags, beyond TAPIO_CFG_ENABLED */
#define STOR_CFG_IO_ERRORS (1u << 1) /* completions with an error */
#define STOR_CFG_LATENCY (1u << 2)   /* latency threshold crossings */

/* Config carrier of storage_monitor.o (map `tapio_config`, key 0). */
struct storage_config {
	struct tapio_config_header hdr;
	__u64 latency_warning_ns;  /* issue -> completion; 0 = latency off */
	__u64 latency_critical_ns; /* >= warning; 0 = no critical level */
};

/* tapio_record_header.kind */
enum storage_record_kind {
	STOR_REC_IO_ERROR = 1,      /* final completion with an error status */
	STOR_REC_LATENCY = 2,       /* final completion at or past a threshold */
};

/* storage_record.flags */
#define STOR_REC_F_CRITICAL (1u << 0) /* latency >= latency_critical_ns */
#define STOR_REC_F_ERRNO (1u << 1)    /* status is a positive errno: the kernel's
                                       * tracepoint passed one, not a blk_status_t */
/* Which clock latency_ns came from (at most one set; neither = the issue
 * hook's own bpf_ktime_get_ns(), the fallback for requests the kernel did
 * not stamp, see storage_monitor.c): */
#define STOR_REC_F_CLOCK_IO_START (1u << 2) /* rq->io_start_time_ns: dispatch to
                                             * the driver (queue stats on) */
#define STOR_REC_F_CLOCK_ALLOC (1u << 3)    /* rq->start_time_ns: request
                                             * allocation (I/O accounting on;
                                             * includes scheduler queueing) */

/* Observer-specific slots of `tapio_stats`: completions dropped because
 * they could not be uniquely correlated with their issue (B9). */
enum storage_stat {
	STOR_STAT_AMBIGUOUS = 4,     /* issue of a request already in flight:
	                              * counted for the older issue, and again
	                              * when the completion is dropped */
	STOR_STAT_MISSING_ISSUE = 5, /* final completion without a tracked issue */
	STOR_STAT_REQUEUED = 6,      /* in-flight request requeued: its issue is
	                              * forgotten, the re-issue starts over */
	STOR_STAT_INFLIGHT_FULL = 7, /* issue not tracked: in-flight table full */
	STOR_STAT_PARTIAL_ERROR = 8, /* error in a partial completion (not
	                              * reported; the final one is judged) */
	STOR_STAT_UNSTAMPED = 9,     /* final completion of a request the kernel
	                              * did not stamp (start_time_ns 0): judged
	                              * on the issue hook's clock (fallback) */
};

struct storage_record {
	struct tapio_record_header hdr;
	__u64 sector;     /* rq position at completion, 512-byte sectors */
	__u64 latency_ns; /* issue -> final completion */
	__u32 dev;        /* kernel dev_t: major << 20 | minor */
	__u32 bytes;      /* bytes completed by the final completion */
	__u32 op;         /* REQ_OP_* (cmd_flags & REQ_OP_MASK) */
	__u32 status;     /* blk_status_t (errno with STOR_REC_F_ERRNO), 0 = ok */
	__u32 flags;      /* STOR_REC_F_* */
	__u32 _pad0;
};

#endif /* __STORAGE_MONITOR_H */
