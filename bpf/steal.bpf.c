// SPDX-License-Identifier: GPL-2.0-only
/* CPU steal of tracked vCPU threads: the time they were runnable and waited
 * for a CPU. Tier 1 is a task iterator that copies the kernel's own
 * schedstat counters (nothing in the hot path); detail mode times each wait
 * from tp_btf sched_wakeup / sched_wakeup_new / sched_switch into a per-VM
 * log2 histogram and attributes it to the process that held the CPU. The
 * same programs time the D-state sleeps of every thread of a tracked VM
 * process (I/O threads too), from sched_switch's prev_state to the wakeup. */
/* vmlinux.h first: the other headers use its types. */
/* clang-format off */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "core_fixes.bpf.h"
#include "maps.bpf.h"
#include "vmtide/bpf_abi.h"
/* clang-format on */

char LICENSE[] SEC("license") = "GPL";

/* Kernel commit fa2c3254d7cf (v5.18) added prev_state to sched_switch;
 * bpf/ctxsw.bpf.c explains why it is the better source. Set from BTF. */
const volatile bool has_prev_state_arg = false;

/* include/linux/sched.h: the task state bits a D-state sleep is made of.
 * TASK_KILLABLE is UNINTERRUPTIBLE | WAKEKILL and counts; TASK_IDLE is
 * UNINTERRUPTIBLE | NOLOAD (kernel threads idling, kept out of the load
 * average) and does not, as in the kernel's own sched_contributes_to_load. */
#define VMTIDE_TASK_RUNNING 0x0000
#define VMTIDE_TASK_UNINTERRUPTIBLE 0x0002
#define VMTIDE_TASK_NOLOAD 0x0400

/* Bit tgid % 64 of word tgid / 64: set for tracked VM processes; and the
 * same by tid for their tracked vCPU threads. Userspace sizes both from
 * pid_max before load. A lookup in an ARRAY map is inlined by the verifier,
 * so an untracked task costs a bounds check and one load: the tgid bit is
 * tested first, and a task outside every tracked VM stops there. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} steal_tgid_bits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} steal_tid_bits SEC(".maps");

/* tgid -> VM slot: read only when a thread of a tracked VM blocks in D. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VMTIDE_STEAL_MAX_VMS_DEFAULT);
	__type(key, __u32);
	__type(value, __u32);
} steal_procs SEC(".maps");

/* tid -> the D-state sleep in progress. Preallocated (the default): no
 * allocation under the run-queue lock. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VMTIDE_STEAL_MAX_DSLEEP_DEFAULT);
	__type(key, __u32);
	__type(value, struct vmtide_steal_dsleep);
} steal_dsleep SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VMTIDE_STEAL_MAX_TIDS_DEFAULT);
	__type(key, __u32);
	__type(value, struct vmtide_steal_task);
} steal_tasks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VMTIDE_STEAL_MAX_VMS_DEFAULT);
	__type(key, __u32);
	__type(value, struct vmtide_steal_hist);
} steal_hist SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, VMTIDE_STEAL_MAX_PREEMPTORS_DEFAULT);
	__type(key, struct vmtide_steal_preempt_key);
	__type(value, struct vmtide_steal_preempt_val);
} steal_preempt SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vmtide_steal_stats);
} steal_stats SEC(".maps");

static __always_inline bool bit_set(void *bitmap, __u32 id)
{
	__u32 word = id / 64;
	__u64 *bits = bpf_map_lookup_elem(bitmap, &word);

	return bits && (*bits & (1ULL << (id % 64)));
}

/* The filter every task goes through first: one inlined array lookup. */
static __always_inline bool tgid_tracked(__u32 tgid) { return bit_set(&steal_tgid_bits, tgid); }

/* A vCPU thread (its process already passed tgid_tracked()). */
static __always_inline bool tid_tracked(__u32 tid) { return bit_set(&steal_tid_bits, tid); }

static __always_inline void count_drop(bool dsleep)
{
	__u32 zero = 0;
	struct vmtide_steal_stats *s = bpf_map_lookup_elem(&steal_stats, &zero);

	if (!s)
		return;
	if (dsleep)
		s->dsleep_map_full++;
	else
		s->preempt_map_full++;
}

/* The entry of a tracked thread, or NULL if its tid was recycled. */
static __always_inline struct vmtide_steal_task *task_entry(struct task_struct *t, __u32 tid)
{
	struct vmtide_steal_task *e = bpf_map_lookup_elem(&steal_tasks, &tid);
	__u32 zero = 0;

	if (e && e->tgid != (__u32)t->tgid) {
		struct vmtide_steal_stats *s = bpf_map_lookup_elem(&steal_stats, &zero);

		if (s)
			s->recycled_tid++;
		return NULL;
	}
	return e;
}

