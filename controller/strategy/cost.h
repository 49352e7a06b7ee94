// SPDX-License-Identifier: Apache-2.0
// The seam between the planner and the migration-cost predictor: what a
// candidate move is predicted to cost, and a deterministic default model
// (constant dirty rate) used by tests and until the predictor is wired in.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "cluster.h"
#include "calibration.h"
#include "precopy.h"

namespace vmtide::strategy {

// A prediction of one pre-copy live migration (fields map onto
// wire::Prediction; see decision.h).
struct MigrationCost {
  double total_s = 0.0;  // predicted duration; the "cost" of the score
  double downtime_ms = 0.0;
  std::uint64_t bytes = 0;
  std::uint64_t passes = 0;
  bool converges = true;  // a move that is predicted not to converge is never planned
  std::string model;      // which model produced it, e.g. "const-dirty" or "precopy"
  // For a move that does not converge: what would make it (precopy model).
  std::optional<double> need_bw_bytes_per_s;
  std::optional<double> need_throttle_pct;
  // The nominal link rates the prediction started from (before any
  // calibration): what a finished migration's figures are compared with.
  double assumed_bw_bytes_per_s = 0;
  double assumed_stop_bytes_per_s = 0;
  bool operator==(const MigrationCost&) const = default;
};

// Must be pure and deterministic (same arguments, same answer): the planner
// calls it for each candidate that passes the cheap constraints.
using CostModel =
    std::function<MigrationCost(const model::VmState& vm, const model::HostState& src, const model::HostState& dst)>;

// Textbook baseline: bandwidth B = min of the two hosts' link_bw (or
// fallback_bw when unknown), memory M = rss (or RAM if rss is unknown), dirty
// rate D. Pre-copy with constant D sends M (D/B)^i in pass i, a geometric
// series, so total = M / (B - D); it converges only when D < B *
// converge_ratio (below that the passes shrink fast enough to reach the
// downtime limit in a handful of passes).
[[nodiscard]] CostModel make_const_dirty_cost_model(double fallback_bw_bytes_per_s = 1.25e9,
                                                    double converge_ratio = 0.8);

// Parameters of the pre-copy predictor as the controller runs it.
struct PrecopyCostParams {
  double fallback_bw_bytes_per_s = 1.25e9;  // link speed when no agent reports one (10 GbE)
  double max_bw_bytes_per_s = 0;            // the migration's max-bandwidth cap; 0 = none
  double downtime_limit_ms = 300;           // QEMU's default downtime-limit
  bool auto_converge = false;
  double page_bytes = 4096;
};

// The DESIGN.md predictor (controller/predictor/precopy.h) as the planner's
// cost: QEMU's pre-copy loop over the VM's measured dirty curve D(tau) (or,
// with only a rate known, a constant-rate curve), pass 0 sending the
// touched RAM (rss), bandwidth = the slower host's link, capped by
// max_bw. model = "precopy".
// With `calibration`, each prediction for a (source, destination) pair
// starts from what that pair's finished migrations taught (the achieved
// bandwidth and stop-and-copy rate, controller/predictor/calibration.h);
// the table is read at each call, so it may be updated between rounds.
[[nodiscard]] CostModel make_precopy_cost_model(const PrecopyCostParams& p = {},
                                                const predictor::CalibrationTable* calibration = nullptr);

// `vm`'s dirtying scaled by `factor` (predictor::VmDirtyCalibration): its
// curve's bytes, up to its RAM, and its rate.
void scale_dirtying(model::VmState& vm, double factor);

// The telemetry's curve of `vm` in pages (empty when it has none).
[[nodiscard]] predictor::DirtyCurve dirty_curve_pages(const model::VmState& vm, double page_bytes);

// The predictor's inputs for `vm` over a link of `bw_bytes_per_s`: pass 0
// sends the touched RAM (rss), the curve is the measured D(tau) in pages
// (or the mean rate when only that is known). Shared by the cost model and
// `vmtide predict --vm`, so both predict the same thing.
[[nodiscard]] predictor::Inputs precopy_inputs(const model::VmState& vm, double bw_bytes_per_s,
                                               const PrecopyCostParams& p);

}  // namespace vmtide::strategy
