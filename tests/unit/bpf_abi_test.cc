// SPDX-License-Identifier: Apache-2.0
// Checks the C++ view of include/vmtide/bpf_abi.h: the layout BPF writes is
// the layout userspace reads (STYLE.md rule 1).
#include <gtest/gtest.h>

#include <cstddef>
#include <type_traits>

#include "vmtide/bpf_abi.h"

TEST(BpfAbi, CtxswCountsLayout) {
  static_assert(std::is_standard_layout_v<vmtide_ctxsw_counts>);
  EXPECT_EQ(sizeof(vmtide_ctxsw_counts), 24u);
  EXPECT_EQ(offsetof(vmtide_ctxsw_counts, out_voluntary), 0u);
  EXPECT_EQ(offsetof(vmtide_ctxsw_counts, out_involuntary), 8u);
  EXPECT_EQ(offsetof(vmtide_ctxsw_counts, in), 16u);
  EXPECT_EQ(VMTIDE_ABI_VERSION, 4);
}

TEST(BpfAbi, DirtyWindowLayout) {
  static_assert(std::is_standard_layout_v<vmtide_dirty_window>);
  EXPECT_EQ(sizeof(vmtide_dirty_window), 24u);
  EXPECT_EQ(offsetof(vmtide_dirty_window, start_ns), 0u);
  EXPECT_EQ(offsetof(vmtide_dirty_window, bucket_ns), 8u);
  EXPECT_EQ(offsetof(vmtide_dirty_window, slot), 16u);
}

TEST(BpfAbi, IoLayout) {
  static_assert(std::is_standard_layout_v<vmtide_io_counts>);
  EXPECT_EQ(offsetof(vmtide_io_counts, rd_bytes), 0u);
  EXPECT_EQ(offsetof(vmtide_io_counts, wr_ops), 24u);
  EXPECT_EQ(offsetof(vmtide_io_counts, lat_hist), 32u);
  EXPECT_EQ(sizeof(vmtide_io_counts), 32u + 8u * VMTIDE_IO_HIST_SLOTS);
  EXPECT_EQ(sizeof(vmtide_io_inflight), 16u);
  EXPECT_EQ(offsetof(vmtide_io_inflight, slot), 8u);
}

TEST(BpfAbi, StealLayout) {
  static_assert(std::is_standard_layout_v<vmtide_steal_iter_rec>);
  EXPECT_EQ(sizeof(vmtide_steal_iter_rec), 56u);
  EXPECT_EQ(offsetof(vmtide_steal_iter_rec, tgid), 4u);
  EXPECT_EQ(offsetof(vmtide_steal_iter_rec, run_delay_ns), 8u);
  EXPECT_EQ(offsetof(vmtide_steal_iter_rec, pcount), 16u);
  EXPECT_EQ(offsetof(vmtide_steal_iter_rec, sum_exec_runtime_ns), 24u);
  EXPECT_EQ(offsetof(vmtide_steal_iter_rec, flags), 32u);
  EXPECT_EQ(offsetof(vmtide_steal_iter_rec, exited_runtime_ns), 40u);
  EXPECT_EQ(offsetof(vmtide_steal_iter_rec, rss_pages), 48u);
  EXPECT_EQ(sizeof(vmtide_steal_task), 40u);
  EXPECT_EQ(offsetof(vmtide_steal_task, tgid), 8u);
  EXPECT_EQ(offsetof(vmtide_steal_task, vm_slot), 12u);
  EXPECT_EQ(offsetof(vmtide_steal_task, preemptor_tgid), 16u);
  EXPECT_EQ(offsetof(vmtide_steal_task, preemptor_comm), 24u);
  EXPECT_EQ(sizeof(vmtide_steal_hist), 32u + 8u * VMTIDE_STEAL_HIST_SLOTS);
  EXPECT_EQ(offsetof(vmtide_steal_hist, self_wait_ns), 16u);
  EXPECT_EQ(offsetof(vmtide_steal_hist, dstate_ns), 24u);
  EXPECT_EQ(offsetof(vmtide_steal_hist, slots), 32u);
  EXPECT_EQ(sizeof(vmtide_steal_preempt_key), 8u);
  EXPECT_EQ(offsetof(vmtide_steal_preempt_key, tgid), 4u);
  EXPECT_EQ(sizeof(vmtide_steal_preempt_val), 32u);
  EXPECT_EQ(offsetof(vmtide_steal_preempt_val, comm), 16u);
  EXPECT_EQ(offsetof(vmtide_steal_stats, recycled_tid), 8u);
  EXPECT_EQ(offsetof(vmtide_steal_stats, dsleep_map_full), 16u);
  EXPECT_EQ(sizeof(vmtide_steal_stats), 24u);
  static_assert(std::is_standard_layout_v<vmtide_steal_dsleep>);
  EXPECT_EQ(sizeof(vmtide_steal_dsleep), 16u);
  EXPECT_EQ(offsetof(vmtide_steal_dsleep, tgid), 8u);
  EXPECT_EQ(offsetof(vmtide_steal_dsleep, vm_slot), 12u);
}
