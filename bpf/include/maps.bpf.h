/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/* Small helpers shared by vmtide's BPF programs (libbpf-tools' maps.bpf.h
 * and bits.bpf.h are the model). */
#ifndef VMTIDE_MAPS_BPF_H
#define VMTIDE_MAPS_BPF_H

/* floor(log2(v)) for v > 0, 0 for v == 0: the slot of a log2 histogram. */
static __always_inline __u32 log2_u64(__u64 v)
{
	__u32 r = 0;

	if (v >> 32) { v >>= 32; r += 32; }
	if (v >> 16) { v >>= 16; r += 16; }
	if (v >> 8) { v >>= 8; r += 8; }
	if (v >> 4) { v >>= 4; r += 4; }
	if (v >> 2) { v >>= 2; r += 2; }
	if (v >> 1) { r += 1; }
	return r;
}

/* The histogram slot of a duration in ns, in log2 µs, clamped to `slots`. */
static __always_inline __u32 log2_us_slot(__u64 ns, __u32 slots)
{
	__u32 s = log2_u64(ns / 1000);

	return s < slots ? s : slots - 1;
}

#endif /* VMTIDE_MAPS_BPF_H */
