/* SPDX-License-Identifier: Apache-2.0 */
/* Kernel-only helpers shared by every Tapio observer object. */
#ifndef __TAPIO_BPF_H
#define __TAPIO_BPF_H

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include "tapio.h"

/* Ring sizes are powers of two and multiples of the page size. */
#ifndef TAPIO_RING_BYTES
#define TAPIO_RING_BYTES (256 * 1024)
#endif
/* Forced wakeup once unread data crosses this fill level (A4). Below it the
 * agent's drain tick picks records up: no per-event wakeup. */
#define TAPIO_WAKEUP_BYTES (TAPIO_RING_BYTES / 4)

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, TAPIO_RING_BYTES);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TAPIO_STAT_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} tapio_stats SEC(".maps");

static __always_inline void tapio_count(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&tapio_stats, &slot);

	if (v)
		*v += 1;
}

/* Returns the active config header, or NULL when the observer must stay
 * silent: cold map (all zeros), disabled, or an ABI it does not speak. */
static __always_inline const struct tapio_config_header *
tapio_config_active(const struct tapio_config_header *hdr)
{
	if (!hdr || hdr->abi_version == 0)
		return NULL;
	if (hdr->abi_version != TAPIO_ABI_VERSION) {
		tapio_count(TAPIO_STAT_ABI_MISMATCH);
		return NULL;
	}
	if (!(hdr->flags & TAPIO_CFG_ENABLED))
		return NULL;
	return hdr;
}

/* Reserves a record, counting a reserve failure as lost. */
static __always_inline void *tapio_reserve(__u32 size)
{
	void *rec = bpf_ringbuf_reserve(&events, size, 0);

	if (!rec)
		tapio_count(TAPIO_STAT_LOST);
	return rec;
}

static __always_inline void tapio_fill_header(struct tapio_record_header *h, __u16 kind,
					      __u16 size, __u64 generation)
{
	h->kind = kind;
	h->size = size;
	h->abi_version = TAPIO_ABI_VERSION;
	h->ts_boot_ns = bpf_ktime_get_boot_ns();
	h->generation = generation;
}

/* Submits without waking userspace, except on the submit that carries unread
 * data across the fill threshold: one wakeup per crossing, not per record. */
static __always_inline void tapio_submit(void *rec, __u32 size)
{
	__u64 avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	__u64 flags = BPF_RB_NO_WAKEUP;

	if (avail >= TAPIO_WAKEUP_BYTES && avail < TAPIO_WAKEUP_BYTES + size + 8) {
		flags = BPF_RB_FORCE_WAKEUP;
		tapio_count(TAPIO_STAT_WAKEUPS);
	}
	bpf_ringbuf_submit(rec, flags);
}

#endif /* __TAPIO_BPF_H */
