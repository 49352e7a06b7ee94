// SPDX-License-Identifier: GPL-2.0-only
/* Per-process context-switch counters for tracked processes: the first
 * vmtide program, and the pattern the collectors follow (reject untracked
 * tasks with one lookup, per-CPU monotonic counters, deltas in userspace). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "core_fixes.bpf.h"
#include "vmtide/bpf_abi.h"

char LICENSE[] SEC("license") = "GPL";

/* Load-time configuration (set in the skeleton's rodata before load).
 *
 * Kernel commit fa2c3254d7cf ("sched/tracing: Don't re-read p->state when
 * emitting sched_switch event", v5.18) added prev_state as the fourth
 * argument of sched_switch: the state __schedule() decided on, which can
 * differ from prev->__state when a pending signal made the task runnable
 * again. Userspace reads the tracepoint's arity from the kernel's BTF
 * (clang 14 has no bpf_core_type_matches()); the verifier prunes the
 * branch not taken, so older kernels never see the ctx[3] access. */
const volatile bool has_prev_state_arg = false;

/* tgid -> slot in `counts`. Userspace sizes both maps before load. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VMTIDE_CTXSW_MAX_TRACKED_DEFAULT);
	__type(key, __u32);
	__type(value, __u32);
} tracked SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VMTIDE_CTXSW_MAX_TRACKED_DEFAULT);
	__type(key, __u32);
	__type(value, struct vmtide_ctxsw_counts);
} counts SEC(".maps");

static __always_inline struct vmtide_ctxsw_counts *counts_of(struct task_struct *t)
{
	__u32 tgid = t->tgid; /* direct BTF read: no probe-read helper call */
	__u32 *slot = bpf_map_lookup_elem(&tracked, &tgid);

	return slot ? bpf_map_lookup_elem(&counts, slot) : NULL;
}

/* Not BPF_PROG(): on kernels before v5.18 the tracepoint has three
 * arguments and reading ctx[3] unconditionally would fail verification. */
SEC("tp_btf/sched_switch")
int vmtide_ctxsw(u64 *ctx)
{
	bool preempt = (bool)ctx[0];
	struct task_struct *prev = (struct task_struct *)ctx[1];
	struct task_struct *next = (struct task_struct *)ctx[2];
	struct vmtide_ctxsw_counts *c;
	__u32 prev_state;

	c = counts_of(prev);
	if (c) {
		if (has_prev_state_arg)
			prev_state = (__u32)ctx[3];
		else
			prev_state = get_task_state(prev);
		/* Per-CPU slot: plain increments, no atomics needed. */
		if (!preempt && prev_state)
			c->out_voluntary++;
		else
			c->out_involuntary++;
	}
	c = counts_of(next);
	if (c)
		c->in++;
	return 0;
}
