// SPDX-License-Identifier: Apache-2.0
// Incremental normalised entropy and the adaptive strategy choice (balance.h).
#include "balance.h"

#include <algorithm>
#include <cmath>

namespace vmtide::strategy {
namespace {

double xlogx(double x) noexcept { return x > 0.0 ? x * std::log(x) : 0.0; }

}  // namespace

EntropyTracker::EntropyTracker(const std::vector<double>& loads) : n_(loads.size()) {
  for (double l : loads) {
    const double x = std::max(0.0, l);
    t_ += xlogx(x);
    s_ += x;
  }
}

double EntropyTracker::of(double t, double s) const noexcept {
  // Same conventions as normalized_entropy(): one host or no load is balanced.
  if (n_ <= 1 || s <= 0.0) return 1.0;
  const double e = (std::log(s) - t / s) / std::log(static_cast<double>(n_));
  return std::clamp(e, 0.0, 1.0);
}

double EntropyTracker::after_move(double a, double a_after, double b, double b_after) const noexcept {
  a_after = std::max(0.0, a_after);
  b_after = std::max(0.0, b_after);
  const double t = t_ - xlogx(a) - xlogx(b) + xlogx(a_after) + xlogx(b_after);
  const double s = s_ - a - b + a_after + b_after;
  return of(t, s);
}

void EntropyTracker::apply_move(double a, double a_after, double b, double b_after) noexcept {
  a_after = std::max(0.0, a_after);
  b_after = std::max(0.0, b_after);
  t_ += -xlogx(a) - xlogx(b) + xlogx(a_after) + xlogx(b_after);
  s_ += -a - b + a_after + b_after;
}

StrategyKind choose_strategy(const PlannerConfig& cfg, double mean_load_frac) noexcept {
  if (cfg.strategy != StrategyKind::kAdaptive) return cfg.strategy;
  return mean_load_frac < cfg.adaptive_crossover_frac ? StrategyKind::kPull : StrategyKind::kPush;
}

}  // namespace vmtide::strategy
