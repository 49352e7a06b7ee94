// SPDX-License-Identifier: Apache-2.0
// Pre-copy prediction (precopy.h).
#include "precopy.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace vmtide::predictor {
namespace {

bool finite_nonneg(double v) { return std::isfinite(v) && v >= 0; }

Status validate(const Inputs& in) {
  auto bad = [](const std::string& m) { return make_error(Errc::kInvalidArgument, "predictor: " + m); };
  if (!(std::isfinite(in.ram_bytes) && in.ram_bytes > 0)) return bad("ram_bytes must be > 0");
  if (!finite_nonneg(in.nonzero_bytes) || in.nonzero_bytes > in.ram_bytes) return bad("nonzero_bytes must be in [0, ram_bytes]");
  if (!(std::isfinite(in.page_bytes) && in.page_bytes > 0)) return bad("page_bytes must be > 0");
  if (!(std::isfinite(in.bandwidth_bytes_per_s) && in.bandwidth_bytes_per_s > 0)) return bad("bandwidth must be > 0");
  for (double v : {in.downtime_limit_ms, in.device_state_ms, in.setup_ms, in.zero_page_header_bytes, in.max_total_s}) {
    if (!finite_nonneg(v)) return bad("times and sizes must be finite and >= 0");
  }
  if (in.max_passes < 1) return bad("max_passes must be >= 1");
  if (!(in.throttle_max_pct >= 0 && in.throttle_max_pct < 100)) return bad("throttle_max_pct must be in [0, 100)");
  return {};
}

// The loop itself. `fixed_throttle_pct` >= 0 pins the throttle from the
// start (for "which throttle would make it converge"); auto-converge then
// does not change it.
Prediction run(const Inputs& in, double fixed_throttle_pct) {
  Prediction p;
  const double zero_pages = (in.ram_bytes - in.nonzero_bytes) / in.page_bytes;
  const double threshold = in.bandwidth_bytes_per_s * in.downtime_limit_ms / 1000.0;
  double to_send = in.nonzero_bytes + zero_pages * in.zero_page_header_bytes;
  double throttle = fixed_throttle_pct >= 0 ? fixed_throttle_pct : 0;
  int high = 0;  // QEMU's dirty_rate_high_cnt
  p.total_s = in.setup_ms / 1000.0;
  for (int pass = 0; pass < in.max_passes; ++pass) {
    const double t = to_send / in.bandwidth_bytes_per_s;
    const double dirtied = in.dirty.at((1.0 - throttle / 100.0) * t);
    p.trace.push_back({to_send, t, dirtied, throttle});
    p.total_s += t;
    p.bytes += to_send;
    const double remaining = dirtied * in.page_bytes;
    // migration_trigger_throttle(): after each sync, dirtying more than the
    // trigger share of what the period sent counts; twice in a row throttles.
    if (in.auto_converge && fixed_throttle_pct < 0) {
      if (remaining > in.throttle_trigger_pct / 100.0 * to_send) {
        if (++high >= 2) {
          throttle = throttle == 0 ? in.throttle_initial_pct
                                   : std::min(in.throttle_max_pct, throttle + in.throttle_increment_pct);
          high = 0;
        }
      }
    }
    if (remaining <= threshold) {  // stop and copy
      p.converges = true;
      p.passes = pass + 1;
      p.downtime_ms = remaining / in.bandwidth_bytes_per_s * 1000.0 + in.device_state_ms;
      p.total_s += p.downtime_ms / 1000.0;
      p.bytes += remaining;
      p.final_throttle_pct = throttle;
      return p;
    }
    if (p.total_s > in.max_total_s) break;
    to_send = remaining;
  }
  p.passes = static_cast<int>(p.trace.size());
  p.final_throttle_pct = throttle;
  return p;
}

}  // namespace

