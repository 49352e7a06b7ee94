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
#define VMTIDE_ABI_VERSION 4

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

/* ---- steal: run-queue wait of tracked vCPU threads (bpf/steal.bpf.c) ----
 *
 * Map `steal_tgid_bits` (array of __u64 words, word tgid / 64, bit
 * tgid % 64) is the one lookup every task pays: a clear bit rejects it. For a
 * thread of a tracked VM process, `steal_tid_bits` (same layout, by tid)
 * says whether it is a vCPU, which leads to `steal_tasks` (hash, tid ->
 * struct vmtide_steal_task), whose tgid is checked again so a recycled tid is
 * never counted.
 *
 * Tier 1 (always on): the `iter/task` program writes one
 * struct vmtide_steal_iter_rec per thread of a tracked VM process; userspace reads the
 * iterator once per tick and turns the monotonic kernel counters into deltas.
 *
 * Detail mode: tp_btf sched_wakeup / sched_wakeup_new / sched_switch time
 * each wait; `steal_hist` (per-CPU array indexed by VM slot) holds a log2 µs
 * histogram and the exact sum, `steal_preempt` (per-CPU hash keyed by
 * (VM slot, tgid)) the wait attributed to each other process. The histogram
 * counters are monotonic and userspace computes deltas; userspace reads the
 * preemptor rows with lookup-and-delete, so each holds the wait since the
 * previous read, and deletes a VM's rows when it stops tracking it.
 *
 * D state (detail mode): any thread of a tracked VM process (vCPU or not)
 * that blocks in TASK_UNINTERRUPTIBLE, TASK_NOLOAD excluded, gets an entry in
 * `steal_dsleep` (hash, tid -> struct vmtide_steal_dsleep) when it leaves the
 * CPU; its sched_wakeup adds the sleep to steal_hist.dstate_ns of the VM
 * (found through `steal_procs`, hash tgid -> VM slot) and deletes the entry.
 */
#define VMTIDE_STEAL_HIST_SLOTS 32 /* log2 of the wait in µs */
#define VMTIDE_STEAL_MAX_VMS_DEFAULT 256
#define VMTIDE_STEAL_MAX_TIDS_DEFAULT 8192
#define VMTIDE_STEAL_MAX_PREEMPTORS_DEFAULT 16384
#define VMTIDE_STEAL_MAX_DSLEEP_DEFAULT 8192 /* threads in D state at once */
#define VMTIDE_STEAL_COMM_LEN 16

/* flags of struct vmtide_steal_iter_rec */
#define VMTIDE_STEAL_REC_VCPU 0x1   /* a tracked vCPU thread: steal counts it */
#define VMTIDE_STEAL_REC_LEADER 0x2 /* the thread group leader: exited_runtime_ns is valid */
#define VMTIDE_STEAL_REC_MM 0x4     /* the leader has an mm: rss_pages is valid */

/* One thread of a tracked VM process (every thread, so userspace gets the
 * process's CPU time and RSS from the same read), written by the iterator
 * (bpf_seq_write). */
struct vmtide_steal_iter_rec {
	__u32 tid;
	__u32 tgid;
	__u64 run_delay_ns;     /* sched_info.run_delay: schedstat field 2 */
	__u64 pcount;           /* sched_info.pcount: schedstat field 3 (timeslices) */
	__u64 sum_exec_runtime_ns; /* se.sum_exec_runtime: schedstat field 1, without the running slice */
	__u32 flags;            /* VMTIDE_STEAL_REC_* */
	__u32 pad;
	/* Leader only: signal->sum_sched_runtime, the CPU time of the process's
	 * threads that exited (what thread_group_cputime() adds to the live
	 * threads' sum for /proc/<pid>/stat). */
	__u64 exited_runtime_ns;
	/* Leader with an mm only: file + anon + shmem resident pages, as
	 * get_mm_rss() counts them for /proc/<pid>/stat field 24. */
	__u64 rss_pages;
};
VMTIDE_STATIC_ASSERT(sizeof(struct vmtide_steal_iter_rec) == 56, "vmtide_steal_iter_rec layout");

/* Per tracked thread; userspace writes tgid/vm_slot, BPF the rest. */
struct vmtide_steal_task {
	__u64 enqueue_ns;     /* bpf_ktime_get_ns() when it became runnable-and-waiting; 0: not waiting */
	__u32 tgid;           /* the VM process: a different task->tgid means a recycled tid */
	__u32 vm_slot;        /* row in steal_hist, key half of steal_preempt */
	__u32 preemptor_tgid; /* who took the CPU when it was preempted; 0: woken, not preempted */
	__u32 _pad;
	char preemptor_comm[VMTIDE_STEAL_COMM_LEN]; /* that process's comm (group leader) */
};
VMTIDE_STATIC_ASSERT(sizeof(struct vmtide_steal_task) == 40, "vmtide_steal_task layout");

/* Per VM slot, per CPU. */
struct vmtide_steal_hist {
	__u64 wait_ns;       /* sum of every timed wait: compare with run_delay */
	__u64 waits;         /* number of waits */
	__u64 self_wait_ns;  /* part of wait_ns spent behind the VM's own threads */
	__u64 dstate_ns;     /* D-state sleep of any thread of the VM, added at its wakeup */
	__u64 slots[VMTIDE_STEAL_HIST_SLOTS]; /* waits by log2(wait µs) */
};
VMTIDE_STATIC_ASSERT(sizeof(struct vmtide_steal_hist) == 32 + 8 * VMTIDE_STEAL_HIST_SLOTS, "vmtide_steal_hist layout");

struct vmtide_steal_preempt_key {
	__u32 vm_slot;
	__u32 tgid; /* the other process */
};
VMTIDE_STATIC_ASSERT(sizeof(struct vmtide_steal_preempt_key) == 8, "vmtide_steal_preempt_key layout");

struct vmtide_steal_preempt_val {
	__u64 wait_ns; /* the VM's wait attributed to this process */
	__u64 waits;
	char comm[VMTIDE_STEAL_COMM_LEN];
};
VMTIDE_STATIC_ASSERT(sizeof(struct vmtide_steal_preempt_val) == 32, "vmtide_steal_preempt_val layout");

/* A thread of a tracked VM asleep in D state; BPF creates and deletes it. */
struct vmtide_steal_dsleep {
	__u64 start_ns; /* bpf_ktime_get_ns() when it blocked */
	__u32 tgid;     /* its process: userspace drops entries of untracked VMs by it */
	__u32 vm_slot;  /* row in steal_hist */
};
VMTIDE_STATIC_ASSERT(sizeof(struct vmtide_steal_dsleep) == 16, "vmtide_steal_dsleep layout");

/* Drop counters (per-CPU array, one element): nothing is lost silently. */
struct vmtide_steal_stats {
	__u64 preempt_map_full; /* a (VM, preemptor) entry could not be created */
	__u64 recycled_tid;     /* a tracked tid now belongs to another process */
	__u64 dsleep_map_full;  /* a D-state sleep could not be timed: steal_dsleep full */
};
VMTIDE_STATIC_ASSERT(sizeof(struct vmtide_steal_stats) == 24, "vmtide_steal_stats layout");

#endif /* VMTIDE_BPF_ABI_H */
