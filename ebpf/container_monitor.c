// SPDX-License-Identifier: Apache-2.0
/*
 * Container observer, kernel side: OOM victims and abnormal process exits.
 *
 * Every fact is read from the task the tracepoint names (the victim, the
 * exiting task), never from `current`: mark_victim runs in the context of
 * whichever task hit the limit. The memory cgroup is the victim's own memcg
 * (v1 or v2 hierarchy, whichever carries the memory controller).
 *
 * An OOM victim's later death (SIGKILL from the OOM killer, or whatever it
 * was already dying of) is not an abnormal exit: mark_victim remembers the
 * process, identified by tgid and the leader's start time so a recycled pid
 * is never mistaken for it, and its exit is skipped and counted.
 */
#include "vmlinux.h"
#include "tapio.bpf.h"
#include "core_fixes.bpf.h"
#include "container_monitor.h"

char LICENSE[] SEC("license") = "GPL";

#define OOM_VICTIMS_MAX 1024

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct container_config);
} tapio_config SEC(".maps");

/* tgid -> start_time of the thread-group leader, from mark to exit. LRU: a
 * victim whose exit is never seen (observer reconfigured) ages out. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, OOM_VICTIMS_MAX);
	__type(key, __u32);
	__type(value, __u64);
} oom_victims SEC(".maps");

/* Where mark_victim gives only the victim's pid (see core_fixes.bpf.h), the
 * task comes from the SIGKILL the OOM killer sends it just before marking
 * it (__oom_kill_process: do_send_sig_info(SIGKILL, SEND_SIG_PRIV, victim)
 * then mark_oom_victim(victim)). pid -> that task, with the task's start
 * time so a recycled task_struct is never read as the victim. */
#define OOM_KILLED_MAX 256
#define SIGKILL 9
#define SEND_SIG_PRIV ((void *)1)

struct oom_killed {
	__u64 task;       /* struct task_struct * */
	__u64 start_time; /* task->start_time when the SIGKILL was sent */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, OOM_KILLED_MAX);
	__type(key, __u32);
	__type(value, struct oom_killed);
} sigkilled SEC(".maps");

/* Deaths already reported, by process (tgid and the leader's start time):
 * where the tracepoint has no group_dead, threads of a group kill exiting
 * together can all see signal->live == 0; only the first is reported. */
#define DEATHS_MAX 1024

struct death_key {
	__u32 tgid;
	__u32 _pad0;
	__u64 start_time;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, DEATHS_MAX);
	__type(key, struct death_key);
	__type(value, __u8);
} deaths SEC(".maps");

static __always_inline const struct container_config *cont_config(__u32 need)
{
	__u32 zero = 0;
	const struct container_config *cfg = bpf_map_lookup_elem(&tapio_config, &zero);

	if (!cfg || !tapio_config_active(&cfg->hdr))
		return NULL;
	if (!(cfg->hdr.flags & need))
		return NULL;
	return cfg;
}

/* The configured filter: death by a listed signal, or exit(n) with a listed n. */
static __always_inline bool exit_is_abnormal(const struct container_config *cfg, __u32 code)
{
	__u32 sig = code & 0x7f;
	__u32 status = (code >> 8) & 0xff;

	if (sig)
		return sig <= 64 && ((cfg->fatal_signals >> (sig - 1)) & 1);
	return (cfg->exit_codes[status >> 6] >> (status & 63)) & 1;
}

/* Cgroup ids of `t`; with `usage`, the memcg's usage and limit too. */
static __always_inline void fill_cgroups(struct container_record *r, struct task_struct *t,
					 bool usage)
{
	struct cgroup_subsys_state *css = NULL;
	struct css_set *cset;
	struct mem_cgroup *memcg;
	struct cgroup *cg, *dfl;
	int id;

	cset = BPF_CORE_READ(t, cgroups);
	if (!cset)
		return;
	dfl = BPF_CORE_READ(cset, dfl_cgrp);
	r->cgroup2_id = BPF_CORE_READ(dfl, kn, id);
	if (!bpf_core_enum_value_exists(enum cgroup_subsys_id, memory_cgrp_id))
		return;
	id = bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id);
	if (id < 0 || id >= 16)
		return;
	bpf_probe_read_kernel(&css, sizeof(css), &cset->subsys[id]);
	if (!css)
		return;
	cg = BPF_CORE_READ(css, cgroup);
	r->memcg_id = BPF_CORE_READ(cg, kn, id);
	r->flags |= CONT_REC_F_MEMCG_KNOWN;
	if (BPF_CORE_READ(cg, root) != BPF_CORE_READ(dfl, root))
		r->flags |= CONT_REC_F_MEMCG_V1;
	if (!usage)
		return;
	memcg = (struct mem_cgroup *)((void *)css - bpf_core_field_offset(struct mem_cgroup, css));
	r->mem_usage_pages = BPF_CORE_READ(memcg, memory.usage.counter);
	r->mem_limit_pages = BPF_CORE_READ(memcg, memory.max);
}

static __always_inline void fill_task(struct container_record *r, struct task_struct *t)
{
	r->tgid = BPF_CORE_READ(t, tgid);
	r->pid = BPF_CORE_READ(t, pid);
	BPF_CORE_READ_STR_INTO(&r->comm, t, group_leader, comm);
}

