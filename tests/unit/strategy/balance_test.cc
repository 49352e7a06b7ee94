// SPDX-License-Identifier: Apache-2.0
// Tests of the incremental entropy tracker, the adaptive strategy choice,
// the default cost model and the cooldown back-off.
#include <gtest/gtest.h>

#include <vector>

#include "balance.h"
#include "cost.h"
#include "entropy.h"
#include "planner.h"
#include "scenario.h"

namespace vmtide::strategy {
namespace {

using testing::host;
using testing::kGiB;
using testing::vm;

TEST(EntropyTracker, AgreesWithNormalizedEntropy) {
  std::vector<double> loads = {0.9, 0.1, 0.4, 0.0, 0.55};
  EntropyTracker t(loads);
  EXPECT_NEAR(t.value(), *normalized_entropy(loads), 1e-12);
  // Move 0.2 from host 0 to host 3.
  const double predicted = t.after_move(0.9, 0.7, 0.0, 0.2);
  loads[0] = 0.7;
  loads[3] = 0.2;
  EXPECT_NEAR(predicted, *normalized_entropy(loads), 1e-12);
  t.apply_move(0.9, 0.7, 0.0, 0.2);
  EXPECT_NEAR(t.value(), predicted, 1e-12);
}

TEST(EntropyTracker, Conventions) {
  EXPECT_DOUBLE_EQ(EntropyTracker({}).value(), 1.0);
  EXPECT_DOUBLE_EQ(EntropyTracker({0.7}).value(), 1.0);
  EXPECT_DOUBLE_EQ(EntropyTracker({0.0, 0.0}).value(), 1.0);
  EXPECT_NEAR(EntropyTracker({0.0, 0.9}).value(), 0.0, 1e-12);
}

TEST(StrategyAdaptive, ChoosesByMeanLoad) {
  PlannerConfig c;
  struct Case {
    StrategyKind configured;
    double mean;
    StrategyKind want;
  };
  const Case cases[] = {
      {StrategyKind::kAdaptive, 0.10, StrategyKind::kPull}, {StrategyKind::kAdaptive, 0.49, StrategyKind::kPull},
      {StrategyKind::kAdaptive, 0.50, StrategyKind::kPush}, {StrategyKind::kAdaptive, 0.90, StrategyKind::kPush},
      {StrategyKind::kPush, 0.10, StrategyKind::kPush},     {StrategyKind::kPull, 0.90, StrategyKind::kPull},
  };
  for (const Case& k : cases) {
    c.strategy = k.configured;
    EXPECT_EQ(choose_strategy(c, k.mean), k.want) << strategy_name(k.configured) << " at " << k.mean;
  }
}

TEST(ConstDirtyCost, GeometricSeriesAndConvergence) {
  const CostModel cost = make_const_dirty_cost_model(1.25e9, 0.8);
  const auto src = host("a", 0.5);
  const auto dst = host("b", 0.5);
  auto v = vm("v", "a", 1.0, 10 * kGiB);
  const MigrationCost idle = cost(v, src, dst);
  EXPECT_TRUE(idle.converges);
  EXPECT_NEAR(idle.total_s, 10.0 * kGiB / 1.25e9, 1e-9);
  EXPECT_EQ(idle.passes, 2u);  // one full pass, then stop-and-copy of nothing

  v.dirty_bytes_per_s = 0.5e9;  // ratio 0.4: total ~ M / (B - D)
  const MigrationCost busy = cost(v, src, dst);
  EXPECT_TRUE(busy.converges);
  EXPECT_GT(busy.total_s, idle.total_s);
  EXPECT_NEAR(busy.total_s, 10.0 * kGiB / (1.25e9 - 0.5e9), 0.5);
  EXPECT_LT(busy.downtime_ms, 300.0 + 1e-9);

  v.dirty_bytes_per_s = 1.1e9;  // ratio 0.88 >= 0.8
  EXPECT_FALSE(cost(v, src, dst).converges);

  // Slower link, longer migration.
  auto slow = dst;
  slow.link_bw_bytes_per_s = 0.125e9;
  v.dirty_bytes_per_s = 0;
  EXPECT_GT(cost(v, src, slow).total_s, idle.total_s);
}

TEST(PlannerCooldown, ExponentialBackOffCapped) {
  PlannerConfig c;  // 10 min, x2, max 4 h
  const std::chrono::nanoseconds want[] = {
      std::chrono::minutes{10},  std::chrono::minutes{20}, std::chrono::minutes{40}, std::chrono::minutes{80},
      std::chrono::minutes{160}, std::chrono::hours{4},    std::chrono::hours{4}};
  for (int n = 1; n <= 7; ++n) EXPECT_EQ(cooldown_for(c, n), want[n - 1]) << "streak " << n;
  EXPECT_EQ(cooldown_for(c, 10000), std::chrono::hours{4});  // pow overflow is capped
}

TEST(PlannerConfigCheck, ValidateRejectsInconsistentValues) {
  EXPECT_TRUE(validate(PlannerConfig{}).ok());
  PlannerConfig c;
  c.band.high_exit = 0.9;  // above high_enter
  EXPECT_FALSE(validate(c).ok());
  c = PlannerConfig{};
  c.vm_cooldown_factor = 0.5;
  EXPECT_FALSE(validate(c).ok());
  c = PlannerConfig{};
  c.max_inflight_cluster = 0;
  EXPECT_FALSE(validate(c).ok());
}

}  // namespace
}  // namespace vmtide::strategy