/* The process name of `t` (its group leader's comm), by direct BTF reads. */
static __always_inline void copy_comm(char *dst, struct task_struct *t)
{
	struct task_struct *leader = t->group_leader;
	__u64 *d = (__u64 *)dst;

	if (!leader)
		leader = t;
	d[0] = *(__u64 *)&leader->comm[0];
	d[1] = *(__u64 *)&leader->comm[8];
}

/* A thread of a tracked VM left the CPU in D state: start timing it. */
static __always_inline void dsleep_begin(__u32 tid, __u32 tgid)
{
	__u32 *slot = bpf_map_lookup_elem(&steal_procs, &tgid);
	struct vmtide_steal_dsleep d;

	if (!slot) /* being untracked */
		return;
	d.start_ns = bpf_ktime_get_ns();
	d.tgid = tgid;
	d.vm_slot = *slot;
	if (bpf_map_update_elem(&steal_dsleep, &tid, &d, BPF_ANY))
		count_drop(true);
}

/* `p` (of a tracked VM) was woken: end its D-state sleep, if it had one.
 * Every sleep that blocked ends in try_to_wake_up(), which fires
 * sched_wakeup, so nothing needs checking at switch-in. */
static __always_inline void dsleep_end(struct task_struct *p, __u32 tid)
{
	struct vmtide_steal_dsleep *d = bpf_map_lookup_elem(&steal_dsleep, &tid);
	struct vmtide_steal_hist *h;
	__u32 slot;

	if (!d)
		return;
	slot = d->vm_slot;
	/* A different tgid: the entry outlived its thread (tid recycled). */
	if (d->tgid == (__u32)p->tgid) {
		h = bpf_map_lookup_elem(&steal_hist, &slot);
		if (h) /* per-CPU value: a plain add */
			h->dstate_ns += bpf_ktime_get_ns() - d->start_ns;
	}
	bpf_map_delete_elem(&steal_dsleep, &tid);
}

/* Mirrors sched_info_enqueue() (kernel/sched/stats.h): the first
 * enqueue stamp wins until the task runs. */
