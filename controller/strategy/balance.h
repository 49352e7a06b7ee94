// SPDX-License-Identifier: Apache-2.0
// The balance metric as the planner uses it: normalised entropy of host
// loads kept incrementally, so a candidate move's entropy gain costs O(1)
// instead of O(hosts) (a round over 10 000 hosts scores ~10^5 candidates);
// and the adaptive choice between Push and Pull.
#pragma once

#include <cstddef>
#include <vector>

#include "config.h"

namespace vmtide::strategy {

// E = -sum p ln p / ln N with p_h = L_h / S. Writing T = sum L ln L and
// S = sum L, -sum p ln p = ln S - T / S, so a move that changes two loads
// updates T and S in O(1). Agrees with normalized_entropy() (entropy.h) to
// rounding; the planner reports the latter for whole-plan values.
class EntropyTracker {
 public:
  // Loads of the hosts counted in the metric (finite, >= 0); clamps negatives.
  explicit EntropyTracker(const std::vector<double>& loads);

  [[nodiscard]] double value() const noexcept { return of(t_, s_); }
  // Entropy if load a became a_after and load b became b_after.
  [[nodiscard]] double after_move(double a, double a_after, double b, double b_after) const noexcept;
  void apply_move(double a, double a_after, double b, double b_after) noexcept;
  [[nodiscard]] std::size_t hosts() const noexcept { return n_; }

 private:
  [[nodiscard]] double of(double t, double s) const noexcept;
  std::size_t n_ = 0;
  double t_ = 0.0;
  double s_ = 0.0;
};

// Adaptive: Pull when the mean load of the cluster is below the crossover,
// Push otherwise (Forsman et al.: Pull rebalances faster at low-medium load,
// Push at medium-high). A fixed strategy is returned as is.
[[nodiscard]] StrategyKind choose_strategy(const PlannerConfig& cfg, double mean_load_frac) noexcept;

}  // namespace vmtide::strategy
