// SPDX-License-Identifier: Apache-2.0
// The pre-copy predictor against hand-computed cases and properties that
// must hold for any inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "precopy.h"

namespace vmtide::predictor {
namespace {

constexpr double kMiB = 1024.0 * 1024.0;

Inputs base() {
  Inputs in;
  in.ram_bytes = 1024 * kMiB;
  in.nonzero_bytes = 1024 * kMiB;
  in.bandwidth_bytes_per_s = 100 * kMiB;
  in.setup_ms = 20;
  in.device_state_ms = 5;
  return in;
}

TEST(Precopy, IdleVmIsOnePass) {
  Inputs in = base();
  in.nonzero_bytes = 256 * kMiB;
  // Pass 0: 256 MiB of data + 768 MiB / 4 KiB zero pages x 8 bytes of header.
  const double bytes0 = 256 * kMiB + (768 * kMiB / 4096) * 8;
  auto p = predict_precopy(in);
  ASSERT_TRUE(p) << p.error().message();
  EXPECT_TRUE(p->converges);
  EXPECT_EQ(p->passes, 1);
  EXPECT_DOUBLE_EQ(p->bytes, bytes0);
  EXPECT_DOUBLE_EQ(p->downtime_ms, 5.0);  // nothing left: device state only
  EXPECT_NEAR(p->total_s, 0.020 + bytes0 / (100 * kMiB) + 0.005, 1e-9);
}

TEST(Precopy, HandComputedTwoPasses) {
  // 1000 MiB at 100 MiB/s, a sequential writer at 10 MiB/s over a large set:
  // pass 0 sends 1000 MiB in 10 s, 100 MiB get dirtied; pass 1 sends them in
  // 1 s, 10 MiB get dirtied; 10 MiB <= 100 MiB/s x 0.3 s: stop and copy.
  Inputs in = base();
  in.ram_bytes = in.nonzero_bytes = 1000 * kMiB;
  in.dirty = DirtyCurve::sequential(10 * kMiB / 4096, 1e9);
  auto p = predict_precopy(in);
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->converges);
  EXPECT_EQ(p->passes, 2);
  EXPECT_NEAR(p->bytes, 1110 * kMiB, 1);
  EXPECT_NEAR(p->downtime_ms, 100.0 + 5.0, 1e-6);
  EXPECT_NEAR(p->total_s, 0.020 + 10 + 1 + 0.105, 1e-6);
  // The textbook model agrees when the dirty rate really is constant.
  auto b = predict_constant_rate(in, 10 * kMiB);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->passes, p->passes);
  EXPECT_NEAR(b->total_s, p->total_s, 1e-6);
}

TEST(Precopy, HotSetCountsDistinctPagesNotWrites) {
  // 50 000 writes/s into 1 000 pages: after pass 0 about 1 000 pages are
  // dirty, not 50 000 x the pass time. The constant-rate model, fed the
  // write rate, sees 195 MiB/s against a 100 MiB/s link and never converges.
  Inputs in = base();
  in.nonzero_bytes = 64 * kMiB;
  in.dirty = DirtyCurve::uniform_random(50000, 1000);
  auto p = predict_precopy(in);
  ASSERT_TRUE(p);
  ASSERT_TRUE(p->converges);
  EXPECT_EQ(p->passes, 1);
  EXPECT_NEAR(p->trace[0].dirtied_pages, 1000, 1);
  EXPECT_NEAR(p->downtime_ms, 1000 * 4096 / (100 * kMiB) * 1000 + 5, 0.1);
  auto b = predict_constant_rate(in, 50000.0 * 4096);
  ASSERT_TRUE(b);
  EXPECT_FALSE(b->converges);
}

TEST(Precopy, NonConvergingSaysWhatWouldConverge) {
  // The lab's case (lab-facts): 64 MiB written at random at 12 000 pages/s,
  // 32 MiB/s: never converges.
  Inputs in = base();
  in.ram_bytes = 512 * kMiB;
  in.nonzero_bytes = 128 * kMiB;
  in.bandwidth_bytes_per_s = 32 * kMiB;
  in.dirty = DirtyCurve::uniform_random(12000, 16384);
  auto p = predict_precopy(in);
  ASSERT_TRUE(p);
  EXPECT_FALSE(p->converges);
  ASSERT_TRUE(p->need_bandwidth_bytes_per_s);
  EXPECT_GT(*p->need_bandwidth_bytes_per_s, 32 * kMiB);
  ASSERT_TRUE(p->need_throttle_pct);
  EXPECT_GT(*p->need_throttle_pct, 0);
  EXPECT_LE(*p->need_throttle_pct, 99);
  // Both answers hold when applied.
  Inputs faster = in;
  faster.bandwidth_bytes_per_s = *p->need_bandwidth_bytes_per_s;
  EXPECT_TRUE(predict_precopy(faster)->converges);
  faster.bandwidth_bytes_per_s = *p->need_bandwidth_bytes_per_s * 0.95;
  EXPECT_FALSE(predict_precopy(faster)->converges) << "the least bandwidth, not just some";
}

