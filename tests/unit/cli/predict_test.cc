// SPDX-License-Identifier: Apache-2.0
// `vmtide predict`: sizes, rates and curves as typed, the errors for bad
// ones, the two models it runs, and how it prints them.
#include "predict.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <sstream>
#include <string>

#include "units.h"

namespace vmtide::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

double size_or_nan(std::string_view s) {
  const auto r = parse_size(s);
  return r ? *r : std::nan("");
}

TEST(PredictUnits, Sizes) {
  EXPECT_EQ(size_or_nan("4096"), 4096);
  EXPECT_EQ(size_or_nan("0"), 0);
  EXPECT_EQ(size_or_nan("512M"), 512e6);
  EXPECT_EQ(size_or_nan("512MB"), 512e6);
  EXPECT_EQ(size_or_nan("512Mi"), 512.0 * (1 << 20));
  EXPECT_EQ(size_or_nan("512MiB"), 512.0 * (1 << 20));
  EXPECT_EQ(size_or_nan("1.5Gi"), 1.5 * (1 << 30));
  EXPECT_EQ(size_or_nan(" 64 KiB "), 65536);
  EXPECT_EQ(size_or_nan("2k"), 2000);
  EXPECT_EQ(size_or_nan("1T"), 1e12);
  EXPECT_EQ(size_or_nan("1Ti"), std::pow(1024.0, 4));
  EXPECT_EQ(size_or_nan(".5K"), 500);
  for (const char* bad :
       {"", " ", "M", "abc", "-1", "+1", "1X", "1Mib", "1MiBs", "1 M i", "1e3", "inf", "nan", "1..2", "0x10", "1,5G"}) {
    const auto r = parse_size(bad);
    ASSERT_FALSE(r) << '"' << bad << '"';
    EXPECT_EQ(r.error().code, Errc::kInvalidArgument);
    EXPECT_THAT(r.error().context, HasSubstr("e.g. 4096, 512M")) << bad;
  }
}

TEST(PredictUnits, Rates) {
  EXPECT_EQ(*parse_rate("20M/s"), 20e6);
  EXPECT_EQ(*parse_rate("20M"), 20e6);
  EXPECT_EQ(*parse_rate("1.25G/s"), 1.25e9);
  EXPECT_FALSE(parse_rate("/s"));
  EXPECT_FALSE(parse_rate("20M/min"));
}

