// SPDX-License-Identifier: Apache-2.0
// Tests of the model's pure signal helpers: EWMA over irregular intervals,
// the sustained-condition tracker, the hysteresis band, model validation.
#include <gtest/gtest.h>

#include <cmath>

#include "cluster.h"
#include "scenario.h"
#include "signals.h"

namespace vmtide::model {
namespace {

using strategy::testing::at_s;

TEST(SignalEwma, FirstSampleIsTakenAsIs) {
  const Ewma e = ewma_update(Ewma{}, 0.7, at_s(5), std::chrono::seconds{30});
  EXPECT_TRUE(e.primed);
  EXPECT_DOUBLE_EQ(e.value, 0.7);
}

TEST(SignalEwma, WeighsASampleByTheTimeItCovers) {
  const auto tau = std::chrono::seconds{30};
  Ewma e = ewma_update(Ewma{}, 0.0, at_s(0), tau);
  // One step of 30 s == tau: alpha = 1 - e^-1.
  const Ewma one = ewma_update(e, 1.0, at_s(30), tau);
  EXPECT_NEAR(one.value, 1.0 - std::exp(-1.0), 1e-12);
  // Three steps of 10 s reach the same value: irregular sampling is consistent.
  Ewma three = e;
  for (int i = 1; i <= 3; ++i) three = ewma_update(three, 1.0, at_s(10.0 * i), tau);
  EXPECT_NEAR(three.value, one.value, 1e-12);
}

TEST(SignalEwma, IgnoresSamplesFromThePast) {
  const auto tau = std::chrono::seconds{30};
  const Ewma e = ewma_update(Ewma{}, 0.5, at_s(10), tau);
  EXPECT_EQ(ewma_update(e, 1.0, at_s(5), tau), e);
}

std::vector<DirtyPoint> curve(std::initializer_list<std::pair<double, std::uint64_t>> pts) {
  std::vector<DirtyPoint> c;
  for (const auto& [tau_s, bytes] : pts) {
    c.push_back({std::chrono::nanoseconds(static_cast<std::int64_t>(tau_s * 1e9)), bytes});
  }
  return c;
}

TEST(SignalCurveEwma, AlternatingPhasesAverageToTheirMixture) {
  // A guest busy for 10 s, quiet for 10 s, measured every 2 s: after many
  // phases the average sits between the two curves, near their mean, and
  // is still non-decreasing in tau.
  const auto busy = curve({{0.5, 2000}, {1.5, 5000}, {4, 9000}});
  const auto quiet = curve({{0.5, 200}, {1.5, 500}, {4, 900}});
  const auto tau = std::chrono::seconds{30};
  CurveEwma s;
  std::vector<DirtyPoint> last;
  double lo = 1e30, hi = 0;
  for (int t = 0; t < 600; t += 2) {
    s = curve_ewma_update(std::move(s), (t / 10) % 2 ? quiet : busy, at_s(t), tau);
    last = curve_value(s);
    ASSERT_EQ(last.size(), 3u);
    for (std::size_t i = 1; i < last.size(); ++i) ASSERT_LE(last[i - 1].bytes, last[i].bytes) << "at " << t;
    if (t > 300) {
      lo = std::min(lo, static_cast<double>(last[2].bytes));
      hi = std::max(hi, static_cast<double>(last[2].bytes));
    }
  }
  // Within +-25 % of the mixture's 4950 at every step, never one phase's.
  EXPECT_GT(lo, 0.75 * 4950);
  EXPECT_LT(hi, 1.25 * 4950);
}

TEST(SignalCurveEwma, MatchesWindowsWithJitterAndRestartsOnNewWindows) {
  const auto tau = std::chrono::seconds{30};
  CurveEwma s = curve_ewma_update({}, curve({{0.5, 1000}, {2, 3000}}), at_s(0), tau);
  // 1.501 s is the same window as 1.5: averaged, not restarted.
  s = curve_ewma_update(std::move(s), curve({{0.501, 2000}, {2.01, 5000}}), at_s(30), tau);
  auto v = curve_value(s);
  ASSERT_EQ(v.size(), 2u);
  EXPECT_NEAR(static_cast<double>(v[0].bytes), 1000 + (1 - std::exp(-1.0)) * 1000, 1);
  EXPECT_NEAR(static_cast<double>(v[1].tau.count()), 2.01e9, 1e3);  // the latest window
  // Other windows (a reconfigured agent): the new sample as it is.
  s = curve_ewma_update(std::move(s), curve({{1, 700}}), at_s(32), tau);
  v = curve_value(s);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].bytes, 700u);
  EXPECT_TRUE(curve_value(CurveEwma{}).empty());
}

