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

// QEMU's switchover, as the model has it (precopy.h): with bandwidth B,
// window 100 ms and limit 300 ms, the threshold is T = 0.3 B, a window
// sends G = 0.1 B, and a check lands on average L = T - G/2 below it.
// Before the lab calibration (docs/prediction-accuracy.md) the model sent
// whole passes and copied the rest at B; QEMU leaves the pass-0 tail and
// nearly a threshold's worth for a stop-and-copy that runs without the
// rate limit. The hand-computed figures below were updated for that, step
// by step.

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
  // The tail of pass 0 below the threshold, L = 30 - 5 = 25 MiB of pages
  // (a quarter of them non-zero, the rest 8-byte headers), goes in the
  // stop-and-copy: 25 MiB x (1/4 + 3/4 x 8/4096) at 100 MiB/s, plus the
  // device state. (Before: 5 ms, device state only.)
  const double tail = 25 * kMiB * (0.25 + 0.75 * 8 / 4096.0);
  EXPECT_NEAR(p->downtime_ms, tail / (100 * kMiB) * 1000 + 5, 1e-6);
  EXPECT_NEAR(p->total_s, 0.020 + bytes0 / (100 * kMiB) + 0.005, 1e-9);
  // The stop-and-copy runs at the link's own rate, not the capped one.
  in.link_bytes_per_s = 1000 * kMiB;
  auto f = predict_precopy(in);
  ASSERT_TRUE(f);
  EXPECT_NEAR(f->downtime_ms, tail / (1000 * kMiB) * 1000 + 5, 1e-6);
  EXPECT_EQ(f->passes, 1);
  EXPECT_DOUBLE_EQ(f->bytes, bytes0);
}

TEST(Precopy, HandComputedPasses) {
  // 1000 MiB at 100 MiB/s, a sequential writer at 10 MiB/s over a large
  // set. T = 30 MiB, G = 10 MiB, L = 25 MiB.
  Inputs in = base();
  in.ram_bytes = in.nonzero_bytes = 1000 * kMiB;
  in.dirty = DirtyCurve::sequential(10 * kMiB / 4096, 1e9);
  // Pass 0 sends 1000 - 25 = 975 MiB in 9.75 s; 97.5 MiB get dirtied, of
  // which those on the 25 MiB tail still pending (2.5 %) add nothing.
  const double y0 = 97.5 * (1 - 25.0 / 1000);  // >= G: another pass
  // Pass 1 sends them; a sequential writer never rewrites what it wrote in
  // the pass before, so all it dirties is new: still over G? No: the end.
  const double t1 = y0 / 100, y1 = 10 * t1;
  // One window dirties yw = 1 MiB, so each further window brings the
  // leftover s = G - yw closer: E[n] = (s m(m+1)/2 + (m+1) r) / G with
  // m = floor(y1/s) = 1, r = y1 - s.
  const double yw = 1, s = 10 - yw, r = y1 - s;
  const double n = (s * 1 + 2 * r) / 10;
  // Switching over at the first check (probability (G - y1)/G) leaves
  // L + y1 on average 25 + y1/2; later ones 25 + yw/2.
  const double first = (10 - y1) / 10;
  const double final_mib = first * (25 + y1 / 2) + (1 - first) * (25 + yw / 2);
  auto p = predict_precopy(in);
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->converges);
  EXPECT_NEAR(p->syncs, 2 + n, 1e-9);
  EXPECT_EQ(p->passes, 3);  // round(3.001)
  EXPECT_NEAR(p->bytes / kMiB, 975 + y0 + n * 10 + final_mib, 1e-6);
  EXPECT_NEAR(p->downtime_ms, final_mib / 100 * 1000 + 5, 1e-6);
  EXPECT_NEAR(p->total_s, 0.020 + 9.75 + t1 + n * 0.1 + final_mib / 100 + 0.005, 1e-9);
  // The textbook model keeps its whole passes: pass 0 sends 1000 MiB in
  // 10 s, 100 MiB get dirtied; pass 1 sends them in 1 s, 10 MiB get
  // dirtied; 10 MiB <= 100 MiB/s x 0.3 s: stop and copy at 100 MiB/s.
  auto b = predict_constant_rate(in, 10 * kMiB);
  ASSERT_TRUE(b);
  EXPECT_TRUE(b->converges);
  EXPECT_EQ(b->passes, 2);
  EXPECT_NEAR(b->bytes, 1110 * kMiB, 1);
  EXPECT_NEAR(b->downtime_ms, 100.0 + 5.0, 1e-6);
  EXPECT_NEAR(b->total_s, 0.020 + 10 + 1 + 0.105, 1e-6);
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
  // The stop-and-copy carries the set (less what lands on the pass-0 tail
  // still pending: its 6400 pages hold 6400 x 1000/262144 of the set) and
  // that tail (a sixteenth non-zero). Before: the set alone, 44 ms.
  const double c = 1 - 6400.0 * 1000 / 262144 / 1000;
  const double y = 1000 * c * 4096 / kMiB;                          // MiB, all of the set: D saturates
  const double yw = 1000 * (1 - std::exp(-5.0)) * c * 4096 / kMiB;  // one window's share
  const double frac = 1 / 16.0 + 15 / 16.0 * 8 / 4096;              // bytes sent per byte of tail
  const double first = (10 - y) / 10;
  const double final_mib = first * (frac * (30 - (10 + y) / 2) + y) + (1 - first) * (frac * (30 - (10 + yw) / 2) + yw);
  EXPECT_NEAR(p->downtime_ms, final_mib / 100 * 1000 + 5, 1e-6);
  auto b = predict_constant_rate(in, 50000.0 * 4096);
  ASSERT_TRUE(b);
  EXPECT_FALSE(b->converges);
}

