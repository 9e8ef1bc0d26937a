// SPDX-License-Identifier: Apache-2.0
/*
 * Synthetic ring-buffer producer for the drain-loop benchmark
 * (crates/tapio-agent/benches/hot_path.rs). One BPF_PROG_TEST_RUN of
 * `produce` submits up to `cfg.count` copies of the network record in
 * `tmpl` (a refused connect), each with a fresh boot-time stamp and a
 * varying source port, without waking userspace. Not part of the agent.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "network_monitor.h"

char LICENSE[] SEC("license") = "GPL";

#ifndef PRODUCER_RING_BYTES
#define PRODUCER_RING_BYTES (4 * 1024 * 1024)
#endif

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, PRODUCER_RING_BYTES);
} events SEC(".maps");

struct producer_cfg {
	struct network_record tmpl;
	__u32 count;
	__u32 _pad0;
	__u64 lost;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct producer_cfg);
} producer SEC(".maps");

/* bpf_loop() takes a stack pointer as the callback context. */
struct loop_ctx {
	struct producer_cfg *cfg;
};

static long produce_one(__u32 i, void *ctx)
{
	struct producer_cfg *cfg = ((struct loop_ctx *)ctx)->cfg;
	struct network_record *r;

	r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (!r) {
		__sync_fetch_and_add(&cfg->lost, 1);
		return 1;
	}
	__builtin_memcpy(r, &cfg->tmpl, sizeof(*r));
	r->hdr.ts_boot_ns = bpf_ktime_get_boot_ns();
	r->sport = 32768 + (i & 0x7fff);
	bpf_ringbuf_submit(r, BPF_RB_NO_WAKEUP);
	return 0;
}

SEC("raw_tp/sys_enter")
int produce(void *ctx)
{
	__u32 zero = 0;
	struct producer_cfg *cfg = bpf_map_lookup_elem(&producer, &zero);
	struct loop_ctx lc;

	if (!cfg)
		return 0;
	lc.cfg = cfg;
	bpf_loop(cfg->count, produce_one, &lc, 0);
	return 0;
}
