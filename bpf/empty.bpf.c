// SPDX-License-Identifier: GPL-2.0-only
/* Empty programs on the scheduler tracepoints the steal collector uses: the
 * benchmark's floor, i.e. what the kernel charges for running any BPF
 * program there (scripts/bench probe-overhead, key floor_pct). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

SEC("tp_btf/sched_wakeup")
int BPF_PROG(vmtide_empty_wakeup, struct task_struct *p)
{
	return 0;
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(vmtide_empty_wakeup_new, struct task_struct *p)
{
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(vmtide_empty_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return 0;
}