static __always_inline void mark_waiting(struct task_struct *p, bool woken)
{
	__u32 tid = p->pid;
	struct vmtide_steal_task *e;

	if (!tgid_tracked(p->tgid))
		return;
	if (woken)
		dsleep_end(p, tid);
	if (!tid_tracked(tid))
		return;
	e = task_entry(p, tid);
	if (!e || e->enqueue_ns)
		return;
	e->enqueue_ns = bpf_ktime_get_ns();
	e->preemptor_tgid = 0;
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(vmtide_steal_wakeup, struct task_struct *p)
{
	mark_waiting(p, true);
	return 0;
}

/* A new task has never slept. */
SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(vmtide_steal_wakeup_new, struct task_struct *p)
{
	mark_waiting(p, false);
	return 0;
}

static __always_inline void account_preemptor(__u32 vm_slot, __u32 tgid, const char *comm,
					      __u64 delta)
{
	struct vmtide_steal_preempt_key key = {.vm_slot = vm_slot, .tgid = tgid};
	struct vmtide_steal_preempt_val *v = bpf_map_lookup_elem(&steal_preempt, &key);

	if (!v) {
		struct vmtide_steal_preempt_val init = {};

		__builtin_memcpy(init.comm, comm, sizeof(init.comm));
		bpf_map_update_elem(&steal_preempt, &key, &init, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&steal_preempt, &key);
		if (!v) {
			count_drop(false);
			return;
		}
	}
	/* Per-CPU value: plain writes. The name is refreshed each time: a
	 * process may exec after its first preemption (a shell becoming the
	 * program it runs), and the current name is the useful one. */
	__builtin_memcpy(v->comm, comm, sizeof(v->comm));
	v->wait_ns += delta;
	v->waits++;
}

/* `next` (tracked) gets the CPU after `prev` ran: mirrors sched_info_arrive(). */
static __always_inline void switch_in(struct task_struct *next, struct task_struct *prev, __u32 tid)
{
	struct vmtide_steal_task *e = task_entry(next, tid);
	struct vmtide_steal_hist *h;
	__u32 tgid, slot;
	__u64 delta;

	if (!e || !e->enqueue_ns)
		return;
	delta = bpf_ktime_get_ns() - e->enqueue_ns;
	e->enqueue_ns = 0;
	slot = e->vm_slot;
	h = bpf_map_lookup_elem(&steal_hist, &slot);
	if (!h)
		return;
	h->wait_ns += delta;
	h->waits++;
	h->slots[log2_us_slot(delta, VMTIDE_STEAL_HIST_SLOTS)]++;

	/* Who held the CPU: the task that preempted it or, for a wait after a
	 * wakeup, the task that ran just before it (not the idle task). */
	tgid = e->preemptor_tgid;
	if (tgid == e->tgid) {
		h->self_wait_ns += delta;
	} else if (tgid) {
		account_preemptor(slot, tgid, e->preemptor_comm, delta);
	} else if (prev->pid) {
		char comm[VMTIDE_STEAL_COMM_LEN];

		tgid = prev->tgid;
		if (tgid == e->tgid) {
			h->self_wait_ns += delta;
		} else {
			copy_comm(comm, prev);
			account_preemptor(slot, tgid, comm, delta);
		}
	}
}

/* Not BPF_PROG(): before v5.18 the tracepoint has three arguments and
 * reading ctx[3] unconditionally would fail verification. */
SEC("tp_btf/sched_switch")
int vmtide_steal_switch(u64 *ctx)
{
	bool preempt = (bool)ctx[0];
	struct task_struct *prev = (struct task_struct *)ctx[1];
	struct task_struct *next = (struct task_struct *)ctx[2];
	__u32 prev_tid = prev->pid, next_tid = next->pid;

	if (tgid_tracked(prev->tgid)) {
		__u32 state = has_prev_state_arg ? (__u32)ctx[3] : get_task_state(prev);

		/* Blocked in D. Not when preempted (still runnable, whatever its
		 * state), nor when a pending signal kept it runnable: __schedule()
		 * then sets __state back to TASK_RUNNING before this tracepoint,
		 * while prev_state still says D (kernel commit fa2c3254d7cf). */
		if (!preempt && (state & VMTIDE_TASK_UNINTERRUPTIBLE) &&
		    !(state & VMTIDE_TASK_NOLOAD) &&
		    (!has_prev_state_arg || get_task_state(prev) != VMTIDE_TASK_RUNNING))
			dsleep_begin(prev_tid, prev->tgid);
		if (tid_tracked(prev_tid)) {
			struct vmtide_steal_task *e = task_entry(prev, prev_tid);

			if (e) {
				/* sched_info_depart(): still runnable, so it waits
				 * again from now, behind `next`. */
				if (state == 0) {
					if (!e->enqueue_ns) {
						e->enqueue_ns = bpf_ktime_get_ns();
						e->preemptor_tgid = next->tgid;
						copy_comm(e->preemptor_comm, next);
					}
				} else {
					e->enqueue_ns = 0;
				}
			}
		}
	}
	if (tgid_tracked(next->tgid) && tid_tracked(next_tid))
		switch_in(next, prev, next_tid);
	return 0;
}

/* Tier 1: one record per thread of a tracked VM process, for all VMs in
 * one read. The vCPU threads' records carry steal; the leader's also carry
 * what the process's CPU time and RSS need, so userspace reads no
 * /proc/<pid>/stat per VM. */
SEC("iter/task")
int vmtide_steal_iter(struct bpf_iter__task *ctx)
{
	struct task_struct *t = ctx->task;
	struct vmtide_steal_iter_rec rec = {};
	struct mm_struct *mm;
	__u32 tid, tgid;

	if (!t)
		return 0;
	tgid = t->tgid;
	if (!tgid_tracked(tgid))
		return 0;
	tid = t->pid;
	rec.tid = tid;
	rec.tgid = tgid;
	rec.run_delay_ns = t->sched_info.run_delay;
	rec.pcount = t->sched_info.pcount;
	rec.sum_exec_runtime_ns = t->se.sum_exec_runtime;
	if (tid_tracked(tid))
		rec.flags |= VMTIDE_STEAL_REC_VCPU;
	if (tid == tgid) {
		rec.flags |= VMTIDE_STEAL_REC_LEADER;
		rec.exited_runtime_ns = BPF_CORE_READ(t, signal, sum_sched_runtime);
		mm = t->mm;
		if (mm) {
			rec.flags |= VMTIDE_STEAL_REC_MM;
			rec.rss_pages = get_mm_rss_pages(mm);
		}
	}
	bpf_seq_write(ctx->meta->seq, &rec, sizeof(rec));
	return 0;
}
