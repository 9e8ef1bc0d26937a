/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Node PMC observer ABI: per-CPU counter snapshots (cycles, instructions,
 * stalled cycles) read by the BPF program from perf events the agent opened.
 * Mirrored in crates/tapio-common/src/ebpf/node.rs (size and offset tests).
 */
#ifndef __NODE_PMC_MONITOR_H
#define __NODE_PMC_MONITOR_H

#include "tapio.h"

/* Counter slots: index into node_sample.ev and bit in the event masks.
 * Each slot has its own BPF_MAP_TYPE_PERF_EVENT_ARRAY, indexed by CPU. */
enum node_event {
	NODE_EV_CYCLES = 0,         /* PERF_COUNT_HW_CPU_CYCLES (required) */
	NODE_EV_INSTRUCTIONS = 1,   /* PERF_COUNT_HW_INSTRUCTIONS */
	NODE_EV_STALL_FRONTEND = 2, /* PERF_COUNT_HW_STALLED_CYCLES_FRONTEND */
	NODE_EV_STALL_BACKEND = 3,  /* PERF_COUNT_HW_STALLED_CYCLES_BACKEND */
	NODE_EVENTS = 4,
};

/* node_setup.source: what the slots count. In NODE_SRC_SOFTWARE_TEST the
 * slots hold software events (cpu-clock, context-switches, page-faults,
 * cpu-migrations) and every output says so; never a default. */
enum node_counter_source {
	NODE_SRC_NONE = 0, /* not set up: the program stays silent */
	NODE_SRC_HARDWARE = 1,
	NODE_SRC_SOFTWARE_TEST = 2,
};

/* Period of the cpu-clock sampling event that runs the program on every
 * online CPU: one snapshot per CPU per period. */
#define NODE_SAMPLE_PERIOD_MS 500

/* Config carrier of node_pmc_monitor.o (map `tapio_config`, key 0). The
 * thresholds are judged in userspace: the kernel needs only the header. */
struct node_config {
	struct tapio_config_header hdr;
};

/* What the agent opened (map `pmc_setup`, key 0), written once at attach
 * before the sampling event is attached. */
struct node_setup {
	__u32 source;     /* NODE_SRC_* */
	__u32 event_mask; /* bit NODE_EV_*: opened on every online CPU */
};

/* tapio_record_header.kind */
enum node_record_kind {
	NODE_REC_SAMPLE = 1, /* one CPU's counter snapshot */
};

/* Observer-specific slots of `tapio_stats`. */
enum node_stat {
	NODE_STAT_READ_FAILED = 4, /* bpf_perf_event_read_value of an opened event failed */
};

/* bpf_perf_event_read_value() result: the raw 64-bit count and the times
 * the event was enabled and actually counting (running < enabled means
 * the PMU multiplexed it). */
struct node_counter {
	__u64 counter;
	__u64 enabled_ns;
	__u64 running_ns;
};

struct node_sample {
	struct tapio_record_header hdr;
	__u32 cpu;        /* CPU the snapshot was taken on */
	__u32 source;     /* node_setup.source at the snapshot */
	__u32 event_mask; /* node_setup.event_mask at the snapshot */
	__u32 read_mask;  /* slots read successfully in this snapshot */
	struct node_counter ev[NODE_EVENTS];
};

#endif /* __NODE_PMC_MONITOR_H */
