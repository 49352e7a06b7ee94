// SPDX-License-Identifier: Apache-2.0
// The planner: one decision round as a pure function. (cluster model, config,
// history, in-flight migrations and their outcomes, cost model) -> (plan, new
// history). It runs maintenance evacuation, then Push / Pull / adaptive, and
// enforces every safety rule (hysteresis, sustain, cooldown with back-off,
// no-return window, hold-down, concurrency limits, stale hosts, one VM per
// host per round, affinity, anti-affinity, exclusion tags). No clocks: `now`
// is ClusterModel::now. Deterministic: same inputs, identical plan.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cluster.h"
#include "config.h"
#include "cost.h"
#include "signals.h"

namespace vmtide::strategy {

using model::TimeNs;

// ---- history: what the planner remembers between rounds -----------------

struct VmHistory {
  int streak = 0;            // moves + failures since the last quiet period
  TimeNs last_event{0};      // last planned move or reported outcome
  TimeNs cooldown_until{0};  // not moved by Push/Pull before this
  // Hosts the VM left, with when (the no-return window), oldest first.
  std::vector<std::pair<std::string, TimeNs>> left;
  bool operator==(const VmHistory&) const = default;
};

struct HostHistory {
  model::Zone zone = model::Zone::kNormal;  // hysteresis state
  model::Sustained hot;                     // zone == kHot since
  model::Sustained cold;                    // zone == kCold since
  TimeNs hold_until{0};                     // hold-down after giving/receiving: no target before
  TimeNs give_hold_until{0};                // no source before (source_hold_down after giving)
  // Push brought it to its relief level during this hot spell: it overloads
  // anew only at high_enter (with a fresh hot_sustain), not above the level.
  bool relieved = false;
  bool operator==(const HostHistory&) const = default;
};

// Keyed by VM id / host name; std::map so any dump is in a stable order.
// Entries that no longer matter are pruned each round, so it stays small.
struct PlannerState {
  std::map<std::string, VmHistory, std::less<>> vms;
  std::map<std::string, HostHistory, std::less<>> hosts;
  bool operator==(const PlannerState&) const = default;
};

// ---- inputs besides the model --------------------------------------------

// A migration started earlier and not finished: counts against the
// concurrency limits, reserves CPU and memory on its target, and its VM is
// not a candidate. The daemon rebuilds this list from libvirt after a crash.
struct InFlight {
  std::string vm_id;
  std::string src;
  std::string dst;
};

// A migration's outcome since the last round. A failure extends the VM's
// back-off; a success restarts its cooldown and the hosts' hold-down from
// the completion time (`at`), since the move itself may take minutes.
struct MoveOutcome {
  std::string vm_id;
  std::string src;
  std::string dst;
  bool succeeded = false;
  TimeNs at{0};
};

struct RoundInputs {
  std::vector<InFlight> in_flight;
  std::vector<MoveOutcome> outcomes;
};

// ---- output ---------------------------------------------------------------

// One candidate (vm -> dst) that was considered; wire::Candidate.
struct CandidateNote {
  std::string vm_id;
  std::string dst;     // empty when the VM itself was excluded (pinned, cooldown...)
  double score = 0.0;  // gain / cost_s; 0 when not computed
  double gain = 0.0;   // entropy after - before
  double cost_s = 0.0;
  std::optional<std::string> rejected;  // why not chosen; nullopt for the chosen one
  bool operator==(const CandidateNote&) const = default;
};

// "push", "pull" or "maintenance" for a move or a skip.
enum class Trigger { kPush, kPull, kMaintenance };
[[nodiscard]] const char* trigger_name(Trigger t) noexcept;

struct PlannedMove {
  Trigger trigger = Trigger::kPush;
  std::string vm_id;
  std::string vm_name;
  std::string src;
  std::string dst;
  std::string reason;  // one sentence for `vmtide explain`
  double score = 0.0;
  double gain = 0.0;
  MigrationCost cost;
  double entropy_before = 0.0;            // cluster entropy before / after this move
  double entropy_after = 0.0;             // (cumulative within the round)
  std::vector<CandidateNote> candidates;  // best first, the chosen one included
  bool operator==(const PlannedMove&) const = default;
};

// A host that wanted to act (hot, cold, in maintenance) or was excluded
// (stale), and why nothing happened this round.
struct Skipped {
  Trigger trigger = Trigger::kPush;
  std::string host;
  std::string reason;
  std::vector<CandidateNote> candidates;  // may be empty
  bool operator==(const Skipped&) const = default;
};

// A host that cannot receive a VM this round, and why ("why not host X?").
struct HostNote {
  std::string host;
  std::string reason;
  bool operator==(const HostNote&) const = default;
};

struct Plan {
  TimeNs now{0};
  StrategyKind strategy = StrategyKind::kAdaptive;  // push or pull: what ran this round
  std::string strategy_reason;                      // e.g. adaptive's choice and why
  double mean_load_frac = 0.0;                      // over hosts that are neither stale nor in maintenance
  double entropy_before = 0.0;                      // over hosts that are not stale
  double entropy_after = 0.0;                       // with every planned move applied
  std::vector<PlannedMove> moves;                   // in planning order
  std::vector<Skipped> skipped;
  std::vector<HostNote> excluded_targets;  // in host-name order
  bool operator==(const Plan&) const = default;
};

struct RoundResult {
  Plan plan;
  PlannerState state;  // history to pass into the next round
};

// One decision round. The returned state assumes every planned move is
// carried out (cooldown and hold-down start now); report what really
// happened through RoundInputs::outcomes next round. Errors: an invalid
// model or config (kInvalidArgument), nothing is planned then.
[[nodiscard]] Result<RoundResult> plan_round(const model::ClusterModel& model, const PlannerConfig& cfg,
                                             PlannerState state, const RoundInputs& inputs, const CostModel& cost);

// The back-off after the n-th (n >= 1) event of a streak:
// min(base * factor^(n-1), max).
[[nodiscard]] std::chrono::nanoseconds cooldown_for(const PlannerConfig& cfg, int streak) noexcept;

}  // namespace vmtide::strategy