TEST(SignalSustained, HoldsWhileTrueAndResetsOnFalse) {
  Sustained s;
  s = sustained_update(s, true, at_s(10));
  s = sustained_update(s, true, at_s(40));
  EXPECT_EQ(sustained_for(s, at_s(70)), std::chrono::seconds{60});
  EXPECT_TRUE(sustained_at_least(s, at_s(70), std::chrono::seconds{60}));
  EXPECT_FALSE(sustained_at_least(s, at_s(69), std::chrono::seconds{60}));
  s = sustained_update(s, false, at_s(71));
  EXPECT_FALSE(s.active);
  s = sustained_update(s, true, at_s(80));
  EXPECT_EQ(sustained_for(s, at_s(80)), std::chrono::seconds{0});
}

TEST(SignalZone, HysteresisTable) {
  const Band b{.high_enter = 0.85, .high_exit = 0.75, .low_enter = 0.20, .low_exit = 0.30};
  struct Case {
    const char* name;
    Zone prev;
    double load;
    Zone want;
  };
  const Case cases[] = {
      {"normal stays normal inside the band", Zone::kNormal, 0.80, Zone::kNormal},
      {"enters hot at high_enter", Zone::kNormal, 0.85, Zone::kHot},
      {"hot stays hot above high_exit", Zone::kHot, 0.76, Zone::kHot},
      {"hot leaves at high_exit", Zone::kHot, 0.75, Zone::kNormal},
      {"normal stays normal above low_enter", Zone::kNormal, 0.25, Zone::kNormal},
      {"enters cold at low_enter", Zone::kNormal, 0.20, Zone::kCold},
      {"cold stays cold below low_exit", Zone::kCold, 0.29, Zone::kCold},
      {"cold leaves at low_exit", Zone::kCold, 0.30, Zone::kNormal},
      {"hot can fall straight to cold", Zone::kHot, 0.10, Zone::kCold},
  };
  for (const Case& c : cases) EXPECT_EQ(zone_update(c.prev, c.load, b), c.want) << c.name;
}

TEST(ModelValidate, ValidateRejectsBrokenInvariants) {
  using strategy::testing::host;
  using strategy::testing::vm;
  ClusterModel ok{at_s(0), {host("a", 0.5), host("b", 0.5)}, {vm("v1", "a", 1.0)}};
  EXPECT_TRUE(validate(ok).ok());

  ClusterModel dup_host = ok;
  dup_host.hosts.push_back(host("a", 0.1));
  EXPECT_FALSE(validate(dup_host).ok());

  ClusterModel unknown = ok;
  unknown.vms.push_back(vm("v2", "nowhere", 1.0));
  const Status s = validate(unknown);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find("nowhere"), std::string::npos);

  ClusterModel nan = ok;
  nan.hosts[0].cpu_load_frac = std::nan("");
  EXPECT_FALSE(validate(nan).ok());

  ClusterModel no_cpus = ok;
  no_cpus.hosts[1].cpus = 0;
  EXPECT_FALSE(validate(no_cpus).ok());
}

TEST(ModelValidate, DemandIsUsedPlusSteal) {
  VmState v;
  v.cpu_used_cores = 1.5;
  v.steal_cores = 0.5;
  EXPECT_DOUBLE_EQ(v.demand_cores(), 2.0);
}

}  // namespace
}  // namespace vmtide::model
