/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/* The ABI between vmtide's BPF programs and its C++ userspace: the only
 * header both sides include (STYLE.md rule 1). Plain C, fixed-width types,
 * explicit padding, a static assertion on every struct size; the C++ side
 * checks offsetof() in tests/unit/bpf_abi_test.cc. */
#ifndef VMTIDE_BPF_ABI_H
#define VMTIDE_BPF_ABI_H

#ifndef __bpf__
#include <linux/types.h> /* BPF programs get the __u* types from vmlinux.h */
#endif

#ifdef __cplusplus
#define VMTIDE_STATIC_ASSERT(expr, msg) static_assert(expr, msg)
#else
#define VMTIDE_STATIC_ASSERT(expr, msg) _Static_assert(expr, msg)
#endif

/* Bumped whenever a struct or map layout below changes. */
#define VMTIDE_ABI_VERSION 1

/* ---- ctxsw: per-process context-switch counters (bpf/ctxsw.bpf.c) ----
 *
 * Map `tracked` (hash, tgid -> slot) names the processes to count; map
 * `counts` (per-CPU array indexed by slot) holds monotonic counters that
 * userspace sums over CPUs and turns into deltas. Slots are never reset:
 * userspace takes a baseline when it starts tracking a process.
 */
#define VMTIDE_CTXSW_MAX_TRACKED_DEFAULT 4096

struct vmtide_ctxsw_counts {
	/* The process's thread left the CPU by blocking: counted exactly where
	 * the kernel increments task->nvcsw (__schedule(), !preempt && prev_state). */
	__u64 out_voluntary;
	/* The process's thread left the CPU while still runnable (preempted):
	 * where the kernel increments task->nivcsw. */
	__u64 out_involuntary;
	/* A thread of the process was switched in. */
	__u64 in;
};
VMTIDE_STATIC_ASSERT(sizeof(struct vmtide_ctxsw_counts) == 24, "vmtide_ctxsw_counts layout");

/* ---- dirty: write faults per process after a soft-dirty reset (bpf/dirty.bpf.c) ----
 *
 * The agent clears the soft-dirty bits of a VM process (/proc/<pid>/clear_refs
 * = 4): each first write to a page afterwards is one write-protect fault. The
 * program counts write faults of tracked processes into time buckets from the
 * window's start, which gives the shape of D(tau), the distinct pages dirtied
 * within tau. The exact count at the window's end comes from pagemap (it also
 * corrects for huge pages, where one fault dirties 512 small pages).
 *
 * Map `dirty_tracked` (hash, tgid -> struct vmtide_dirty_window) names the
 * processes and their window; map `dirty_counts` (per-CPU array, index
 * slot * VMTIDE_DIRTY_BUCKETS + bucket) holds monotonic fault counts.
 */
#define VMTIDE_DIRTY_BUCKETS 32
#define VMTIDE_DIRTY_MAX_TRACKED_DEFAULT 1024

struct vmtide_dirty_window {
	__u64 start_ns;  /* bpf_ktime_get_ns() (CLOCK_MONOTONIC) at the reset; 0: no window open */
	__u64 bucket_ns; /* width of one time bucket */
	__u32 slot;      /* row in dirty_counts */
	__u32 _pad;
};
VMTIDE_STATIC_ASSERT(sizeof(struct vmtide_dirty_window) == 24, "vmtide_dirty_window layout");

/* ---- io: block I/O per process (bpf/io.bpf.c) ----
 *
 * A request is attributed to the process that submitted its bio (block_getrq
 * runs in the submitter's context; dispatch may happen later on kblockd). Map
 * `io_tracked` (hash, tgid -> slot) names the processes; `io_bio_owner` and
 * `io_inflight` (LRU hashes, so a lost completion cannot leak an entry) carry
 * the slot from bio to request to completion; `io_counts` (per-CPU array
 * indexed by slot) holds monotonic counters that userspace turns into deltas.
 */
#define VMTIDE_IO_HIST_SLOTS 32 /* log2 of the request latency in µs */
#define VMTIDE_IO_MAX_TRACKED_DEFAULT 1024
#define VMTIDE_IO_MAX_INFLIGHT 16384

struct vmtide_io_counts {
	__u64 rd_bytes;
	__u64 wr_bytes;
	__u64 rd_ops; /* requests completed */
	__u64 wr_ops;
	__u64 lat_hist[VMTIDE_IO_HIST_SLOTS]; /* completed requests by log2(issue-to-completion µs) */
};
VMTIDE_STATIC_ASSERT(sizeof(struct vmtide_io_counts) == 32 + 8 * VMTIDE_IO_HIST_SLOTS, "vmtide_io_counts layout");

struct vmtide_io_inflight {
	__u64 issue_ns; /* bpf_ktime_get_ns() at block_rq_issue */
	__u32 slot;
	__u32 _pad;
};
VMTIDE_STATIC_ASSERT(sizeof(struct vmtide_io_inflight) == 16, "vmtide_io_inflight layout");

#endif /* VMTIDE_BPF_ABI_H */
