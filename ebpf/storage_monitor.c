// SPDX-License-Identifier: Apache-2.0
/*
 * Storage observer, kernel side: block requests that complete with an error
 * or cross a latency threshold.
 *
 * Latency comes from the request's own timestamps wherever the kernel set
 * them, read once at the final completion: no map, no work at issue.
 * - rq->io_start_time_ns: dispatch to the driver, stamped in
 *   blk_mq_start_request() when the queue keeps stats (QUEUE_FLAG_STATS,
 *   on with writeback throttling, iolatency, iocost or hybrid polling);
 * - else rq->start_time_ns: allocation, stamped when the request is
 *   accounted (QUEUE_FLAG_IO_STAT, /sys/block/<dev>/queue/iostats), has an
 *   I/O scheduler, or keeps stats; this latency includes scheduler queueing.
 * The record says which clock it used (STOR_REC_F_CLOCK_*). Both are
 * CLOCK_MONOTONIC, the clock of bpf_ktime_get_ns().
 *
 * Fallback, for requests the kernel did not stamp (start_time_ns == 0 at
 * issue: no accounting, no scheduler, no stats; passthrough requests):
 * issue and completion are correlated by the request itself (the
 * `struct request *`, unique while the request is in flight) in a bounded
 * hash, and every such completion is counted (STOR_STAT_UNSTAMPED). The
 * choice is made per request at run time, the same way at issue and at
 * completion (start_time_ns does not change in between), never from a
 * kernel version.
 *
 * Correlation rules of the fallback (B9), each drop counted in its own
 * tapio_stats slot (the stamped path cannot lose a correlation):
 * - issue of a request already in flight: the older issue's outcome is
 *   lost (counted), and the completion that follows is ambiguous (dropped,
 *   counted again);
 * - requeue of an in-flight request: its issue is forgotten (counted); the
 *   re-issue starts a new correlation, so latency never includes time spent
 *   in the requeue list (on the stamped path, io_start_time_ns is restamped
 *   at re-issue; start_time_ns is not, so the alloc clock includes it);
 * - final completion without a tracked issue: dropped, counted (requests
 *   issued before the agent attached or while the table was full);
 * - issue that finds the table full: not tracked, counted.
 * Everything reported is read from the request (device, sector, bytes, op),
 * never from `current`: completions run in interrupt context or on another
 * task.
 * block_rq_complete also fires for partial completions (nr_bytes smaller
 * than what is left of the request). Only the final completion is judged;
 * an error in a partial completion is counted, not reported.
 */
#include "vmlinux.h"
#include "tapio.bpf.h"
#include "core_fixes.bpf.h"
#include "storage_monitor.h"

#define EEXIST 17
#define REQ_OP_BITS 8
#define INFLIGHT_F_AMBIGUOUS (1u << 0)

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct storage_config);
} tapio_config SEC(".maps");

struct inflight_io {
	__u64 issue_ns; /* bpf_ktime_get_ns() at issue */
	__u32 flags;    /* INFLIGHT_F_* */
	__u32 _pad0;
};

/* struct request * -> issue; preallocated, so updates work in any context. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, STORAGE_INFLIGHT_MAX);
	__type(key, __u64);
	__type(value, struct inflight_io);
} inflight SEC(".maps");

/* Set by the loader before loading, for tests only: 1 judges every request
 * on the fallback path, as on a device the kernel does not stamp (read-only,
 * frozen: the verifier never walks the branch not taken). */
const volatile __u32 stamps_ignored = 0;

/* The request's allocation stamp, or 0 when it takes the fallback path. */
static __always_inline __u64 rq_start_stamp(const struct request *rq)
{
	return stamps_ignored ? 0 : rq->start_time_ns;
}

static __always_inline const struct storage_config *stor_config(void)
{
	__u32 zero = 0;
	const struct storage_config *cfg = bpf_map_lookup_elem(&tapio_config, &zero);

	if (!cfg || !tapio_config_active(&cfg->hdr))
		return NULL;
	if (!(cfg->hdr.flags & (STOR_CFG_IO_ERRORS | STOR_CFG_LATENCY)))
		return NULL;
	return cfg;
}