TEST(PredictUnits, Formatting) {
  EXPECT_EQ(format_bytes(512), "512 B");
  EXPECT_EQ(format_bytes(4096), "4.00 KiB");
  EXPECT_EQ(format_bytes(512e6), "488 MiB");
  EXPECT_EQ(format_bytes(2'254'857'830), "2.10 GiB");
  EXPECT_EQ(format_bytes(1024 * 1024 - 1), "1.00 MiB");
  EXPECT_EQ(format_rate(32 << 20), "32.0 MiB/s");
  EXPECT_EQ(format_bits_per_s(1.25e9), "1.25 Gbit/s");
  EXPECT_EQ(format_duration_ms(4.5), "4.5 ms");
  EXPECT_EQ(format_duration_ms(45), "45 ms");
  EXPECT_EQ(format_duration_ms(12'345), "12.3 s");
  EXPECT_EQ(format_duration_ms(3'600'000), "60.0 min");
}

TEST(PredictCurve, Parses) {
  const auto c = parse_dirty_curve("0.1:900, 0.25:2100 ,1:5120");
  ASSERT_TRUE(c) << c.error().message();
  ASSERT_EQ(c->size(), 3u);
  EXPECT_EQ((*c)[1].tau_s, 0.25);
  EXPECT_EQ((*c)[1].pages, 2100);
  EXPECT_EQ((*c)[2].tau_s, 1);
  for (const char* bad : {"", "0.1", "0.1:", ":900", "0.1:x", "0.1:900,", ",0.1:900", "a:b", "-1:5", "0.1:-5",
                          "0.1:900;1:1000", "1:nan"}) {
    const auto r = parse_dirty_curve(bad);
    ASSERT_FALSE(r) << '"' << bad << '"';
    EXPECT_THAT(r.error().context, HasSubstr("--dirty-curve")) << bad;
  }
}

PredictOptions lab_case() {
  PredictOptions o;
  o.ram = "512M";
  o.dirty_rate = "20M";
  o.bandwidth = "32M";
  return o;
}

std::string request_error(const PredictOptions& o) {
  const auto r = make_predict_request(o);
  return r ? std::string("ok") : r.error().context;
}

TEST(PredictRequest, RejectsBadInputNamingTheOption) {
  PredictOptions o = lab_case();
  o.ram = "0";
  EXPECT_THAT(request_error(o), HasSubstr("--ram: must be more than 0"));
  o = lab_case();
  o.bandwidth = "fast";
  EXPECT_THAT(request_error(o), HasSubstr("--bandwidth: \"fast\""));
  o = lab_case();
  o.touched = "1G";
  EXPECT_THAT(request_error(o), HasSubstr("--touched: more than --ram"));
  o = lab_case();
  o.working_set = "1G";
  EXPECT_THAT(request_error(o), HasSubstr("--working-set: more than --ram"));
  o = lab_case();
  o.page_size = "0";
  EXPECT_THAT(request_error(o), HasSubstr("--page-size"));
  o = lab_case();
  o.downtime_limit_ms = -1;
  EXPECT_THAT(request_error(o), HasSubstr("--downtime-limit"));
  o = lab_case();
  o.dirty_curve = "1:5";
  EXPECT_THAT(request_error(o), HasSubstr("exactly one"));
  o.dirty_rate.reset();
  o.dirty_curve.reset();
  EXPECT_THAT(request_error(o), HasSubstr("exactly one"));
  o.dirty_curve = "1:900,0.5:1000";
  EXPECT_THAT(request_error(o), HasSubstr("--dirty-curve: dirty curve: points must have increasing tau"));
  o.dirty_curve = "0.5:1000,1:900";
  EXPECT_THAT(request_error(o), HasSubstr("non-decreasing pages"));
}

TEST(PredictRequest, CurveBaselineIsTheMeanRateOfTheLastPoint) {
  PredictOptions o = lab_case();
  o.dirty_rate.reset();
  o.dirty_curve = "0.1:900,0.5:3600,2:10000";
  o.page_size = "4Ki";
  const auto r = make_predict_request(o);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_DOUBLE_EQ(r->setup.baseline_dirty_bytes_per_s, 10000.0 * 4096 / 2);
  EXPECT_EQ(r->inputs.dirty.at(0.5), 3600);
  EXPECT_EQ(r->inputs.page_bytes, 4096);
  EXPECT_EQ(r->inputs.nonzero_bytes, 512e6);  // --touched defaults to --ram
}

// Physical bounds from the inputs alone: pass 0 sends every touched byte,
// so the migration takes at least touched / bandwidth and sends at least
// that; a constant rate R < B sends at most M / (1 - R/B) in M / (B - R).
TEST(PredictRequest, ConstantRateWithinTheGeometricBounds) {
  const auto r = make_predict_request(lab_case());
  ASSERT_TRUE(r) << r.error().message();
  const auto p = predict_both(*r);
  ASSERT_TRUE(p) << p.error().message();
  const double m = 512e6, b = 32e6, rate = 20e6;
  for (const predictor::Prediction* x : {&p->precopy, &p->constant_rate}) {
    EXPECT_TRUE(x->converges);
    EXPECT_GE(x->total_s, m / b);
    EXPECT_LE(x->total_s, m / (b - rate) + 1);
    EXPECT_GE(x->bytes, m);
    EXPECT_LE(x->bytes, m / (1 - rate / b));
    EXPECT_LE(x->downtime_ms, 300 + 5);  // the limit, plus device state
    EXPECT_GE(x->passes, 2);
  }
}

TEST(PredictRequest, WorkingSetMakesTheCurveSaturate) {
  PredictOptions o = lab_case();
  o.ram = "512Mi";
  o.touched = "128Mi";
  o.working_set = "64Mi";
  o.dirty_rate = "20480K";
  o.bandwidth = "32Mi";
  const auto r = make_predict_request(o);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_NEAR(r->inputs.dirty.at(1000), 16384, 1);  // all 64 MiB, never more
  const auto p = predict_both(*r);
  ASSERT_TRUE(p);
  // A hot set is cheaper to move than its write rate suggests.
  EXPECT_LT(p->precopy.total_s, p->constant_rate.total_s);
  EXPECT_GE(p->precopy.total_s, 128.0 / 32);
}

predictor::Prediction not_converging() {
  predictor::Prediction p;
  p.converges = false;
  p.total_s = 3600;
  p.passes = 300;
  p.need_bandwidth_bytes_per_s = 50e6;
  p.need_throttle_pct = 40;
  return p;
}

TEST(PrintPrediction, TextSideBySide) {
  PredictionSetup s{.ram_bytes = 512e6,
                    .touched_bytes = 128e6,
                    .bandwidth_bytes_per_s = 32e6,
                    .auto_converge = true,
                    .dirty = "50.0 MiB/s of random writes over a 64.0 MiB working set",
                    .baseline_dirty_bytes_per_s = 50e6};
  PredictionPair p;
  p.precopy = {
      .converges = true, .total_s = 13.4, .downtime_ms = 270, .bytes = 427e6, .passes = 10, .final_throttle_pct = 50};
  p.constant_rate = not_converging();
  p.constant_rate.need_throttle_pct.reset();
  std::ostringstream out;
  print_prediction(out, s, p, PredictFormat::kText);
  EXPECT_EQ(out.str(),
            "Pre-copy migration: RAM 488 MiB (122 MiB touched, 4.00 KiB pages), bandwidth 30.5 MiB/s, downtime limit "
            "300 ms, auto-converge on.\n"
            "Dirtying: 50.0 MiB/s of random writes over a 64.0 MiB working set; the baseline assumes a constant "
            "47.7 MiB/s.\n"
            "                        vmtide (dirty curve)        baseline (constant rate)\n"
            "  converges             yes                         no\n"
            "  total time            13.4 s                      never\n"
            "  downtime              270 ms                      -\n"
            "  transferred           407 MiB                     -\n"
            "  passes                10                          -\n"
            "  final throttle        50 %                        n/a (no throttling)\n"
            "  would with bandwidth  -                           >= 47.7 MiB/s\n"
            "    or CPU throttled by -                           n/a (no throttling)\n");

  s.subject = "VM web-3 from kvm1 to kvm4";
  s.auto_converge = false;
  p.constant_rate.converges = true;
  std::ostringstream again;
  print_prediction(again, s, p, PredictFormat::kText);
  EXPECT_THAT(again.str(), HasSubstr("Pre-copy migration of VM web-3 from kvm1 to kvm4: RAM"));
  EXPECT_THAT(again.str(), Not(HasSubstr("throttle")));
}

TEST(PrintPrediction, Json) {
  PredictionSetup s{.subject = "VM \"q\"",
                    .ram_bytes = 512e6,
                    .touched_bytes = 512e6,
                    .bandwidth_bytes_per_s = 32e6,
                    .dirty = "x",
                    .baseline_dirty_bytes_per_s = 20e6};
  PredictionPair p{
      .precopy = {.converges = true, .total_s = 42.5, .downtime_ms = 237.5, .bytes = 1352915699, .passes = 9},
      .constant_rate = not_converging()};
  std::ostringstream out;
  print_prediction(out, s, p, PredictFormat::kJson);
  EXPECT_EQ(out.str(),
            R"({"setup":{"subject":"VM \"q\"","ram_bytes":512000000,"touched_bytes":512000000,"page_bytes":4096,)"
            R"("bandwidth_bytes_per_s":32000000,"downtime_limit_ms":300,"auto_converge":false,"dirty":"x",)"
            R"("baseline_dirty_bytes_per_s":20000000},)"
            R"("precopy":{"converges":true,"total_s":42.5,"downtime_ms":237.5,"bytes":1352915699,"passes":9,)"
            R"("final_throttle_pct":0,"need_bandwidth_bytes_per_s":null,"need_throttle_pct":null},)"
            R"("constant_rate":{"converges":false,"total_s":3600,"downtime_ms":0,"bytes":0,"passes":300,)"
            R"("final_throttle_pct":0,"need_bandwidth_bytes_per_s":50000000,"need_throttle_pct":40}})"
            "\n");
}

TEST(RunPredict, BadInputIsExitTwo) {
  PredictOptions o = lab_case();
  o.bandwidth = "0";
  std::ostringstream out, err;
  EXPECT_EQ(run_predict(o, out, err), 2);
  EXPECT_EQ(out.str(), "");
  EXPECT_EQ(err.str(), "vmtide predict: --bandwidth: must be more than 0\n");
  o = lab_case();
  std::ostringstream ok;
  EXPECT_EQ(run_predict(o, ok, err), 0);
  EXPECT_THAT(ok.str(), HasSubstr("converges             yes"));
}

}  // namespace
}  // namespace vmtide::cli
