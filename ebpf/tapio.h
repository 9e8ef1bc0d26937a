/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tapio kernel/user ABI shared by every observer object.
 *
 * Single source of truth for the fixed-layout structs that cross the
 * BPF/Rust boundary. Mirrored in crates/tapio-common/src/ebpf.rs, where tests
 * assert the size and every field offset. Fixed-width fields, explicit
 * padding, no implicit holes.
 */
#ifndef __TAPIO_H
#define __TAPIO_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Version of every struct in this file and in ebpf/<observer>.h. A config
 * carrier whose abi_version differs is ignored by the programs (silence), and
 * counted in TAPIO_STAT_ABI_MISMATCH. 0 is the cold map: inert. */
#define TAPIO_ABI_VERSION 1

/* tapio_config_header.flags */
#define TAPIO_CFG_ENABLED (1u << 0)

/* Header of every observer's config carrier (map `tapio_config`, one slot). */
struct tapio_config_header {
	__u32 abi_version; /* TAPIO_ABI_VERSION, or 0 = unconfigured */
	__u32 flags;       /* TAPIO_CFG_* */
	__u64 generation;  /* stamped into every record this config judged */
};

/* Header of every ring-buffer record. */
struct tapio_record_header {
	__u16 kind;        /* observer-specific record kind, never 0 */
	__u16 size;        /* total record size in bytes, header included */
	__u32 abi_version; /* TAPIO_ABI_VERSION of the producer */
	__u64 ts_boot_ns;  /* bpf_ktime_get_boot_ns() when the fact happened */
	__u64 generation;  /* config generation that judged the fact */
};

/* Slots of every object's per-CPU counter array `tapio_stats`. Slots from
 * TAPIO_STAT_OBSERVER_BASE on belong to the observer (see its header). */
enum tapio_stat {
	TAPIO_STAT_LOST = 0,         /* ring-buffer reserve failures */
	TAPIO_STAT_ABI_MISMATCH = 1, /* facts skipped: carrier ABI differs */
	TAPIO_STAT_WAKEUPS = 2,      /* forced wakeups past the fill threshold */
	TAPIO_STAT_OBSERVER_BASE = 4,
	TAPIO_STAT_SLOTS = 16,
};

#endif /* __TAPIO_H */
