// SPDX-License-Identifier: Apache-2.0
// Online calibration per host pair (calibration.h).
#include "calibration.h"

#include <algorithm>
#include <cmath>

namespace vmtide::predictor {
namespace {

bool positive(double v) { return std::isfinite(v) && v > 0; }

double blend(double prior, double seen, double alpha, bool first) {
  return first ? seen : prior + alpha * (seen - prior);
}

}  // namespace

LinkCalibration calibrate(const LinkCalibration& prior, const MigrationFigures& f, double alpha,
                          double default_device_state_ms) {
  if (!f.succeeded || !positive(f.assumed_bw_bytes_per_s) || !positive(f.total_ms) || !positive(f.bytes)) {
    return prior;
  }
  alpha = std::clamp(alpha, 0.0, 1.0);
  LinkCalibration c = prior;
  const bool first = prior.migrations == 0;
  // While iterating, QEMU sent everything but the stop-and-copy's bytes in
  // the time between setup and the stop.
  const double iter_bytes = f.bytes - std::max(0.0, f.downtime_bytes);
  const double iter_s = (f.total_ms - f.setup_ms - f.downtime_ms) / 1000.0;
  if (positive(iter_bytes) && iter_s > 0.2) {
    const double achieved = iter_bytes / iter_s;
    // Bounded: one odd run must not teach the pair a tenth of its link.
    const double factor = std::clamp(achieved / f.assumed_bw_bytes_per_s, 0.2, 2.0);
    c.bw_factor = blend(prior.bw_factor, factor, alpha, first);
  }
  if (positive(f.downtime_bytes) && positive(f.downtime_ms)) {
    const double copy_ms = f.downtime_ms - default_device_state_ms;
    // Under a millisecond the split between the copy and the device state
    // is noise: keep what was known.
    if (copy_ms >= 1.0) {
      const double seen = f.downtime_bytes / (copy_ms / 1000.0);
      const double from = positive(prior.stop_bytes_per_s)       ? prior.stop_bytes_per_s
                          : positive(f.assumed_stop_bytes_per_s) ? f.assumed_stop_bytes_per_s
                                                                 : seen;
      const double step = std::clamp(seen / from, 0.25, 4.0);
      c.stop_bytes_per_s = from * std::pow(step, alpha);
    }
  }
  ++c.migrations;
  return c;
}

Inputs apply(Inputs in, const LinkCalibration& c) {
  if (c.migrations == 0) return in;
  if (positive(c.bw_factor)) in.bandwidth_bytes_per_s *= c.bw_factor;
  if (positive(c.stop_bytes_per_s)) in.link_bytes_per_s = c.stop_bytes_per_s;
  return in;
}

void CalibrationTable::record(const std::string& src, const std::string& dst, const MigrationFigures& f, double alpha) {
  auto& c = pairs_[{src, dst}];
  c = calibrate(c, f, alpha);
}

LinkCalibration CalibrationTable::get(const std::string& src, const std::string& dst) const {
  auto it = pairs_.find({src, dst});
  return it == pairs_.end() ? LinkCalibration{} : it->second;
}

void VmDirtyCalibration::record(const std::string& vm, double measured, double modelled, double now_s) {
  if (!(measured > 0) || !(modelled > 0) || !std::isfinite(measured) || !std::isfinite(modelled)) return;
  vms_[vm] = Evidence{std::clamp(measured / modelled, 0.25, 4.0), now_s};
}

double expected_sync_dirty_pages_per_s(const DirtyCurve& curve, double syncs, double dt_s) {
  if (!(syncs > 0) || !(dt_s > 0)) return 0;
  return syncs * curve.at(dt_s / syncs) / dt_s;
}

void MigrationDirtyRate::observe(double now_s, std::uint64_t syncs, double pages_per_s, const DirtyCurve& telemetry) {
  if (!is_new(syncs, pages_per_s) || !(now_s > start_s_)) return;
  measured_ = pages_per_s;
  expected_ = expected_sync_dirty_pages_per_s(telemetry, static_cast<double>(syncs - start_syncs_), now_s - start_s_);
  last_ = pages_per_s;
  start_s_ = now_s;
  start_syncs_ = syncs;
}

double VmDirtyCalibration::factor(const std::string& vm, double now_s) const {
  auto it = vms_.find(vm);
  if (it == vms_.end()) return 1;
  const double age = std::max(0.0, now_s - it->second.at_s);
  const double weight = half_life_s_ > 0 ? std::exp2(-age / half_life_s_) : 0;
  // Geometric fading: a factor of 4 and one of 1/4 fade alike.
  return std::exp(std::log(it->second.ratio) * weight);
}

void VmDirtyCalibration::prune(double now_s) {
  std::erase_if(vms_, [&](const auto& kv) {
    return std::abs(std::log(factor(kv.first, now_s))) < 0.01 * std::abs(std::log(kv.second.ratio)) ||
           kv.second.ratio == 1;
  });
}

}  // namespace vmtide::predictor