/* The task behind a pid-only mark_victim: the one that was just sent the
 * kernel's own SIGKILL, still alive under the same pid. NULL when unknown. */
static __always_inline struct task_struct *victim_of_pid(__u32 pid)
{
	struct oom_killed *k = bpf_map_lookup_elem(&sigkilled, &pid);
	struct task_struct *t;

	if (!k)
		return NULL;
	t = (struct task_struct *)k->task;
	if (BPF_CORE_READ(t, pid) != pid || BPF_CORE_READ(t, start_time) != k->start_time)
		t = NULL;
	bpf_map_delete_elem(&sigkilled, &pid);
	return t;
}

SEC("tp_btf/signal_generate")
int BPF_PROG(signal_generate, int sig, struct kernel_siginfo *info, struct task_struct *task)
{
	struct oom_killed k;
	__u32 pid;

	/* Only kernels whose mark_victim lacks the task need this. */
	if (!tapio_mark_victim_takes_pid() || sig != SIGKILL || info != SEND_SIG_PRIV)
		return 0;
	if (!cont_config(CONT_CFG_OOM_KILL | CONT_CFG_ABNORMAL_EXIT))
		return 0;
	pid = BPF_CORE_READ(task, pid);
	k.task = (__u64)task;
	k.start_time = BPF_CORE_READ(task, start_time);
	bpf_map_update_elem(&sigkilled, &pid, &k, BPF_ANY);
	return 0;
}

SEC("tp_btf/mark_victim")
int BPF_PROG(mark_victim)
{
	const struct container_config *cfg;
	struct container_record *r;
	struct task_struct *t;
	__u64 start;
	__u32 tgid;

	cfg = cont_config(CONT_CFG_OOM_KILL | CONT_CFG_ABNORMAL_EXIT);
	if (!cfg)
		return 0;
	if (tapio_mark_victim_takes_pid()) {
		t = victim_of_pid((__u32)ctx[0]);
		if (!t) {
			tapio_count(CONT_STAT_OOM_VICTIM_UNKNOWN);
			return 0;
		}
	} else {
		t = (struct task_struct *)ctx[0];
	}
	if (cfg->hdr.flags & CONT_CFG_ABNORMAL_EXIT) {
		tgid = BPF_CORE_READ(t, tgid);
		start = BPF_CORE_READ(t, group_leader, start_time);
		if (bpf_map_update_elem(&oom_victims, &tgid, &start, BPF_ANY))
			tapio_count(CONT_STAT_OOM_MARK_FAILED);
	}
	if (!(cfg->hdr.flags & CONT_CFG_OOM_KILL))
		return 0;
	r = tapio_reserve(sizeof(*r));
	if (!r)
		return 0;
	__builtin_memset(r, 0, sizeof(*r));
	tapio_fill_header(&r->hdr, CONT_REC_OOM_KILL, sizeof(*r), cfg->hdr.generation);
	fill_task(r, t);
	fill_cgroups(r, t, true);
	tapio_submit(r, sizeof(*r));
	return 0;
}

/* True for exactly one exiting thread per process: the one the kernel says
 * ended the group where the tracepoint carries group_dead, else the first
 * thread to see signal->live at zero (remembered in `deaths`). */
static __always_inline bool ends_process(unsigned long long *ctx, struct task_struct *p)
{
	struct death_key k = {};
	__u8 one = 1;

	if (tapio_exit_has_group_dead())
		return (bool)ctx[1];
	if (p->signal->live.counter != 0)
		return false;
	k.tgid = p->tgid;
	k.start_time = BPF_CORE_READ(p, group_leader, start_time);
	if (bpf_map_update_elem(&deaths, &k, &one, BPF_NOEXIST)) {
		tapio_count(CONT_STAT_DEATH_REPEATED);
		return false;
	}
	return true;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(sched_process_exit, struct task_struct *p)
{
	const struct container_config *cfg;
	struct container_record *r;
	__u64 *marked;
	__u32 code, tgid;

	/* Hot path: most tasks exit(0). */
	code = p->exit_code;
	if (!code)
		return 0;
	cfg = cont_config(CONT_CFG_ABNORMAL_EXIT);
	if (!cfg || !exit_is_abnormal(cfg, code))
		return 0;
	/* Once per process. On a group exit (signal, exit_group) every
	 * thread carries the group's exit code. */
	if (!ends_process(ctx, p))
		return 0;
	tgid = p->tgid;
	marked = bpf_map_lookup_elem(&oom_victims, &tgid);
	if (marked) {
		if (*marked == BPF_CORE_READ(p, group_leader, start_time)) {
			bpf_map_delete_elem(&oom_victims, &tgid);
			tapio_count(CONT_STAT_OOM_EXIT_SKIPPED);
			return 0;
		}
	}
	r = tapio_reserve(sizeof(*r));
	if (!r)
		return 0;
	__builtin_memset(r, 0, sizeof(*r));
	tapio_fill_header(&r->hdr, CONT_REC_ABNORMAL_EXIT, sizeof(*r), cfg->hdr.generation);
	fill_task(r, p);
	fill_cgroups(r, p, false);
	r->exit_code = code;
	tapio_submit(r, sizeof(*r));
	return 0;
}
