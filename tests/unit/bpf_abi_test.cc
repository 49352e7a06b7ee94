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
  EXPECT_EQ(VMTIDE_ABI_VERSION, 1);
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
