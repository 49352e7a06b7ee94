/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/* Kernel-version differences, in one place (STYLE.md rule 3). Each shim
 * names the kernel commit it works around. Included after vmlinux.h. */
#ifndef VMTIDE_CORE_FIXES_BPF_H
#define VMTIDE_CORE_FIXES_BPF_H

#include <bpf/bpf_core_read.h>

/* Kernel commit 2f064a59a11f ("sched: Change task_struct::state", v5.14)
 * renamed task_struct::state to __state and narrowed it to unsigned int. */
struct task_struct___o {
	volatile long int state;
} __attribute__((preserve_access_index));

struct task_struct___x {
	unsigned int __state;
} __attribute__((preserve_access_index));

/* Reads the task state by direct BTF access: valid in tp_btf/fentry
 * programs, where `task` is a trusted kernel pointer. */
static __always_inline __u32 get_task_state(void *task)
{
	struct task_struct___x *t = task;

	if (bpf_core_field_exists(t->__state))
		return t->__state;
	return ((struct task_struct___o *)task)->state;
}

/* Kernel commit f1a7941243c1 ("mm: convert mm's rss stats into
 * percpu_counter", v6.2) turned mm_struct::rss_stat from a struct of
 * atomic_long_t counters into an array of percpu_counter. The field's kind
 * (struct or array) tells the two apart. Indices: MM_FILEPAGES 0,
 * MM_ANONPAGES 1, MM_SWAPENTS 2, MM_SHMEMPAGES 3 (include/linux/mm_types_task.h). */
struct mm_rss_stat___o {
	atomic_long_t count[4];
} __attribute__((preserve_access_index));

struct mm_struct___o {
	struct mm_rss_stat___o rss_stat;
} __attribute__((preserve_access_index));

struct mm_struct___x {
	struct percpu_counter rss_stat[4];
} __attribute__((preserve_access_index));

static __always_inline __s64 mm_counter(void *mm, int member)
{
	struct mm_struct___x *x = mm;
	struct mm_struct___o *o = mm;
	__s64 v = 0;

	if (bpf_core_field_exists(x->rss_stat))
		bpf_core_read(&v, sizeof(v), &x->rss_stat[member].count);
	else
		bpf_core_read(&v, sizeof(v), &o->rss_stat.count[member].counter);
	/* Per-CPU batching can leave a counter briefly negative: the kernel's
	 * get_mm_counter() clamps it the same way. */
	return v < 0 ? 0 : v;
}

/* Resident pages as get_mm_rss() counts them (/proc/<pid>/stat field 24). */
static __always_inline __u64 get_mm_rss_pages(void *mm)
{
	return mm_counter(mm, 0) + mm_counter(mm, 1) + mm_counter(mm, 3);
}

#endif /* VMTIDE_CORE_FIXES_BPF_H */
