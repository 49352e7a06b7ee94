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

#endif /* VMTIDE_CORE_FIXES_BPF_H */
