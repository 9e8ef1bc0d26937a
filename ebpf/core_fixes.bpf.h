/* SPDX-License-Identifier: Apache-2.0 */
/*
 * CO-RE shims for kernel layouts older than the vmlinux.h the objects are
 * built against. Each names the commit it works around; the branch for the
 * running kernel is chosen by a relocation at load time, the other branch is
 * dead code the verifier never walks.
 */
#ifndef __TAPIO_CORE_FIXES_BPF_H
#define __TAPIO_CORE_FIXES_BPF_H

#include <bpf/bpf_core_read.h>

/* Linux 5.11 merged struct hd_struct into struct block_device (commit
 * 0d02129e76ed, "block: merge struct block_device and struct hd_struct"):
 * before it, rq->part points to an hd_struct whose embedded device carries
 * the partition's dev_t. */
struct hd_struct___tapio {
	struct device __dev;
} __attribute__((preserve_access_index));

struct request___tapio_hd {
	struct hd_struct___tapio *part;
} __attribute__((preserve_access_index));

/* Linux 5.17 removed rq->rq_disk (commit f3fa33acca9f, "block: remove the
 * ->rq_disk field in struct request"); from 5.15 on the queue knows its
 * disk (commit d152c682f03c, "block: add an explicit ->disk backpointer to
 * the request_queue"). */
struct request___tapio_rq_disk {
	struct gendisk *rq_disk;
} __attribute__((preserve_access_index));

#define TAPIO_MINORBITS 20

/* dev_t of the partition (or, without one, the disk) a request targets, in
 * the kernel's encoding (major << 20 | minor); 0 when unknown. */
static __always_inline __u32 tapio_rq_dev(const struct request *rq)
{
	struct gendisk *disk = NULL;
	__u32 dev;

	if (bpf_core_type_exists(struct hd_struct___tapio)) {
		const struct request___tapio_hd *old = (const void *)rq;

		dev = BPF_CORE_READ(old, part, __dev.devt);
	} else {
		dev = BPF_CORE_READ(rq, part, bd_dev);
	}
	if (dev)
		return dev;
	if (bpf_core_field_exists(struct request_queue, disk))
		disk = BPF_CORE_READ(rq, q, disk);
	else if (bpf_core_field_exists(struct request___tapio_rq_disk, rq_disk))
		disk = BPF_CORE_READ((const struct request___tapio_rq_disk *)rq, rq_disk);
	if (!disk)
		return 0;
	return ((__u32)BPF_CORE_READ(disk, major) << TAPIO_MINORBITS) |
	       (__u32)BPF_CORE_READ(disk, first_minor);
}

/*
 * Tracepoints whose argument lists changed. A `btf_trace_<tp>___tapio_*`
 * typedef below spells one argument list; bpf_core_type_exists() on it is
 * true only where the running kernel's own `btf_trace_<tp>` typedef has the
 * same number of compatible arguments (CO-RE compares function prototypes
 * argument by argument), so the program reads only arguments that exist.
 */

/* tcp_retransmit_skb is (sk, skb) in the BTF of Debian's 5.10, 6.1 and
 * 6.12 kernels and (sk, skb, int err) in 6.18's, where it also fires for
 * retransmit attempts that failed (err != 0). */
typedef void (*btf_trace_tcp_retransmit_skb___tapio_err)(void *, const struct sock *,
							   const struct sk_buff *, int);

static __always_inline bool tapio_tcp_retransmit_has_err(void)
{
	return bpf_core_type_exists(btf_trace_tcp_retransmit_skb___tapio_err);
}

/* mark_victim is (int pid) in 5.10's BTF (and in mainline before 6.8) and
 * (struct task_struct *, uid_t) in Debian's 6.1, 6.12 and in 6.18. */
typedef void (*btf_trace_mark_victim___tapio_pid)(void *, int);

static __always_inline bool tapio_mark_victim_takes_pid(void)
{
	return bpf_core_type_exists(btf_trace_mark_victim___tapio_pid);
}

/* sched_process_exit is (task) in the BTF of Debian's 5.10, 6.1 and 6.12
 * kernels and (task, bool group_dead) in 6.18's: there the kernel names the
 * one exiting thread that ended its thread group. */
typedef void (*btf_trace_sched_process_exit___tapio_gd)(void *, struct task_struct *, bool);

static __always_inline bool tapio_exit_has_group_dead(void)
{
	return bpf_core_type_exists(btf_trace_sched_process_exit___tapio_gd);
}

/* block_rq_complete's error is `int` in 5.10's BTF, where the kernel passes
 * blk_status_to_errno(error) (a negative errno), and `blk_status_t` in 6.1
 * and later. Both are integers, so CO-RE cannot tell the prototypes apart;
 * the values can: an errno is negative, a blk_status_t never is. Returns the
 * status, or 0 with the positive errno in *errno when the kernel passed one. */
static __always_inline __u32 tapio_rq_error(__u64 raw, __u32 *errno)
{
	__s32 v = (__s32)raw;

	*errno = 0;
	if (v < 0) {
		*errno = (__u32)(-v);
		return 0;
	}
	return (__u32)v & 0xff;
}

#endif /* __TAPIO_CORE_FIXES_BPF_H */