TEST(Precopy, AutoConvergeRescuesByThrottling) {
  Inputs in = base();
  in.ram_bytes = 512 * kMiB;
  in.nonzero_bytes = 128 * kMiB;
  in.bandwidth_bytes_per_s = 32 * kMiB;
  in.dirty = DirtyCurve::uniform_random(12000, 16384);
  in.auto_converge = true;
  auto p = predict_precopy(in);
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->converges);
  EXPECT_GE(p->final_throttle_pct, 20);
  // The throttle only rises, in QEMU's steps: 20, 30, 40, ...
  double last = 0;
  for (const auto& pass : p->trace) {
    EXPECT_GE(pass.throttle_pct, last);
    EXPECT_EQ(std::fmod(pass.throttle_pct, 10.0), 0.0);
    last = pass.throttle_pct;
  }
}

TEST(Precopy, MoreBandwidthNeverLongerMoreDirtyingNeverShorter) {
  std::mt19937 rng(20261125);
  std::uniform_real_distribution<double> u(0, 1);
  int compared = 0;
  for (int i = 0; i < 2000; ++i) {
    Inputs in = base();
    in.ram_bytes = (256 + 4096 * u(rng)) * kMiB;
    in.nonzero_bytes = in.ram_bytes * u(rng);
    in.bandwidth_bytes_per_s = (10 + 1000 * u(rng)) * kMiB;
    const double ws = 1000 + 100000 * u(rng), rate = 50000 * u(rng);
    in.dirty = DirtyCurve::uniform_random(rate, ws);
    auto p = predict_precopy(in);
    Inputs faster = in;
    faster.bandwidth_bytes_per_s *= 1.0 + u(rng);
    auto f = predict_precopy(faster);
    Inputs dirtier = in;
    dirtier.dirty = DirtyCurve::uniform_random(rate * (1.0 + u(rng)), ws);
    auto d = predict_precopy(dirtier);
    ASSERT_TRUE(p && f && d);
    EXPECT_GE(p->bytes, in.nonzero_bytes);
    EXPECT_GE(p->passes, 1);
    if (p->converges) {
      EXPECT_LE(p->downtime_ms, in.downtime_limit_ms + in.device_state_ms + 1e-9);
      ASSERT_TRUE(f->converges) << "more bandwidth lost convergence, case " << i;
      EXPECT_LE(f->total_s, p->total_s + 1e-9) << "case " << i;
      if (d->converges) {
        EXPECT_GE(d->total_s, p->total_s - 1e-9) << "case " << i;
      }
      ++compared;
    } else {
      EXPECT_FALSE(d->converges) << "more dirtying gained convergence, case " << i;
    }
  }
  EXPECT_GT(compared, 500) << "the sweep must exercise converging cases";
}

TEST(Precopy, RejectsBadInput) {
  Inputs in = base();
  in.bandwidth_bytes_per_s = 0;
  EXPECT_EQ(predict_precopy(in).error().code, Errc::kInvalidArgument);
  in = base();
  in.nonzero_bytes = in.ram_bytes * 2;
  EXPECT_FALSE(predict_precopy(in));
  in = base();
  in.ram_bytes = NAN;
  EXPECT_FALSE(predict_precopy(in));
  EXPECT_FALSE(DirtyCurve::make({{1.0, 10}, {0.5, 20}}, 100));  // tau goes back
  EXPECT_FALSE(DirtyCurve::make({{1.0, 10}, {2.0, 5}}, 100));   // pages go down
  EXPECT_FALSE(predict_constant_rate(base(), -1));
}

TEST(DirtyCurve, InterpolatesExtendsAndCaps) {
  auto c = DirtyCurve::make({{1.0, 100}, {2.0, 150}}, 180);
  ASSERT_TRUE(c);
  EXPECT_DOUBLE_EQ(c->at(0.5), 50);   // from the origin
  EXPECT_DOUBLE_EQ(c->at(1.5), 125);  // between points
  EXPECT_DOUBLE_EQ(c->at(2.5), 175);  // the last slope, 50/s
  EXPECT_DOUBLE_EQ(c->at(10), 180);   // capped
  EXPECT_DOUBLE_EQ(c->at(0), 0);
  auto r = DirtyCurve::uniform_random(5000, 16384);
  EXPECT_NEAR(r.at(2.0), 16384 * (1 - std::exp(-10000.0 / 16384)), 16384 * 0.01);
}

}  // namespace
}  // namespace vmtide::predictor
