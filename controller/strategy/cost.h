// SPDX-License-Identifier: Apache-2.0
// The seam between the planner and the migration-cost predictor: what a
// candidate move is predicted to cost, and a deterministic default model
// (constant dirty rate) used by tests and until the predictor is wired in.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "cluster.h"

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

}  // namespace vmtide::strategy