TEST(Precopy, MatchesAMeasuredLabMigration) {
  // A real QMP migration on the lab machine (QEMU 10.0.2, TCG, docs/
  // prediction-accuracy.md): 256 MiB guest, 158 MiB non-zero, 64 MiB set
  // written at random at 5 000 pages/s, 32 MiB/s, limit 300 ms, loopback
  // at 1.1 GB/s. QEMU took 7.32 s, 247 MiB, 6 passes (8 dirty syncs) and
  // 11 ms of downtime. From the true curve the model must land within the
  // lab's goals: 10 % of time and bytes, 25 ms of downtime, a pass or so.
  Inputs in;
  in.ram_bytes = 256 * kMiB;
  in.nonzero_bytes = 165478000;
  in.bandwidth_bytes_per_s = 32 * kMiB;
  in.link_bytes_per_s = 1139320000;
  in.dirty = DirtyCurve::uniform_random(5000, 16384);
  auto p = predict_precopy(in);
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->converges);
  EXPECT_NEAR(p->total_s, 7.322, 0.1 * 7.322);
  EXPECT_NEAR(p->bytes, 259014000, 0.1 * 259014000);
  EXPECT_NEAR(p->downtime_ms, 11, 25);
  EXPECT_NEAR(p->passes, 6, 1);
  // The textbook model stops at whole passes and copies the rest at the
  // capped rate: a downtime near the limit, which QEMU never shows here.
  auto b = predict_constant_rate(in, 5000 * 4096.0);
  ASSERT_TRUE(b);
  EXPECT_GT(b->downtime_ms, 100);
}

