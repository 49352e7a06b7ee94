// SPDX-License-Identifier: Apache-2.0
// The pre-copy predictor as the planner's cost model: which bandwidth and
// memory it uses, and that a non-converging move says what would fix it.
#include <gtest/gtest.h>

#include "cost.h"

namespace vmtide::strategy {
namespace {

model::VmState vm(std::uint64_t rss, double dirty_bps) {
  model::VmState v;
  v.id = "u1";
  v.host = "a";
  v.ram_bytes = 4ULL << 30;
  v.rss_bytes = rss;
  v.dirty_bytes_per_s = dirty_bps;
  return v;
}

model::HostState host(const char* name, double link) {
  model::HostState h;
  h.name = name;
  h.cpus = 8;
  h.link_bw_bytes_per_s = link;
  return h;
}

TEST(PrecopyCost, IdleVmCostsItsTouchedMemoryOverTheSlowerLink) {
  const auto cost = make_precopy_cost_model();
  const auto c = cost(vm(1ULL << 30, 0), host("a", 1.25e9), host("b", 125e6));
  EXPECT_EQ(c.model, "precopy");
  EXPECT_TRUE(c.converges);
  // 1 GiB of touched pages (+ zero-page headers for the other 3 GiB) at 125 MB/s.
  EXPECT_GT(c.total_s, (1ULL << 30) / 125e6);
  EXPECT_LT(c.total_s, (1ULL << 30) / 125e6 * 1.1);
}

TEST(PrecopyCost, MaxBandwidthCapsTheLink) {
  PrecopyCostParams p;
  p.max_bw_bytes_per_s = 32.0 * (1 << 20);
  const auto c = make_precopy_cost_model(p)(vm(512ULL << 20, 0), host("a", 1.25e9), host("b", 1.25e9));
  EXPECT_GT(c.total_s, 16.0);  // 512 MiB at 32 MiB/s
}

TEST(PrecopyCost, MoreBandwidthNeverCostsMoreAndMoreDirtyingNeverLess) {
  const auto cost = make_precopy_cost_model();
  double last = 1e300;
  for (double bw : {50e6, 100e6, 200e6, 400e6, 800e6}) {
    const auto c = cost(vm(2ULL << 30, 20e6), host("a", bw), host("b", bw));
    ASSERT_TRUE(c.converges) << bw;
    EXPECT_LE(c.total_s, last) << bw;
    last = c.total_s;
  }
  last = 0;
  for (double d : {0.0, 5e6, 10e6, 20e6, 40e6}) {
    const auto c = cost(vm(2ULL << 30, d), host("a", 125e6), host("b", 125e6));
    EXPECT_GE(c.total_s, last) << d;
    last = c.total_s;
  }
}

TEST(PrecopyCost, ANonConvergingMoveSaysWhatWouldMakeItConverge) {
  // Dirtying faster than the link can send: never converges.
  const auto c = make_precopy_cost_model()(vm(2ULL << 30, 300e6), host("a", 125e6), host("b", 125e6));
  EXPECT_FALSE(c.converges);
  ASSERT_TRUE(c.need_bw_bytes_per_s.has_value());
  EXPECT_GT(*c.need_bw_bytes_per_s, 125e6);
}

}  // namespace
}  // namespace vmtide::strategy
