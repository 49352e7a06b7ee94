// SPDX-License-Identifier: Apache-2.0
// The constant-dirty-rate cost model (cost.h), the planner's default.
#include "cost.h"

#include "precopy.h"

#include <algorithm>
#include <cmath>

namespace vmtide::strategy {

CostModel make_const_dirty_cost_model(double fallback_bw_bytes_per_s, double converge_ratio) {
  return [fallback_bw_bytes_per_s, converge_ratio](const model::VmState& vm, const model::HostState& src,
                                                   const model::HostState& dst) {
    double bw = fallback_bw_bytes_per_s;
    if (src.link_bw_bytes_per_s > 0 && dst.link_bw_bytes_per_s > 0) {
      bw = std::min(src.link_bw_bytes_per_s, dst.link_bw_bytes_per_s);
    } else if (src.link_bw_bytes_per_s > 0 || dst.link_bw_bytes_per_s > 0) {
      bw = std::max(src.link_bw_bytes_per_s, dst.link_bw_bytes_per_s);
    }
    bw = std::max(bw, 1.0);
    const double mem = static_cast<double>(vm.rss_bytes > 0 ? vm.rss_bytes : vm.ram_bytes);
    const double ratio = vm.dirty_bytes_per_s / bw;
    MigrationCost c;
    c.model = "const-dirty";
    if (ratio >= converge_ratio) {
      // Each pass resends nearly as much as the last: QEMU would iterate
      // until its limit. Report one full pass as the (lower-bound) time.
      c.converges = false;
      c.total_s = mem / bw;
      c.bytes = static_cast<std::uint64_t>(mem);
      c.passes = 1;
      c.downtime_ms = 0;
      return c;
    }
    // Passes shrink by `ratio`; stop when the rest fits QEMU's default
    // 300 ms downtime at full bandwidth (DESIGN.md, "Pre-copy prediction").
    constexpr double kDowntimeS = 0.3;
    double remaining = mem;
    double sent = 0.0;
    std::uint64_t passes = 0;
    while (remaining > bw * kDowntimeS && passes < 64) {
      sent += remaining;
      remaining *= ratio;
      ++passes;
    }
    c.converges = true;
    c.passes = passes + 1;  // the stop-and-copy pass
    c.bytes = static_cast<std::uint64_t>(sent + remaining);
    c.downtime_ms = remaining / bw * 1000.0;
    c.total_s = (sent + remaining) / bw;
    return c;
  };
}

void scale_dirtying(model::VmState& vm, double factor) {
  if (factor == 1 || !(factor > 0)) return;
  // Bytes dirtied within tau scale with the rate, up to the guest's RAM.
  const double cap = vm.ram_bytes > 0 ? static_cast<double>(vm.ram_bytes) : 1.8e19;
  for (auto& p : vm.dirty_curve) {
    p.bytes = static_cast<std::uint64_t>(std::min(cap, static_cast<double>(p.bytes) * factor));
  }
  vm.dirty_bytes_per_s *= factor;
}

namespace {

// The VM's measured curve as the predictor's points: seconds, pages.
std::vector<predictor::DirtyCurve::Point> curve_points(const model::VmState& vm, double page_bytes) {
  std::vector<predictor::DirtyCurve::Point> pts;
  for (const model::DirtyPoint& d : vm.dirty_curve) {
    pts.push_back({static_cast<double>(d.tau.count()) / 1e9, static_cast<double>(d.bytes) / page_bytes});
  }
  return pts;
}

}  // namespace

predictor::DirtyCurve dirty_curve_pages(const model::VmState& vm, double page_bytes) {
  std::vector<predictor::DirtyCurve::Point> pts = curve_points(vm, page_bytes);
  const double ceiling = vm.ram_bytes > 0 ? static_cast<double>(vm.ram_bytes) / page_bytes : 1e18;
  auto curve = predictor::DirtyCurve::make(std::move(pts), ceiling);
  return curve ? std::move(*curve) : predictor::DirtyCurve::none();
}

predictor::Inputs precopy_inputs(const model::VmState& vm, double bw, const PrecopyCostParams& p) {
  const double ram = static_cast<double>(vm.ram_bytes > 0 ? vm.ram_bytes : vm.rss_bytes);
  const double touched = vm.rss_bytes > 0 ? std::min(static_cast<double>(vm.rss_bytes), ram) : ram;
  const double page = p.page_bytes > 0 ? p.page_bytes : 4096;
  predictor::Inputs in;
  in.ram_bytes = ram;
  in.nonzero_bytes = touched;
  in.page_bytes = page;
  in.bandwidth_bytes_per_s = bw;
  in.downtime_limit_ms = p.downtime_limit_ms;
  in.auto_converge = p.auto_converge;
  // How much of its vCPUs the guest wants (run + steal): what a throttle
  // can take from it before it slows (precopy.h, vcpu_busy_frac).
  if (vm.vcpus > 0 && vm.demand_cores() > 0) {
    in.vcpu_busy_frac = std::clamp(vm.demand_cores() / vm.vcpus, 0.01, 1.0);
  }
  const double ceiling = std::max(touched / page, 1.0);
  std::vector<predictor::DirtyCurve::Point> pts = curve_points(vm, page);
  if (pts.empty() && vm.dirty_bytes_per_s > 0) pts.push_back({1.0, vm.dirty_bytes_per_s / page});
  if (!pts.empty()) {
    auto curve = predictor::DirtyCurve::make(std::move(pts), ceiling);
    // A curve the predictor rejects (e.g. decreasing points from two
    // windows) falls back to the mean rate, which is always valid.
    if (!curve && vm.dirty_bytes_per_s > 0) {
      curve = predictor::DirtyCurve::make({{1.0, vm.dirty_bytes_per_s / page}}, ceiling);
    }
    if (curve) in.dirty = std::move(*curve);
  }
  return in;
}

CostModel make_precopy_cost_model(const PrecopyCostParams& p, const predictor::CalibrationTable* calibration) {
  return [p, calibration](const model::VmState& vm, const model::HostState& src, const model::HostState& dst) {
    double bw = p.fallback_bw_bytes_per_s;
    if (src.link_bw_bytes_per_s > 0 && dst.link_bw_bytes_per_s > 0) {
      bw = std::min(src.link_bw_bytes_per_s, dst.link_bw_bytes_per_s);
    } else if (src.link_bw_bytes_per_s > 0 || dst.link_bw_bytes_per_s > 0) {
      bw = std::max(src.link_bw_bytes_per_s, dst.link_bw_bytes_per_s);
    }
    // QEMU's final stop-and-copy ignores max-bandwidth: it runs at the link.
    const double link = std::max(bw, 1.0);
    if (p.max_bw_bytes_per_s > 0) bw = std::min(bw, p.max_bw_bytes_per_s);
    bw = std::max(bw, 1.0);

    predictor::Inputs in = precopy_inputs(vm, bw, p);
    in.link_bytes_per_s = link;
    MigrationCost c;
    c.model = "precopy";
    c.assumed_bw_bytes_per_s = in.bandwidth_bytes_per_s;
    c.assumed_stop_bytes_per_s = in.link_bytes_per_s;
    if (calibration != nullptr) {
      const predictor::LinkCalibration cal = calibration->get(src.name, dst.name);
      if (cal.migrations > 0) {
        in = predictor::apply(std::move(in), cal);
        c.model = "precopy+calibrated";
      }
    }
    auto pr = predictor::predict_precopy(in);
    if (!pr) {
      // Inputs out of the predictor's domain (e.g. zero RAM): a move we
      // cannot cost is never planned.
      c.converges = false;
      return c;
    }
    c.converges = pr->converges;
    c.total_s = pr->total_s;
    c.downtime_ms = pr->downtime_ms;
    c.bytes = static_cast<std::uint64_t>(pr->bytes);
    c.passes = static_cast<std::uint64_t>(pr->passes);
    c.need_bw_bytes_per_s = pr->need_bandwidth_bytes_per_s;
    c.need_throttle_pct = pr->need_throttle_pct;
    return c;
  };
}

}  // namespace vmtide::strategy