TEST(Precopy, ALimitShorterThanAWindowSwitchesOverAfterAQuickResync) {
  // A real QMP migration under a 50 ms limit (QEMU 10.0.2, TCG): 256 MiB
  // guest, 167 MB non-zero, a 16 MiB set written at random at 8 000
  // pages/s, 40 MiB/s, loopback at 3.2 GB/s. QEMU took 4.91 s, 210 MB,
  // 7 passes, 3 ms down. One window's dirtying (~730 pages, 3.0 MB) is
  // above the threshold (40 MiB/s x 50 ms = 2.1 MB) but within a window's
  // budget (4.2 MB): QEMU's trace shows it sending such a sync's pages at
  // once and syncing again a millisecond later, with nothing new, and
  // switching over there. A model checking only once per window never
  // converges here.
  Inputs in;
  in.ram_bytes = 256 * kMiB;
  in.nonzero_bytes = 167051000;
  in.bandwidth_bytes_per_s = 41943000;
  in.link_bytes_per_s = 3154270000;
  in.downtime_limit_ms = 50;
  in.dirty = DirtyCurve::uniform_random(8000, 4096);
  auto p = predict_precopy(in);
  ASSERT_TRUE(p) << p.error().message();
  ASSERT_TRUE(p->converges);
  EXPECT_NEAR(p->total_s, 4.911, 0.1 * 4.911);
  EXPECT_NEAR(p->bytes, 210340000, 0.1 * 210340000);
  EXPECT_NEAR(p->downtime_ms, 3, 25);
  EXPECT_NEAR(p->passes, 7, 2);
  // What stops is what the guest wrote in the millisecond between the last
  // two syncs, not a threshold's worth.
  EXPECT_LT(p->stop_bytes, 0.1 * in.bandwidth_bytes_per_s * in.downtime_limit_ms / 1000);
  // Twice the rate: a window's dirtying outgrows a window's budget.
  in.dirty = DirtyCurve::uniform_random(16000, 4096);
  auto q = predict_precopy(in);
  ASSERT_TRUE(q);
  EXPECT_FALSE(q->converges);
}

