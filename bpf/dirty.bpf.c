// SPDX-License-Identifier: GPL-2.0-only
/* Write faults of tracked processes, bucketed by time since their soft-dirty
 * reset: the shape of the dirty-page curve D(tau) (include/vmtide/bpf_abi.h
 * explains the scheme). Untracked processes cost one hash lookup. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "vmtide/bpf_abi.h"

char LICENSE[] SEC("license") = "GPL";

/* arch/x86/include/asm/trap_pf.h: error_code bit 1 is X86_PF_WRITE. */
#define X86_PF_WRITE (1UL << 1)

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VMTIDE_DIRTY_MAX_TRACKED_DEFAULT);
	__type(key, __u32);
	__type(value, struct vmtide_dirty_window);
} dirty_tracked SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VMTIDE_DIRTY_MAX_TRACKED_DEFAULT * VMTIDE_DIRTY_BUCKETS);
	__type(key, __u32);
	__type(value, __u64);
} dirty_counts SEC(".maps");

/* exceptions:page_fault_user fires for every user-mode fault on x86, before
 * the fault is handled: a write to a page whose soft-dirty bit was cleared
 * (write-protected by clear_refs) is one such fault, as is the first write
 * to a page never touched before. Both are pages newly dirtied. */
SEC("tp_btf/page_fault_user")
int BPF_PROG(vmtide_dirty_fault, unsigned long address, struct pt_regs *regs,
	     unsigned long error_code)
{
	struct vmtide_dirty_window *w;
	__u32 tgid, idx;
	__u64 now, bucket, *cnt;

	if (!(error_code & X86_PF_WRITE))
		return 0;
	tgid = bpf_get_current_pid_tgid() >> 32;
	w = bpf_map_lookup_elem(&dirty_tracked, &tgid);
	if (!w || !w->start_ns || !w->bucket_ns)
		return 0;
	now = bpf_ktime_get_ns();
	if (now < w->start_ns)
		return 0;
	bucket = (now - w->start_ns) / w->bucket_ns;
	if (bucket >= VMTIDE_DIRTY_BUCKETS)
		bucket = VMTIDE_DIRTY_BUCKETS - 1; /* past the window: the last bucket */
	idx = w->slot * VMTIDE_DIRTY_BUCKETS + (__u32)bucket;
	cnt = bpf_map_lookup_elem(&dirty_counts, &idx);
	if (cnt)
		(*cnt)++; /* per-CPU: no atomics needed */
	return 0;
}
