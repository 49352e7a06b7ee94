// SPDX-License-Identifier: Apache-2.0
// The policies: vmtide's real planner (plan_round) and the baselines.
#include "policy.h"

#include <cmath>
#include <map>
#include <set>

#include "cost.h"

namespace vmtide::sim {

namespace {

// vmtide: one plan_round per decision round, history carried over.
class PlannerPolicy final : public Policy {
 public:
  PlannerPolicy(std::string name, strategy::PlannerConfig cfg, strategy::CostModel cost)
      : name_(std::move(name)), cfg_(std::move(cfg)), cost_(std::move(cost)) {}
  std::string_view name() const noexcept override { return name_; }
  Result<std::vector<Move>> decide(const model::ClusterModel& m, const strategy::RoundInputs& in) override {
    auto r = strategy::plan_round(m, cfg_, std::move(state_), in, cost_);
    if (!r) return std::move(r).error();
    state_ = std::move(r->state);
    std::vector<Move> out;
    for (const auto& mv : r->plan.moves) out.push_back(Move{mv.vm_id, mv.src, mv.dst});
    return out;
  }

 private:
  std::string name_;
  strategy::PlannerConfig cfg_;
  strategy::CostModel cost_;
  strategy::PlannerState state_;
};

// Hosts and VMs a baseline must leave alone this round: those in a running
// migration (one migration per host at a time, as both baselines' engines
// serialise them).
struct Busy {
  std::set<std::string, std::less<>> vms;
  std::set<std::string, std::less<>> hosts;
  explicit Busy(const strategy::RoundInputs& in) {
    for (const auto& f : in.in_flight) {
      vms.insert(f.vm_id);
      hosts.insert(f.src);
      hosts.insert(f.dst);
    }
  }
};

// oVirt-like "evenly distributed" policy: if the most loaded host is above
// `high`, move the biggest VM that fits (target stays at or below `high`)
// to the least loaded host; one VM per round cluster-wide. `low` is oVirt's
// power-saving threshold and only drives consolidation, not simulated here.
class ThresholdPolicy final : public Policy {
 public:
  explicit ThresholdPolicy(double high) : high_(high) {}
  std::string_view name() const noexcept override { return "threshold"; }
  Result<std::vector<Move>> decide(const model::ClusterModel& m, const strategy::RoundInputs& in) override {
    Busy busy(in);
    const model::HostState* src = nullptr;
    const model::HostState* dst = nullptr;
    for (const auto& h : m.hosts) {
      if (busy.hosts.count(h.name)) continue;
      if (src == nullptr || h.cpu_load_frac > src->cpu_load_frac) src = &h;
      if (dst == nullptr || h.cpu_load_frac < dst->cpu_load_frac) dst = &h;
    }
    if (src == nullptr || dst == nullptr || src == dst || src->cpu_load_frac <= high_) return std::vector<Move>{};
    const model::VmState* best = nullptr;
    for (const auto& v : m.vms) {
      if (v.host != src->name || busy.vms.count(v.id)) continue;
      if (dst->cpu_load_frac + v.demand_cores() / dst->cpus > high_) continue;
      if (best == nullptr || v.demand_cores() > best->demand_cores()) best = &v;
    }
    if (best == nullptr) return std::vector<Move>{};
    return std::vector<Move>{Move{best->id, src->name, dst->name}};
  }

