// SPDX-License-Identifier: GPL-2.0-only
/* Block I/O of tracked processes: bytes, requests and issue-to-completion
 * latency (log2 µs), attributed to the process that submitted the bio. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "maps.bpf.h"
#include "vmtide/bpf_abi.h"

char LICENSE[] SEC("license") = "GPL";

/* include/linux/blk_types.h: the low REQ_OP_BITS bits of cmd_flags. */
#define VMTIDE_REQ_OP_MASK ((1U << 8) - 1)
#define VMTIDE_REQ_OP_READ 0
#define VMTIDE_REQ_OP_WRITE 1

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VMTIDE_IO_MAX_TRACKED_DEFAULT);
	__type(key, __u32);   /* tgid */
	__type(value, __u32); /* slot */
} io_tracked SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, VMTIDE_IO_MAX_INFLIGHT);
	__type(key, __u64);   /* struct bio * */
	__type(value, __u32); /* slot */
} io_bio_owner SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, VMTIDE_IO_MAX_INFLIGHT);
	__type(key, __u64); /* struct request * */
	__type(value, struct vmtide_io_inflight);
} io_inflight SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VMTIDE_IO_MAX_TRACKED_DEFAULT);
	__type(key, __u32);
	__type(value, struct vmtide_io_counts);
} io_counts SEC(".maps");

/* A request is allocated for a bio, in the submitter's context. Not
 * block_bio_queue: when a bio exceeds the queue's limits it is split, and
 * the split-off part that becomes the request's first bio never passes
 * block_bio_queue (measured here: half of a tracked 1 MiB O_DIRECT write went
 * unattributed when its pages were fragmented). block_getrq sees the final
 * bio. Bios merged into an existing request are counted with that request. */
SEC("tp_btf/block_getrq")
int BPF_PROG(vmtide_io_getrq, struct bio *bio)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u32 *slot = bpf_map_lookup_elem(&io_tracked, &tgid);
	__u64 key = (__u64)bio;

	if (!slot)
		return 0;
	bpf_map_update_elem(&io_bio_owner, &key, slot, BPF_ANY);
	return 0;
}

/* Dispatch to the driver: start the latency clock of a tracked request. */
SEC("tp_btf/block_rq_issue")
int BPF_PROG(vmtide_io_rq_issue, struct request *rq)
{
	struct vmtide_io_inflight inf = {};
	__u64 bio = (__u64)rq->bio;
	__u64 key = (__u64)rq;
	__u32 *slot;

	if (!bio)
		return 0; /* flush and other requests without data */
	slot = bpf_map_lookup_elem(&io_bio_owner, &bio);
	if (!slot)
		return 0;
	inf.issue_ns = bpf_ktime_get_ns();
	inf.slot = *slot;
	bpf_map_update_elem(&io_inflight, &key, &inf, BPF_ANY);
	bpf_map_delete_elem(&io_bio_owner, &bio);
	return 0;
}

/* Completion, possibly in parts: bytes on every part; the request, its
 * latency and the inflight entry when the last part completes. */
SEC("tp_btf/block_rq_complete")
int BPF_PROG(vmtide_io_rq_complete, struct request *rq, blk_status_t error, unsigned int nr_bytes)
{
	__u64 key = (__u64)rq;
	struct vmtide_io_inflight *inf = bpf_map_lookup_elem(&io_inflight, &key);
	struct vmtide_io_counts *c;
	__u32 op, slot;
	bool last;

	if (!inf)
		return 0;
	slot = inf->slot;
	c = bpf_map_lookup_elem(&io_counts, &slot);
	if (!c)
		return 0;
	op = rq->cmd_flags & VMTIDE_REQ_OP_MASK;
	last = nr_bytes >= rq->__data_len;
	if (op == VMTIDE_REQ_OP_READ) {
		c->rd_bytes += nr_bytes;
		c->rd_ops += last;
	} else if (op == VMTIDE_REQ_OP_WRITE) {
		c->wr_bytes += nr_bytes;
		c->wr_ops += last;
	}
	if (last) {
		__u32 s = log2_us_slot(bpf_ktime_get_ns() - inf->issue_ns, VMTIDE_IO_HIST_SLOTS);

		c->lat_hist[s & (VMTIDE_IO_HIST_SLOTS - 1)]++;
		bpf_map_delete_elem(&io_inflight, &key);
	}
	return 0;
}
