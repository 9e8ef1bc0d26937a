/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Container observer ABI: OOM victims and abnormal process exits.
 * Mirrored in crates/tapio-common/src/ebpf/container.rs (size and offset
 * tests).
 */
#ifndef __CONTAINER_MONITOR_H
#define __CONTAINER_MONITOR_H

#include "tapio.h"

#define CONTAINER_COMM_LEN 16

/* container_config.hdr.flags, beyond TAPIO_CFG_ENABLED */
#define CONT_CFG_OOM_KILL (1u << 1)      /* oom/mark_victim */
#define CONT_CFG_ABNORMAL_EXIT (1u << 2) /* sched_process_exit */

/* Config carrier of container_monitor.o (map `tapio_config`, key 0). */
struct container_config {
	struct tapio_config_header hdr;
	__u64 fatal_signals; /* bit (n - 1) set: death by signal n is abnormal */
	__u64 exit_codes[4]; /* bit n set: exit(n) is abnormal; bit 0 never set */
};

/* tapio_record_header.kind */
enum container_record_kind {
	CONT_REC_OOM_KILL = 1,      /* the OOM killer marked a victim */
	CONT_REC_ABNORMAL_EXIT = 2, /* a process died with a configured status */
};

/* container_record.flags */
#define CONT_REC_F_MEMCG_KNOWN (1u << 0) /* memcg_id/usage/limit were read */
#define CONT_REC_F_MEMCG_V1 (1u << 1)    /* the memcg is on a v1 hierarchy */

/* Observer-specific slots of `tapio_stats`. */
enum container_stat {
	CONT_STAT_OOM_MARK_FAILED = 4, /* victim not remembered: its exit may
	                                * be reported as abnormal_exit */
	CONT_STAT_OOM_EXIT_SKIPPED = 5, /* exits of OOM victims not reported */
	CONT_STAT_OOM_VICTIM_UNKNOWN = 6, /* mark_victim gave only a pid whose
	                                   * task was not seen being sent the
	                                   * OOM killer's SIGKILL: not reported */
	CONT_STAT_DEATH_REPEATED = 7,     /* another thread of an already
	                                   * reported death: not reported again */
};

struct container_record {
	struct tapio_record_header hdr;
	__u32 tgid;            /* process id of the victim / dead process */
	__u32 pid;             /* thread: the marked victim thread, or the
	                        * last thread of the process to exit */
	__u8 comm[CONTAINER_COMM_LEN]; /* thread-group leader's comm */
	__u64 memcg_id;        /* cgroup id of the task's memory cgroup (v1:
	                        * the memcg directory's inode); 0 = unknown */
	__u64 cgroup2_id;      /* cgroup id on the default (v2) hierarchy */
	__u64 mem_usage_pages; /* memcg page_counter usage, pages */
	__u64 mem_limit_pages; /* memcg page_counter max, pages, raw: values
	                        * >= PAGE_COUNTER_MAX mean "no limit" */
	__u32 exit_code;       /* task->exit_code (exit only): signal in bits
	                        * 0-6, core dump bit 7, exit(n) as n << 8 */
	__u32 flags;           /* CONT_REC_F_* */
};

#endif /* __CONTAINER_MONITOR_H */
