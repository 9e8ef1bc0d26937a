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

#endif /* __TAPIO_CORE_FIXES_BPF_H */