Result<DirtyCurve> DirtyCurve::make(std::vector<Point> points, double ceiling_pages) {
  if (!finite_nonneg(ceiling_pages)) return make_error(Errc::kInvalidArgument, "dirty curve: bad ceiling");
  double prev_tau = 0, prev_pages = 0;
  for (const auto& pt : points) {
    if (!finite_nonneg(pt.tau_s) || !finite_nonneg(pt.pages) || pt.tau_s <= prev_tau || pt.pages < prev_pages) {
      return make_error(Errc::kInvalidArgument,
                        "dirty curve: points must have increasing tau and non-decreasing pages, >= 0");
    }
    prev_tau = pt.tau_s;
    prev_pages = pt.pages;
  }
  DirtyCurve c;
  c.pts_ = std::move(points);
  c.ceiling_ = ceiling_pages;
  return c;
}

DirtyCurve DirtyCurve::uniform_random(double rate, double ws) {
  DirtyCurve c;
  if (!(rate > 0 && ws > 0)) return c;
  // Up to five time constants (W/r), where D is within 1 % of W.
  const double span = 5.0 * ws / rate;
  for (int k = 1; k <= 64; ++k) {
    const double tau = span * k / 64.0;
    c.pts_.push_back({tau, ws * (1.0 - std::exp(-rate * tau / ws))});
  }
  c.ceiling_ = ws;
  return c;
}

DirtyCurve DirtyCurve::sequential(double rate, double ws) {
  DirtyCurve c;
  if (!(rate > 0 && ws > 0)) return c;
  c.pts_.push_back({ws / rate, ws});
  c.ceiling_ = ws;
  return c;
}

double DirtyCurve::at(double tau) const {
  if (pts_.empty() || !(tau > 0)) return 0;
  double v;
  if (tau <= pts_.front().tau_s) {
    v = pts_.front().pages * tau / pts_.front().tau_s;  // from the origin: D(0) = 0
  } else if (tau >= pts_.back().tau_s) {
    const Point& last = pts_.back();
    const Point prev = pts_.size() >= 2 ? pts_[pts_.size() - 2] : Point{0, 0};
    const double slope = (last.pages - prev.pages) / (last.tau_s - prev.tau_s);
    v = last.pages + slope * (tau - last.tau_s);
  } else {
    auto it = std::upper_bound(pts_.begin(), pts_.end(), tau, [](double t, const Point& p) { return t < p.tau_s; });
    const Point& b = *it;
    const Point& a = *(it - 1);
    v = a.pages + (b.pages - a.pages) * (tau - a.tau_s) / (b.tau_s - a.tau_s);
  }
  return std::min(v, ceiling_);
}

Result<Prediction> predict_precopy(const Inputs& in) {
  if (Status st = validate(in); !st) return st.error();
  Prediction p = run(in, -1);
  if (p.converges) return p;
  // What would make it converge: the least bandwidth (bisection up to 1 TB/s)
  // and the least throttle held from the start (bisection over 0..max).
  Inputs b = in;
  double lo = in.bandwidth_bytes_per_s, hi = 1e12;
  b.bandwidth_bytes_per_s = hi;
  if (run(b, -1).converges) {
    for (int i = 0; i < 60 && hi / lo > 1.001; ++i) {
      b.bandwidth_bytes_per_s = std::sqrt(lo * hi);
      (run(b, -1).converges ? hi : lo) = b.bandwidth_bytes_per_s;
    }
    p.need_bandwidth_bytes_per_s = hi;
  }
  if (run(in, in.throttle_max_pct).converges) {
    double tlo = 0, thi = in.throttle_max_pct;
    for (int i = 0; i < 30 && thi - tlo > 0.5; ++i) {
      const double mid = (tlo + thi) / 2;
      (run(in, mid).converges ? thi : tlo) = mid;
    }
    p.need_throttle_pct = std::ceil(thi);
  }
  return p;
}

Result<Prediction> predict_constant_rate(const Inputs& in, double dirty_bytes_per_s) {
  if (!finite_nonneg(dirty_bytes_per_s)) return make_error(Errc::kInvalidArgument, "predictor: bad dirty rate");
  Inputs lin = in;
  // A constant rate R is the curve D(tau) = (R / page) tau, without ceiling.
  auto curve = DirtyCurve::make({{1.0, dirty_bytes_per_s / in.page_bytes}}, 1e18);
  if (!curve) return curve.error();
  lin.dirty = *curve;
  lin.auto_converge = false;
  return predict_precopy(lin);
}

}  // namespace vmtide::predictor
