// SPDX-License-Identifier: Apache-2.0
// ModelBuilder: wire messages -> ClusterModel, with freshness, sequence
// gaps, epochs, smoothing and VM expiry, on a hand-driven clock.
#include "builder.h"

#include <gtest/gtest.h>

#include <cmath>

#include "msgs.h"

namespace vmtide::model {
namespace {

using testsupport::FakeAgent;
using testsupport::kSec;

TimeNs at(double s) { return TimeNs{static_cast<std::int64_t>(s * 1e9)}; }

const HostState* find_host(const ClusterModel& m, const std::string& name) {
  for (const auto& h : m.hosts) {
    if (h.name == name) return &h;
  }
  return nullptr;
}

const VmState* find_vm(const ClusterModel& m, const std::string& id) {
  for (const auto& v : m.vms) {
    if (v.id == id) return &v;
  }
  return nullptr;
}

// Feeds one tick of an agent: its host sample, its VMs, a heartbeat.
void tick(ModelBuilder& b, FakeAgent& a, double t, double load, const std::vector<std::pair<std::string, double>>& vms) {
  ASSERT_TRUE(b.on_message(a.host_sample(load), at(t)));
  for (const auto& [id, cores] : vms) ASSERT_TRUE(b.on_message(a.vm(id, cores, 0.1), at(t)));
  ASSERT_TRUE(b.on_message(a.hb(), at(t)));
}

TEST(ModelBuilder, HostIsFreshAfterTwoHostSamplesAndLoadIncludesSteal) {
  ModelBuilder b({.tau = std::chrono::nanoseconds{0}});  // no smoothing: exact values
  FakeAgent a{.host = "kvm1"};
  tick(b, a, 1, 0.5, {{"u1", 2.0}});
  auto m = b.snapshot(at(1));
  ASSERT_NE(find_host(m, "kvm1"), nullptr);
  EXPECT_TRUE(find_host(m, "kvm1")->stale);
  EXPECT_NE(b.health(at(1))[0].stale_reason.find("waiting for host samples"), std::string::npos);
  tick(b, a, 2, 0.5, {{"u1", 2.0}});
  m = b.snapshot(at(2));
  const HostState* h = find_host(m, "kvm1");
  ASSERT_NE(h, nullptr);
  EXPECT_FALSE(h->stale);
  EXPECT_EQ(h->cpus, 8u);
  // 0.5 busy + 0.1 cores of steal over 8 CPUs.
  EXPECT_NEAR(h->cpu_load_frac, 0.5 + 0.1 / 8, 1e-9);
  EXPECT_NEAR(h->steal_frac, 0.1 / 8, 1e-9);
  EXPECT_DOUBLE_EQ(h->link_bw_bytes_per_s, 1.25e9);
  const VmState* v = find_vm(m, "u1");
  ASSERT_NE(v, nullptr);
  EXPECT_NEAR(v->cpu_used_cores, 2.0, 1e-9);
  EXPECT_NEAR(v->demand_cores(), 2.1, 1e-9);
  EXPECT_EQ(v->host, "kvm1");
  EXPECT_TRUE(validate(m));
}

TEST(ModelBuilder, SilentHostTurnsStaleAfterThreeIntervalsAndRecovers) {
  ModelBuilder b;
  FakeAgent a{.host = "kvm1"};
  tick(b, a, 1, 0.3, {});
  tick(b, a, 2, 0.3, {});
  EXPECT_FALSE(b.health(at(4.9))[0].stale);
  const auto h = b.health(at(5.1));  // 3.1 s of silence, 1 s interval
  EXPECT_TRUE(h[0].stale);
  EXPECT_NE(h[0].stale_reason.find("silent for 3.1 s"), std::string::npos) << h[0].stale_reason;
  EXPECT_TRUE(find_host(b.snapshot(at(5.1)), "kvm1")->stale);
  tick(b, a, 6, 0.3, {});
  EXPECT_FALSE(b.health(at(6))[0].stale);
}

TEST(ModelBuilder, LongerIntervalsStretchTheSilenceLimit) {
  ModelBuilder b;
  FakeAgent a{.host = "kvm1"};
  for (int i = 1; i <= 2; ++i) ASSERT_TRUE(b.on_message(a.msg(wire::HostSample{.cpus = 4}, 5 * kSec), at(5.0 * i)));
  EXPECT_FALSE(b.health(at(24))[0].stale);  // 14 s < 3 x 5 s
  EXPECT_TRUE(b.health(at(25.5))[0].stale);
}

// Found while writing the fuzz targets: an agent's interval_ns near 2^62
// times stale_after_intervals (or vm_expiry_intervals) overflowed the
// conversion to int64 nanoseconds, which is undefined (the UBSan suite
// stopped here). The limits now saturate: such a host is never "silent".
TEST(ModelBuilder, AHugeIntervalFromAnAgentSaturatesTheLimits) {
  ModelBuilder b;
  FakeAgent a{.host = "kvm1"};
  const std::uint64_t huge = 4'000'000'000'000'000'000ULL;  // 127 years
  for (int i = 1; i <= 2; ++i) {
    ASSERT_TRUE(b.on_message(a.msg(wire::HostSample{.cpus = 4}, huge), at(i)));
    ASSERT_TRUE(b.on_message(a.vm("u1", 1.0), at(i)));
  }
  const auto h = b.health(at(1000));
  ASSERT_EQ(h.size(), 1u);
  EXPECT_FALSE(h[0].stale) << h[0].stale_reason;
  EXPECT_NE(find_vm(b.snapshot(at(1000)), "u1"), nullptr);
}

TEST(ModelBuilder, SequenceGapsMakeAHostStaleUntilTheWindowIsClean) {
  ModelBuilder b({.loss_window = std::chrono::seconds{10}});
  FakeAgent a{.host = "kvm1"};
  tick(b, a, 1, 0.3, {});
  tick(b, a, 2, 0.3, {});
  a.seq += 10;  // ten messages lost on the way
  tick(b, a, 3, 0.3, {});
  auto h = b.health(at(3));
  EXPECT_TRUE(h[0].stale);
  EXPECT_NE(h[0].stale_reason.find("lost 10 of"), std::string::npos) << h[0].stale_reason;
  EXPECT_EQ(h[0].lost, 10u);
  EXPECT_EQ(b.counters().lost, 10u);
  // Clean ticks: once the lossy second leaves the window, it is fresh again.
  for (int t = 4; t <= 13; ++t) tick(b, a, t, 0.3, {});
  EXPECT_TRUE(b.health(at(13))[0].stale);
  tick(b, a, 14, 0.3, {});
  EXPECT_FALSE(b.health(at(14))[0].stale) << b.health(at(14))[0].stale_reason;
}

TEST(ModelBuilder, DuplicatesAreDroppedAndANewEpochStartsOver) {
  ModelBuilder b;
  FakeAgent a{.host = "kvm1"};
  tick(b, a, 1, 0.3, {{"u1", 1.0}});
  tick(b, a, 2, 0.3, {{"u1", 1.0}});
  wire::Message again = a.hb();
  ASSERT_TRUE(b.on_message(again, at(2.5)));
  EXPECT_FALSE(b.on_message(again, at(2.6)));
  EXPECT_EQ(b.counters().duplicates, 1u);

  // The agent restarts: a new epoch, seq from 1 again. Not duplicates, not
  // loss; the host waits for two host samples of the new epoch.
  FakeAgent restarted{.host = "kvm1", .epoch = 2};
  ASSERT_TRUE(b.on_message(restarted.host_sample(0.3), at(3)));
  auto h = b.health(at(3));
  EXPECT_EQ(h[0].epoch, 2u);
  EXPECT_EQ(h[0].epochs_seen, 2u);
  EXPECT_EQ(h[0].lost, 0u);
  EXPECT_TRUE(h[0].stale);
  ASSERT_TRUE(b.on_message(restarted.host_sample(0.3), at(4)));
  EXPECT_FALSE(b.health(at(4))[0].stale);
}

TEST(ModelBuilder, JoiningLateIsNotLoss) {
  ModelBuilder b;
  FakeAgent a{.host = "kvm1", .seq = 5000};
  tick(b, a, 1, 0.3, {});
  EXPECT_EQ(b.counters().lost, 0u);
}

TEST(ModelBuilder, VanishedVmsExpireAndArePruned) {
  ModelBuilder b;
  FakeAgent a{.host = "kvm1"};
  tick(b, a, 1, 0.3, {{"u1", 1.0}, {"u2", 1.0}});
  tick(b, a, 2, 0.3, {{"u1", 1.0}, {"u2", 1.0}});
  for (int t = 3; t <= 6; ++t) tick(b, a, t, 0.3, {{"u1", 1.0}});
  const auto m = b.snapshot(at(6));
  EXPECT_NE(find_vm(m, "u1"), nullptr);
  EXPECT_EQ(find_vm(m, "u2"), nullptr);
  EXPECT_EQ(b.vm_count(), 2u);
  b.prune(at(6));
  EXPECT_EQ(b.vm_count(), 1u);
  EXPECT_EQ(b.counters().vms_expired, 1u);
}

TEST(ModelBuilder, AVmOnTwoHostsIsKeptOnceWhereItWasSeenLast) {
  // Mid-migration both QEMUs exist for a moment.
  ModelBuilder b;
  FakeAgent a{.host = "kvm1"}, c{.host = "kvm2"};
  tick(b, a, 1, 0.3, {{"u1", 1.0}});
  tick(b, c, 1, 0.3, {});
  tick(b, a, 2, 0.3, {{"u1", 1.0}});
  tick(b, c, 2.5, 0.3, {{"u1", 1.0}});
  auto m = b.snapshot(at(2.5));
  ASSERT_NE(find_vm(m, "u1"), nullptr);
  EXPECT_EQ(find_vm(m, "u1")->host, "kvm2");
  int copies = 0;
  for (const auto& v : m.vms) copies += v.id == "u1" ? 1 : 0;
  EXPECT_EQ(copies, 1);
  EXPECT_TRUE(validate(m));
}

TEST(ModelBuilder, DirtyMeasurementBecomesRateAndCurve) {
  ModelBuilder b;
  FakeAgent a{.host = "kvm1"};
  ASSERT_TRUE(b.on_message(a.host_sample(0.3), at(1)));
  ASSERT_TRUE(b.on_message(a.host_sample(0.3), at(2)));
  ASSERT_TRUE(b.on_message(a.vm("u1", 1.0, 0, 4ULL << 30, 5000), at(2)));
  // A later sample without a measurement keeps the last one.
  ASSERT_TRUE(b.on_message(a.vm("u1", 1.0), at(2.5)));
  const auto m = b.snapshot(at(2.5));
  const VmState* v = find_vm(m, "u1");
  ASSERT_NE(v, nullptr);
  EXPECT_NEAR(v->dirty_bytes_per_s, 5000.0 * 4096, 1e-6);
  ASSERT_EQ(v->dirty_curve.size(), 1u);
  EXPECT_EQ(v->dirty_curve[0].tau, std::chrono::seconds{2});
  EXPECT_EQ(v->dirty_curve[0].bytes, 10000ULL * 4096);
}

TEST(ModelBuilder, DirtyCurveIsAveragedOverSamples) {
  // Two measurements of one VM, 30 s apart with tau 30 s: the curve the
  // predictor gets lies between them (1 - e^-1 of the way to the second),
  // not the last one alone.
  ModelBuilder b;
  FakeAgent a{.host = "kvm1"};
  ASSERT_TRUE(b.on_message(a.host_sample(0.3), at(1)));
  ASSERT_TRUE(b.on_message(a.vm("u1", 1.0, 0, 4ULL << 30, 5000), at(1)));
  ASSERT_TRUE(b.on_message(a.host_sample(0.3), at(31)));
  ASSERT_TRUE(b.on_message(a.vm("u1", 1.0, 0, 4ULL << 30, 1000), at(31)));
  const auto m = b.snapshot(at(31));
  const VmState* v = find_vm(m, "u1");
  ASSERT_NE(v, nullptr);
  ASSERT_EQ(v->dirty_curve.size(), 1u);
  const double expect = (5000 + (1 - std::exp(-1.0)) * (1000 - 5000)) * 2 * 4096;
  EXPECT_NEAR(static_cast<double>(v->dirty_curve[0].bytes), expect, 4096);
  // The published rate stays the last measurement's (vmtide top shows it).
  EXPECT_NEAR(v->dirty_bytes_per_s, 1000.0 * 4096, 1e-6);
}

TEST(ModelBuilder, SmoothingFollowsAStepWithinAFewTimeConstants) {
  ModelBuilder b({.tau = std::chrono::seconds{10}});
  FakeAgent a{.host = "kvm1"};
  for (int t = 1; t <= 5; ++t) tick(b, a, t, 0.2, {});
  tick(b, a, 6, 0.9, {});
  const double one = find_host(b.snapshot(at(6)), "kvm1")->cpu_load_frac;
  EXPECT_GT(one, 0.2);
  EXPECT_LT(one, 0.35);  // a single spike moves it by ~10 %
  for (int t = 7; t <= 50; ++t) tick(b, a, t, 0.9, {});
  EXPECT_NEAR(find_host(b.snapshot(at(50)), "kvm1")->cpu_load_frac, 0.9, 0.02);
}

TEST(ModelBuilder, DecisionsAndEventsAreNotModelInput) {
  ModelBuilder b;
  FakeAgent a{.host = "kvm1"};
  EXPECT_FALSE(b.on_message(a.msg(wire::Decision{}, 0), at(1)));
  EXPECT_FALSE(b.on_message(a.msg(wire::Event{.type = "x"}, 0), at(1)));
  EXPECT_EQ(b.host_count(), 0u);
  EXPECT_EQ(b.counters().ignored, 2u);
}

TEST(ModelBuilder, OverridesSetMaintenanceTagsAndGroups) {
  ModelBuilder b;
  FakeAgent a{.host = "kvm1"};
  tick(b, a, 1, 0.3, {{"u1", 1.0}});
  tick(b, a, 2, 0.3, {{"u1", 1.0}});
  Overrides ov;
  ov.hosts["kvm1"] = HostOverride{.maintenance = true, .tags = {"rack-a"}};
  ov.vms["vm-u1"] = VmOverride{.tags = {"vmtide.pinned"}, .affinity_group = "", .anti_affinity_groups = {"db"}};
  const auto m = b.snapshot(at(2), ov);
  EXPECT_TRUE(find_host(m, "kvm1")->maintenance);
  EXPECT_EQ(find_host(m, "kvm1")->tags, std::vector<std::string>{"rack-a"});
  EXPECT_EQ(find_vm(m, "u1")->tags, std::vector<std::string>{"vmtide.pinned"});
  EXPECT_EQ(find_vm(m, "u1")->anti_affinity_groups, std::vector<std::string>{"db"});
}

}  // namespace
}  // namespace vmtide::model
