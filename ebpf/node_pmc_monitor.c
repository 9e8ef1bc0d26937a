// SPDX-License-Identifier: Apache-2.0
/*
 * Node PMC observer, kernel side: on every tick of a per-CPU cpu-clock
 * sampling event, read this CPU's counters from the perf event arrays the
 * agent filled and submit one raw snapshot. Deltas, windows and thresholds
 * are userspace's job; nothing is computed here.
 */
#include "vmlinux.h"
#include "tapio.bpf.h"
#include "node_pmc_monitor.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct node_config);
} tapio_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct node_setup);
} pmc_setup SEC(".maps");

/* One perf event fd per CPU per slot; max_entries 0 = possible CPUs. */
#define COUNTER_ARRAY(name)                                                                        \
	struct {                                                                                   \
		__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);                                       \
		__uint(key_size, sizeof(__u32));                                                   \
		__uint(value_size, sizeof(__u32));                                                 \
	} name SEC(".maps")

COUNTER_ARRAY(cycles);
COUNTER_ARRAY(instructions);
COUNTER_ARRAY(stall_frontend);
COUNTER_ARRAY(stall_backend);

static __always_inline void read_slot(void *map, __u32 slot, struct node_sample *r)
{
	struct bpf_perf_event_value v = {};

	if (!(r->event_mask & (1u << slot)))
		return;
	if (bpf_perf_event_read_value(map, BPF_F_CURRENT_CPU, &v, sizeof(v))) {
		tapio_count(NODE_STAT_READ_FAILED);
		return;
	}
	r->ev[slot].counter = v.counter;
	r->ev[slot].enabled_ns = v.enabled;
	r->ev[slot].running_ns = v.running;
	r->read_mask |= 1u << slot;
}

SEC("perf_event")
int perf_cpu_clock(struct bpf_perf_event_data *ctx)
{
	const struct node_config *cfg;
	const struct node_setup *setup;
	struct node_sample *r;
	__u32 zero = 0;

	cfg = bpf_map_lookup_elem(&tapio_config, &zero);
	if (!cfg || !tapio_config_active(&cfg->hdr))
		return 0;
	setup = bpf_map_lookup_elem(&pmc_setup, &zero);
	if (!setup || setup->source == NODE_SRC_NONE || !setup->event_mask)
		return 0;
	r = tapio_reserve(sizeof(*r));
	if (!r)
		return 0;
	__builtin_memset(r, 0, sizeof(*r));
	tapio_fill_header(&r->hdr, NODE_REC_SAMPLE, sizeof(*r), cfg->hdr.generation);
	r->cpu = bpf_get_smp_processor_id();
	r->source = setup->source;
	r->event_mask = setup->event_mask;
	read_slot(&cycles, NODE_EV_CYCLES, r);
	read_slot(&instructions, NODE_EV_INSTRUCTIONS, r);
	read_slot(&stall_frontend, NODE_EV_STALL_FRONTEND, r);
	read_slot(&stall_backend, NODE_EV_STALL_BACKEND, r);
	tapio_submit(r, sizeof(*r));
	return 0;
}