TEST(Precopy, ThrottleSlowsOnlyTheCpuTheGuestUses) {
  // A writer paced by the clock that needs 10 % of its vCPU loses nothing
  // to a throttle below 90 %: auto-converge cannot rescue it (lab facts).
  Inputs in = base();
  in.ram_bytes = 512 * kMiB;
  in.nonzero_bytes = 128 * kMiB;
  in.bandwidth_bytes_per_s = 32 * kMiB;
  in.dirty = DirtyCurve::uniform_random(12000, 16384);
  in.auto_converge = true;
  in.vcpu_busy_frac = 1;
  auto busy = predict_precopy(in);
  in.vcpu_busy_frac = 0.1;
  auto idle = predict_precopy(in);
  ASSERT_TRUE(busy && idle);
  EXPECT_TRUE(busy->converges);
  if (idle->converges) {
    EXPECT_GT(idle->final_throttle_pct, 90);
    EXPECT_GT(idle->total_s, busy->total_s);
  }
  // Held from the start, the throttle that makes it converge is higher.
  in.auto_converge = false;
  auto need_idle = predict_precopy(in);
  in.vcpu_busy_frac = 1;
  auto need_busy = predict_precopy(in);
  ASSERT_TRUE(need_idle && need_busy);
  ASSERT_TRUE(need_idle->need_throttle_pct && need_busy->need_throttle_pct);
  EXPECT_GT(*need_idle->need_throttle_pct, *need_busy->need_throttle_pct);
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

TEST(Precopy, ACurveFlatFromItsFirstWindowIsNotTakenForASlowWriter) {
  // The lab's CPU-bound writer seen through 0.5/1.5/4 s windows: its 64 MiB
  // set is rewritten within the first window, so the curve says only "at
  // least 32 000 pages/s" (truth: ~3 million). Auto-converge's 99 % bursts
  // (5.5 ms of guest time each) must not be taken to write 1 % of the set:
  // at 32 MiB/s a burst that rewrites the set outruns the link, and the lab
  // saw this migration fail to converge in 70 s.
  Inputs in = base();
  in.ram_bytes = 256 * kMiB;
  in.nonzero_bytes = 157 * kMiB;
  in.bandwidth_bytes_per_s = 32 * kMiB;
  in.auto_converge = true;
  in.vcpu_busy_frac = 1;
  auto flat = DirtyCurve::make({{0.5, 16128}, {1.5, 16523}, {4, 16523}}, 40192);
  ASSERT_TRUE(flat);
  EXPECT_TRUE(flat->saturated_at_first());
  in.dirty = *flat;
  auto p = predict_precopy(in);
  ASSERT_TRUE(p);
  EXPECT_FALSE(p->converges && p->total_s < 70) << p->total_s << " s at " << p->final_throttle_pct << " % in " << p->passes;
  // A writer still climbing at its first window (the paced 12 000 pages/s
  // one) is interpolated as before, and auto-converge rescues it.
  auto climbing = DirtyCurve::make({{0.5, 4224}, {1.5, 10752}, {4, 16384}}, 40192);
  ASSERT_TRUE(climbing);
  EXPECT_FALSE(climbing->saturated_at_first());
  in.dirty = *climbing;
  in.vcpu_busy_frac = 0.07;
  auto q = predict_precopy(in);
  ASSERT_TRUE(q);
  EXPECT_TRUE(q->converges);
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
  in = base();
  in.vcpu_busy_frac = 0;
  EXPECT_FALSE(predict_precopy(in));
  in = base();
  in.window_ms = 0;
  EXPECT_FALSE(predict_precopy(in));
  in = base();
  in.link_bytes_per_s = -1;
  EXPECT_FALSE(predict_precopy(in));
}

TEST(DirtyCurve, InterpolatesExtendsAndCaps) {
  auto c = DirtyCurve::make({{1.0, 100}, {2.0, 150}}, 180);
  ASSERT_TRUE(c);
  EXPECT_DOUBLE_EQ(c->at(0.5), 50);   // from the origin
  EXPECT_DOUBLE_EQ(c->at(1.5), 125);  // between points
  // Beyond the last point the slope keeps decaying as it did: 100/s over
  // (0, 1], 50/s over (1, 2], so k = ln 2 per second, 50 e^(-k/2) at 2 s.
  const double k = std::log(2.0), s2 = 50 * std::exp(-k / 2);
  EXPECT_NEAR(c->at(2.5), 150 + s2 / k * (1 - std::exp(-k / 2)), 1e-9);
  EXPECT_DOUBLE_EQ(c->at(10), 180);  // capped
  EXPECT_DOUBLE_EQ(c->at(0), 0);
  // A slope that is not decaying is held.
  auto lin = DirtyCurve::make({{1.0, 100}, {2.0, 200}}, 1000);
  ASSERT_TRUE(lin);
  EXPECT_DOUBLE_EQ(lin->at(3), 300);
  auto r = DirtyCurve::uniform_random(5000, 16384);
  EXPECT_NEAR(r.at(2.0), 16384 * (1 - std::exp(-10000.0 / 16384)), 16384 * 0.01);
}

TEST(DirtyCurve, ExtendsBeyondTheLongestWindowAsTheWriterSaturates) {
  // The lab's windows (0.5, 1.5, 4 s) read off a uniform writer of 2 000
  // pages/s over 8 192 pages, and a sequential sweep of 12 288 pages at
  // 4 000 pages/s as QEMU's page-sampling measured it (a real run); pass 0
  // of a larger VM reads them at 8.5 s.
  auto truth = DirtyCurve::uniform_random(2000, 8192);
  auto rnd = DirtyCurve::make({{0.5, truth.at(0.5)}, {1.5, truth.at(1.5)}, {4.0, truth.at(4.0)}}, 1e6);
  ASSERT_TRUE(rnd);
  EXPECT_NEAR(rnd->at(8.5), truth.at(8.5), 0.03 * truth.at(8.5));
  // Holding the last slope (the old extension) overshoots by a third.
  const double held = truth.at(4.0) + (truth.at(4.0) - truth.at(1.5)) / 2.5 * 4.5;
  EXPECT_GT(held, 1.3 * truth.at(8.5));
  auto seq = DirtyCurve::make({{0.5, 1793}, {1.5, 6400}, {4.0, 11605}}, 52511);
  ASSERT_TRUE(seq);
  const double sweep = 12288;
  EXPECT_LT(std::abs(seq->at(8.5) - sweep), 0.15 * sweep);
  EXPECT_GT(seq->at(8.5), seq->at(4.0));  // still non-decreasing
}

}  // namespace
}  // namespace vmtide::predictor