 private:
  double high_;
};

// Watcher workload_stabilization-like: if the standard deviation of host
// loads exceeds the threshold, make the one move that reduces it most. For
// a VM the best target is the least loaded host (the variance change of
// moving x from s to t is 2x(x + L_t - L_s) on equal hosts), so one pass
// over the VMs finds the best move.
class StddevPolicy final : public Policy {
 public:
  explicit StddevPolicy(double threshold) : threshold_(threshold) {}
  std::string_view name() const noexcept override { return "stddev"; }
  Result<std::vector<Move>> decide(const model::ClusterModel& m, const strategy::RoundInputs& in) override {
    Busy busy(in);
    const double n = static_cast<double>(m.hosts.size());
    double sum = 0, sq = 0;
    const model::HostState* least = nullptr;
    for (const auto& h : m.hosts) {
      sum += h.cpu_load_frac;
      sq += h.cpu_load_frac * h.cpu_load_frac;
      if (!busy.hosts.count(h.name) && (least == nullptr || h.cpu_load_frac < least->cpu_load_frac)) least = &h;
    }
    const double sd = std::sqrt(std::max(0.0, sq / n - (sum / n) * (sum / n)));
    if (sd <= threshold_ || least == nullptr) return std::vector<Move>{};
    std::map<std::string, const model::HostState*, std::less<>> by_name;
    for (const auto& h : m.hosts) by_name.emplace(h.name, &h);
    const model::VmState* best = nullptr;
    const model::HostState* best_src = nullptr;
    double best_delta = 0;
    for (const auto& v : m.vms) {
      if (busy.vms.count(v.id) || busy.hosts.count(v.host) || v.host == least->name) continue;
      const model::HostState* s = by_name.at(v.host);
      const double xs = v.demand_cores() / s->cpus;
      const double xt = v.demand_cores() / least->cpus;
      const double ls = s->cpu_load_frac;
      const double lt = least->cpu_load_frac;
      const double delta = (ls - xs) * (ls - xs) + (lt + xt) * (lt + xt) - ls * ls - lt * lt;
      if (delta < best_delta) {
        best_delta = delta;
        best = &v;
        best_src = s;
      }
    }
    if (best == nullptr) return std::vector<Move>{};
    return std::vector<Move>{Move{best->id, best_src->name, least->name}};
  }

 private:
  double threshold_;
};

class NonePolicy final : public Policy {
 public:
  std::string_view name() const noexcept override { return "none"; }
  Result<std::vector<Move>> decide(const model::ClusterModel&, const strategy::RoundInputs&) override {
    return std::vector<Move>{};
  }
};

// "Adaptive without the cost model": every move costs the same, so the
// planner ranks candidates by entropy gain alone.
strategy::CostModel const_cost() {
  return [](const model::VmState&, const model::HostState&, const model::HostState&) {
    strategy::MigrationCost c;
    c.total_s = 10.0;
    c.model = "const";
    return c;
  };
}

}  // namespace

const std::vector<std::string>& policy_names() {
  static const std::vector<std::string> names{"push",      "pull",   "adaptive", "adaptive-nocost",
                                              "threshold", "stddev", "none"};
  return names;
}

Result<std::unique_ptr<Policy>> make_policy(std::string_view name, const Scenario& s) {
  auto planner = [&](strategy::StrategyKind k, strategy::CostModel cost) -> std::unique_ptr<Policy> {
    strategy::PlannerConfig cfg = s.planner;
    cfg.strategy = k;
    return std::make_unique<PlannerPolicy>(std::string(name), std::move(cfg), std::move(cost));
  };
  using strategy::StrategyKind;
  if (name == "push") return planner(StrategyKind::kPush, strategy::make_precopy_cost_model());
  if (name == "pull") return planner(StrategyKind::kPull, strategy::make_precopy_cost_model());
  if (name == "adaptive") return planner(StrategyKind::kAdaptive, strategy::make_precopy_cost_model());
  if (name == "adaptive-nocost") return planner(StrategyKind::kAdaptive, const_cost());
  if (name == "threshold") return std::unique_ptr<Policy>(std::make_unique<ThresholdPolicy>(s.high_frac));
  if (name == "stddev") return std::unique_ptr<Policy>(std::make_unique<StddevPolicy>(s.stddev_threshold));
  if (name == "none") return std::unique_ptr<Policy>(std::make_unique<NonePolicy>());
  return make_error(Errc::kInvalidArgument,
                    "unknown policy '" + std::string(name) +
                        "' (known: push, pull, adaptive, adaptive-nocost, threshold, stddev, none)");
}

}  // namespace vmtide::sim
