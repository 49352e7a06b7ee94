// SPDX-License-Identifier: Apache-2.0
// Checks of the balancer configuration (config.h).
#include "config.h"

#include <cmath>
#include <string>

namespace vmtide::strategy {

const char* strategy_name(StrategyKind k) noexcept {
  switch (k) {
    case StrategyKind::kPush:
      return "push";
    case StrategyKind::kPull:
      return "pull";
    case StrategyKind::kAdaptive:
      return "adaptive";
  }
  return "unknown";
}

Status validate(const PlannerConfig& c) {
  const auto& b = c.band;
  auto bad = [](const std::string& what) { return make_error(Errc::kInvalidArgument, "planner config: " + what); };
  if (!(b.low_enter >= 0.0 && b.low_enter < b.low_exit && b.low_exit <= b.high_exit && b.high_exit < b.high_enter)) {
    return bad("thresholds must satisfy 0 <= low_enter < low_exit <= high_exit < high_enter");
  }
  if (!std::isfinite(c.adaptive_crossover_frac) || c.adaptive_crossover_frac < 0.0) return bad("adaptive crossover");
  if (c.max_targets_per_vm == 0 || c.max_target_scan < c.max_targets_per_vm) {
    return bad("need 0 < max_targets_per_vm <= max_target_scan");
  }
  if (c.pull_max_sources == 0) return bad("pull_max_sources must be > 0");
  if (!(c.push_relief >= 0.0 && c.push_relief <= 1.0)) return bad("push_relief must be in [0, 1]");
  if (!(c.push_depth_weight >= 0.0) || !std::isfinite(c.push_depth_weight)) return bad("push_depth_weight must be >= 0");
  if (!std::isfinite(c.min_entropy_gain)) return bad("min_entropy_gain");
  if (!(c.vm_cooldown_factor >= 1.0) || !std::isfinite(c.vm_cooldown_factor)) return bad("vm_cooldown_factor < 1");
  if (c.vm_cooldown_base.count() < 0 || c.vm_cooldown_max < c.vm_cooldown_base) {
    return bad("need 0 <= vm_cooldown_base <= vm_cooldown_max");
  }
  if (c.hot_sustain.count() < 0 || c.cold_sustain.count() < 0 || c.host_hold_down.count() < 0 || c.source_hold_down.count() < 0 ||
      c.no_return_window.count() < 0 || c.vm_cooldown_reset.count() < 0) {
    return bad("durations must be >= 0");
  }
  if (c.max_inflight_per_host < 1 || c.max_inflight_cluster < 1) return bad("concurrency limits must be >= 1");
  if (!(c.target_mem_reserve_frac >= 0.0 && c.target_mem_reserve_frac < 1.0)) return bad("target_mem_reserve_frac");
  return {};
}

}  // namespace vmtide::strategy
