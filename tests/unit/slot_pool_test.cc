// SPDX-License-Identifier: Apache-2.0
// bpf::SlotPool: the slot bookkeeping the ctxsw, io and steal collectors
// share. Pure logic: no map is touched.
#include <gtest/gtest.h>

#include "bpf_support.h"

namespace vmtide::bpf {
namespace {

TEST(SlotPool, LowestFirstAndSpanCoversTheSlotsInUse) {
  SlotPool p(4);
  EXPECT_EQ(p.span(), 0u);
  EXPECT_EQ(p.take(), 0u);
  EXPECT_EQ(p.take(), 1u);
  EXPECT_EQ(p.take(), 2u);
  EXPECT_EQ(p.span(), 3u);
  EXPECT_EQ(p.in_use(), 3u);
}

TEST(SlotPool, ReleasedSlotIsHeldBackUntilSettle) {
  SlotPool p(2);
  ASSERT_EQ(p.take(), 0u);
  ASSERT_EQ(p.take(), 1u);
  EXPECT_FALSE(p.take().has_value());
  p.release(0);
  // A program may still write slot 0: it is not handed out, and reads still
  // cover it.
  EXPECT_FALSE(p.take().has_value());
  EXPECT_EQ(p.span(), 2u);
  p.settle();
  EXPECT_EQ(p.take(), 0u);
}

TEST(SlotPool, SpanShrinksWhenTheTopSlotIsFreedAndSettled) {
  SlotPool p(8);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(p.take());
  p.release(4);
  p.release(3);
  EXPECT_EQ(p.span(), 5u);  // held back: still read once more
  p.settle();
  EXPECT_EQ(p.span(), 3u);
  // The gap below the top is filled first.
  p.release(1);
  p.settle();
  EXPECT_EQ(p.take(), 1u);
  EXPECT_EQ(p.take(), 3u);
}

TEST(SlotPool, ReleasingAFreeSlotChangesNothing) {
  SlotPool p(2);
  p.release(1);
  p.settle();
  EXPECT_EQ(p.take(), 0u);
  EXPECT_EQ(p.take(), 1u);
  EXPECT_FALSE(p.take().has_value());
}

}  // namespace
}  // namespace vmtide::bpf
