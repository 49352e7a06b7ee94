// SPDX-License-Identifier: Apache-2.0
// Balancer configuration: every threshold, limit and time of the strategies
// and the planner, with the documented defaults (docs/balancing.md says
// which come from Forsman et al., JSS 2015, and which are vmtide's own).
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "signals.h"
#include "vmtide/result.h"

namespace vmtide::strategy {

enum class StrategyKind { kPush, kPull, kAdaptive };

struct PlannerConfig {
  StrategyKind strategy = StrategyKind::kAdaptive;

  // Host load thresholds (fractions of capacity) with hysteresis. vmtide's
  // choice: the paper's exact thresholds are not public.
  model::Band band{.high_enter = 0.85, .high_exit = 0.75, .low_enter = 0.20, .low_exit = 0.30};
  // How long a host must stay hot (cold) before Push (Pull) acts on it, so a
  // spike shorter than this never moves a VM. vmtide's choice.
  std::chrono::nanoseconds hot_sustain = std::chrono::seconds{60};
  std::chrono::nanoseconds cold_sustain = std::chrono::seconds{120};

  // Adaptive: Pull below this mean cluster load, Push at or above it. The
  // paper found Pull faster at low-medium and Push at medium-high load; the
  // crossover value itself is vmtide's choice.
  double adaptive_crossover_frac = 0.50;

  // Candidate search. Push: each VM of a hot host against the
  // max_targets_per_vm least-loaded eligible hosts (scanning at most
  // max_target_scan). Pull: a cold host takes from the most loaded eligible
  // host that has a feasible VM, trying at most pull_max_sources hosts.
  std::size_t max_targets_per_vm = 8;
  std::size_t max_target_scan = 64;
  std::size_t pull_max_sources = 3;
  // Push relieves a hot host down to its relief level, a point in the hot
  // band: relief = high_exit + push_relief * (high_enter - high_exit), with
  // the exit in effect (planner.cc raises it at a high mean load). Push acts
  // on a hot host only while its load is above that level, and its
  // sufficiency term counts the moves still needed to reach it. 1 (the
  // default) stops as soon as the host is no longer above high_enter; 0
  // drains it to the exit, as vmtide did before. Once relieved, a host that
  // is still in the hot zone moves again only when it is back at high_enter
  // for hot_sustain. The host stays in the hot zone (no target) until it
  // falls to high_exit either way. vmtide's choice (docs/evaluation.md):
  // every move below high_enter buys headroom, not balance.
  double push_relief = 1.0;
  // Among Push candidates that relieve the host in as few moves, prefer the
  // one that leaves more headroom: each move the source would still need to
  // reach high_exit adds this many source_hold_downs to the candidate's
  // cost. 0 ignores headroom. vmtide's choice (docs/evaluation.md).
  double push_depth_weight = 0.1;
  // A Push/Pull move must raise the normalised entropy by more than this.
  double min_entropy_gain = 0.0;

  // Target constraints beyond "projected load < band.high_exit".
  double target_max_steal_frac = 0.05;
  double target_max_io_pressure_frac = 0.10;
  double target_mem_reserve_frac = 0.10;  // free memory left after the move, of the total

  // Per-VM cooldown after a move or a failed move: base * factor^(n-1) for
  // the n-th event in a streak, capped at max; the streak resets after a
  // quiet period of cooldown_reset. Maintenance evacuation ignores it.
  std::chrono::nanoseconds vm_cooldown_base = std::chrono::minutes{10};
  double vm_cooldown_factor = 2.0;
  std::chrono::nanoseconds vm_cooldown_max = std::chrono::hours{4};
  std::chrono::nanoseconds vm_cooldown_reset = std::chrono::hours{6};
  // A VM never returns to a host it left within this window (ping-pong).
  std::chrono::nanoseconds no_return_window = std::chrono::hours{1};
  // A host that gave or received a VM is neither source nor target for this
  // long, so its measured load can settle before it is judged again.
  std::chrono::nanoseconds host_hold_down = std::chrono::minutes{2};
  // A host that gave a VM may give another after this long (it still may
  // not receive before host_hold_down). Short, so a hotspot that needs two
  // moves gets its second soon, but long enough for the model's smoothed
  // load (tau 30 s, BuilderConfig) to show most of the first move.
  std::chrono::nanoseconds source_hold_down = std::chrono::seconds{60};

  // Concurrency: migrations in or out of one host, and in the whole cluster,
  // counting the ones in flight.
  int max_inflight_per_host = 1;
  int max_inflight_cluster = 8;

  // Exclusion tags: a VM with any of vm_exclude_tags never moves (not even
  // for maintenance); a host with any of host_exclude_tags never receives.
  std::vector<std::string> vm_exclude_tags{"vmtide.pinned"};
  std::vector<std::string> host_exclude_tags{"vmtide.no-receive"};

  // How many candidates each decision records for `vmtide explain`
  // (wire::kMaxCandidates is the hard cap).
  std::size_t max_candidates_recorded = 16;
};

// Rejects inconsistent values (e.g. high_exit >= high_enter, factor < 1).
[[nodiscard]] Status validate(const PlannerConfig& c);

[[nodiscard]] const char* strategy_name(StrategyKind k) noexcept;

}  // namespace vmtide::strategy
