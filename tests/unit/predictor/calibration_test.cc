// SPDX-License-Identifier: Apache-2.0
// Online calibration per host pair: what one finished migration teaches
// makes the next prediction for the same pair closer to what happens.
#include <gtest/gtest.h>

#include <cmath>

#include "calibration.h"
#include "precopy.h"

namespace vmtide::predictor {
namespace {

constexpr double kMiB = 1024.0 * 1024.0;

// A migration as the link really runs it: QEMU achieves 70 % of the
// configured cap (a sender short of CPU) and stops-and-copies at 300 MB/s,
// where the controller assumed the cap and a 1.1 GB/s link. The model with
// the true figures plays QEMU.
struct Pair {
  double true_factor = 0.7;
  double true_stop = 300e6;
  Inputs assumed(double ws_pages, double rate) const {
    Inputs in;
    in.ram_bytes = 1024 * kMiB;
    in.nonzero_bytes = 400 * kMiB;
    in.bandwidth_bytes_per_s = 64 * kMiB;
    in.link_bytes_per_s = 1.1e9;
    in.dirty = DirtyCurve::uniform_random(rate, ws_pages);
    return in;
  }
  Prediction actual(const Inputs& assumed_in) const {
    Inputs t = assumed_in;
    t.bandwidth_bytes_per_s *= true_factor;
    t.link_bytes_per_s = true_stop;
    return *predict_precopy(t);
  }
  MigrationFigures figures(const Inputs& assumed_in, const Prediction& a) const {
    MigrationFigures f;
    f.assumed_bw_bytes_per_s = assumed_in.bandwidth_bytes_per_s;
    f.total_ms = a.total_s * 1000;
    f.setup_ms = assumed_in.setup_ms;
    f.downtime_ms = a.downtime_ms;
    f.bytes = a.bytes;
    f.downtime_bytes = a.stop_bytes;
    f.succeeded = true;
    return f;
  }
};

double rel(double a, double b) { return std::abs(a - b) / b; }

TEST(Calibration, SecondPredictionForThePairIsCloser) {
  Pair pair;
  CalibrationTable table;
  // First migration on the pair: predicted with what the controller assumed.
  const Inputs in1 = pair.assumed(16384, 5000);
  const Prediction first = *predict_precopy(apply(in1, table.get("a", "b")));
  const Prediction real1 = pair.actual(in1);
  table.record("a", "b", pair.figures(in1, real1));
  // A second, different VM on the same pair.
  const Inputs in2 = pair.assumed(32768, 8000);
  const Prediction uncalibrated = *predict_precopy(in2);
  const Prediction second = *predict_precopy(apply(in2, table.get("a", "b")));
  const Prediction real2 = pair.actual(in2);
  ASSERT_TRUE(real1.converges && real2.converges);
  const double err_first = rel(first.total_s, real1.total_s);
  const double err_second = rel(second.total_s, real2.total_s);
  EXPECT_GT(err_first, 0.2) << "the assumed cap is 40 % too fast";
  EXPECT_LT(err_second, err_first / 4);
  EXPECT_LT(err_second, rel(uncalibrated.total_s, real2.total_s) / 4);
  EXPECT_LT(std::abs(second.downtime_ms - real2.downtime_ms), std::abs(uncalibrated.downtime_ms - real2.downtime_ms));
  const LinkCalibration c = table.get("a", "b");
  EXPECT_EQ(c.migrations, 1);
  EXPECT_NEAR(c.bw_factor, 0.7, 0.05);
  EXPECT_NEAR(c.stop_bytes_per_s, 300e6, 300e6 * 0.05);
  // Another pair learnt nothing.
  EXPECT_EQ(table.get("b", "a").migrations, 0);
}

TEST(Calibration, FoldsEvidenceAndIgnoresFailures) {
  MigrationFigures f;
  f.assumed_bw_bytes_per_s = 100e6;
  f.total_ms = 10'000 + 20 + 15;  // 10 s iterating, 20 ms setup, 15 ms down
  f.setup_ms = 20;
  f.downtime_ms = 15;
  f.bytes = 800e6 + 5e6;   // 80 MB/s while iterating
  f.downtime_bytes = 5e6;  // (15 - 5) ms for 5 MB: 500 MB/s
  f.succeeded = true;
  LinkCalibration c = calibrate({}, f);
  EXPECT_NEAR(c.bw_factor, 0.8, 1e-9);
  EXPECT_NEAR(c.stop_bytes_per_s, 500e6, 1e-3);
  // A second migration at full speed moves the factor half-way.
  f.bytes = 1000e6 + 5e6;
  c = calibrate(c, f);
  EXPECT_NEAR(c.bw_factor, 0.9, 1e-9);
  EXPECT_EQ(c.migrations, 2);
  // Failed or empty figures teach nothing.
  MigrationFigures bad = f;
  bad.succeeded = false;
  EXPECT_EQ(calibrate(c, bad).migrations, 2);
  bad = f;
  bad.total_ms = 0;
  EXPECT_EQ(calibrate(c, bad).bw_factor, c.bw_factor);
  // One stalled stop-and-copy (10x slower) moves the rate 2x, not 10x.
  MigrationFigures stall = f;
  stall.downtime_ms = 5 + 100;  // 5 MB in 100 ms: 50 MB/s
  EXPECT_NEAR(calibrate(c, stall).stop_bytes_per_s, 500e6 / 2, 1e3);
  // With nothing learnt it starts from the assumed link rate.
  stall.assumed_stop_bytes_per_s = 2e9;
  EXPECT_NEAR(calibrate({}, stall).stop_bytes_per_s, 1e9, 1e3);
  // An absurd run is bounded.
  f.bytes = 1e6;
  EXPECT_GE(calibrate({}, f).bw_factor, 0.2);
  // Applying it scales the bandwidth and sets the stop-and-copy rate.
  Inputs in;
  in.bandwidth_bytes_per_s = 100e6;
  const Inputs a = apply(in, c);
  EXPECT_NEAR(a.bandwidth_bytes_per_s, 90e6, 1e-3);
  EXPECT_NEAR(a.link_bytes_per_s, 500e6, 1e-3);
  EXPECT_EQ(apply(in, {}).bandwidth_bytes_per_s, 100e6);  // nothing learnt: unchanged
}

TEST(VmDirtyCalibration, RatioIsBoundedAndFadesWithItsHalfLife) {
  VmDirtyCalibration c(600);
  EXPECT_EQ(c.factor("a", 0), 1.0) << "nothing learnt";
  c.record("a", 30e6, 10e6, 100);
  EXPECT_NEAR(c.factor("a", 100), 3.0, 1e-12);
  EXPECT_NEAR(c.factor("a", 700), std::sqrt(3.0), 1e-12);
  EXPECT_NEAR(c.factor("a", 1300), std::pow(3.0, 0.25), 1e-12);
  // One pass can catch a burst: at most 4x either way, and a slower guest
  // fades back like a faster one.
  c.record("b", 1e9, 1e6, 0);
  EXPECT_NEAR(c.factor("b", 0), 4.0, 1e-12);
  c.record("b", 1e6, 1e9, 0);
  EXPECT_NEAR(c.factor("b", 0), 0.25, 1e-12);
  EXPECT_NEAR(c.factor("b", 600), 0.5, 1e-12);
  // Nonsense is ignored and keeps what was learnt.
  c.record("a", 0, 10e6, 100);
  c.record("a", NAN, 10e6, 100);
  c.record("a", 10e6, -1, 100);
  EXPECT_NEAR(c.factor("a", 100), 3.0, 1e-12);
  // Pruned once it has faded to nothing.
  EXPECT_EQ(c.size(), 2u);
  c.prune(100 + 600 * 20);
  EXPECT_EQ(c.size(), 0u);
}

TEST(MigrationDirtyRate, EachFigureIsPairedWithTheCurveOverItsOwnSyncs) {
  // A uniform writer of 5 000 pages/s over 16 384 pages, migration from
  // t = 10 s. QEMU's first figure comes with sync 2 (pass 0, 4 s): one
  // sync's worth of D(4 s) over 4 s. A repeat of the same figure is not a
  // new one; the next covers the six syncs of the following 1.2 s.
  const DirtyCurve c = DirtyCurve::uniform_random(5000, 16384);
  MigrationDirtyRate r(10);
  EXPECT_FALSE(r.is_new(1, 3000)) << "the setup sync's figure";
  r.observe(12, 1, 3000, c);
  EXPECT_EQ(r.measured_pages_per_s(), 0);
  r.observe(14, 2, 3000, c);
  EXPECT_DOUBLE_EQ(r.measured_pages_per_s(), 3000);
  EXPECT_NEAR(r.expected_pages_per_s(), c.at(4) / 4, 1e-9);
  EXPECT_FALSE(r.is_new(3, 3000));
  r.observe(15.2, 8, 4500, c);
  EXPECT_DOUBLE_EQ(r.measured_pages_per_s(), 4500);
  EXPECT_NEAR(r.expected_pages_per_s(), 6 * c.at(0.2) / 1.2, 1e-9);
  EXPECT_GT(r.expected_pages_per_s(), c.at(2) / 2) << "short syncs find more per second than a 2 s window";
}

}  // namespace
}  // namespace vmtide::predictor