SEC("tp_btf/block_rq_issue")
int BPF_PROG(block_rq_issue, struct request *rq)
{
	struct inflight_io v = {}, *old;
	__u64 key = (__u64)rq;
	long err;

	/* Stamped by the kernel: the completion needs nothing from here. */
	if (rq_start_stamp(rq))
		return 0;
	if (!stor_config())
		return 0;
	v.issue_ns = bpf_ktime_get_ns();
	err = bpf_map_update_elem(&inflight, &key, &v, BPF_NOEXIST);
	if (!err)
		return 0;
	if (err != -EEXIST) {
		tapio_count(STOR_STAT_INFLIGHT_FULL);
		return 0;
	}
	/* Already in flight: the older issue's outcome is lost. */
	tapio_count(STOR_STAT_AMBIGUOUS);
	old = bpf_map_lookup_elem(&inflight, &key);
	if (old) {
		old->issue_ns = v.issue_ns;
		old->flags |= INFLIGHT_F_AMBIGUOUS;
	}
	return 0;
}

SEC("tp_btf/block_rq_requeue")
int BPF_PROG(block_rq_requeue, struct request *rq)
{
	__u64 key = (__u64)rq;

	if (rq_start_stamp(rq))
		return 0;
	if (!stor_config())
		return 0;
	if (bpf_map_delete_elem(&inflight, &key) == 0)
		tapio_count(STOR_STAT_REQUEUED);
	return 0;
}

static __always_inline void emit(const struct storage_config *cfg, const struct request *rq,
				 __u16 kind, __u64 latency_ns, __u32 status,
				 __u32 nr_bytes, __u32 flags)
{
	struct storage_record *r;

	r = tapio_reserve(sizeof(*r));
	if (!r)
		return;
	tapio_fill_header(&r->hdr, kind, sizeof(*r), cfg->hdr.generation);
	r->sector = rq->__sector;
	r->latency_ns = latency_ns;
	r->dev = tapio_rq_dev(rq);
	r->bytes = nr_bytes;
	r->op = rq->cmd_flags & ((1u << REQ_OP_BITS) - 1);
	r->status = status;
	r->flags = flags;
	r->_pad0 = 0;
	tapio_submit(r, sizeof(*r));
}

SEC("tp_btf/block_rq_complete")
int BPF_PROG(block_rq_complete, struct request *rq, __u64 raw_error, unsigned int nr_bytes)
{
	const struct storage_config *cfg;
	struct inflight_io *io;
	__u64 key = (__u64)rq;
	__u64 start_ns, io_start_ns, lat;
	__u32 ambiguous, errno, error, eflag;

	cfg = stor_config();
	if (!cfg)
		return 0;
	error = tapio_rq_error(raw_error, &errno);
	eflag = 0;
	if (errno) {
		error = errno;
		eflag = STOR_REC_F_ERRNO;
	}
	/* Partial completion: the request goes on (rq->__data_len is what was
	 * left before this call). */
	if (nr_bytes < rq->__data_len) {
		if (error)
			tapio_count(STOR_STAT_PARTIAL_ERROR);
		return 0;
	}
	start_ns = rq_start_stamp(rq);
	if (start_ns) {
		io_start_ns = rq->io_start_time_ns;
		if (io_start_ns) {
			start_ns = io_start_ns;
			eflag |= STOR_REC_F_CLOCK_IO_START;
		} else {
			eflag |= STOR_REC_F_CLOCK_ALLOC;
		}
	} else {
		/* Fallback: the issue hook's clock. */
		tapio_count(STOR_STAT_UNSTAMPED);
		io = bpf_map_lookup_elem(&inflight, &key);
		if (!io) {
			tapio_count(STOR_STAT_MISSING_ISSUE);
			return 0;
		}
		start_ns = io->issue_ns;
		ambiguous = io->flags & INFLIGHT_F_AMBIGUOUS;
		bpf_map_delete_elem(&inflight, &key);
		if (ambiguous) {
			tapio_count(STOR_STAT_AMBIGUOUS);
			return 0;
		}
	}
	lat = bpf_ktime_get_ns();
	/* A stamp is never after now on a sane kernel: clamp, never wrap. */
	lat = lat > start_ns ? lat - start_ns : 0;
	if (error && (cfg->hdr.flags & STOR_CFG_IO_ERRORS)) {
		emit(cfg, rq, STOR_REC_IO_ERROR, lat, error, nr_bytes,
		     eflag | (cfg->latency_critical_ns && lat >= cfg->latency_critical_ns ?
				      STOR_REC_F_CRITICAL : 0));
		return 0;
	}
	if (!(cfg->hdr.flags & STOR_CFG_LATENCY) || !cfg->latency_warning_ns ||
	    lat < cfg->latency_warning_ns)
		return 0;
	emit(cfg, rq, STOR_REC_LATENCY, lat, error, nr_bytes,
	     eflag | (cfg->latency_critical_ns && lat >= cfg->latency_critical_ns ?
			      STOR_REC_F_CRITICAL : 0));
	return 0;
}
