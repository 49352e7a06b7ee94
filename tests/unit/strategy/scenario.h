// SPDX-License-Identifier: Apache-2.0
// Builders and a tiny simulator for the planner's scenario tests: hosts and
// VMs with loads derived from their VMs, migrations applied between rounds.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "cluster.h"
#include "config.h"
#include "cost.h"
#include "planner.h"

namespace vmtide::strategy::testing {

inline constexpr std::uint64_t kGiB = 1024ull * 1024 * 1024;

inline model::HostState host(std::string name, double load_frac, std::uint32_t cpus = 16) {
  model::HostState h;
  h.name = std::move(name);
  h.cpus = cpus;
  h.cpu_load_frac = load_frac;
  h.mem_total_bytes = 128 * kGiB;
  h.mem_free_bytes = 96 * kGiB;
  h.link_bw_bytes_per_s = 1.25e9;
  return h;
}

inline model::VmState vm(std::string id, std::string on, double demand_cores, std::uint64_t ram_bytes = 4 * kGiB) {
  model::VmState v;
  v.name = id;
  v.id = std::move(id);
  v.host = std::move(on);
  v.vcpus = 4;
  v.cpu_used_cores = demand_cores;
  v.ram_bytes = ram_bytes;
  return v;
}

inline model::TimeNs at_s(double s) { return model::TimeNs{static_cast<std::int64_t>(s * 1e9)}; }

// Sustain 0: a hot/cold host acts in the round it is first seen, so a
// one-round scenario can test candidate choice in isolation.
inline PlannerConfig instant_config() {
  PlannerConfig c;
  c.hot_sustain = std::chrono::seconds{0};
  c.cold_sustain = std::chrono::seconds{0};
  return c;
}

// A cost model from a table (VM id -> seconds); unknown VMs cost 10 s.
inline CostModel table_cost(std::map<std::string, double> seconds) {
  return [t = std::move(seconds)](const model::VmState& v, const model::HostState&, const model::HostState&) {
    MigrationCost c;
    auto it = t.find(v.id);
    c.total_s = it == t.end() ? 10.0 : it->second;
    c.model = "table";
    return c;
  };
}

// A cluster whose host loads are background + the demand of their VMs, so
// moves change loads the way they would on real hosts.
struct Sim {
  model::ClusterModel model;
  std::map<std::string, double> background_frac;  // per host
  PlannerState state;

  void recompute_loads() {
    for (auto& h : model.hosts) {
      double l = background_frac[h.name];
      for (const auto& v : model.vms) {
        if (v.host == h.name) l += v.demand_cores() / h.cpus;
      }
      h.cpu_load_frac = l;
    }
  }
  // Moves complete instantly: apply them and report success next round.
  void apply(const Plan& p, RoundInputs& next) {
    for (const auto& mv : p.moves) {
      for (auto& v : model.vms) {
        if (v.id == mv.vm_id) v.host = mv.dst;
      }
      next.outcomes.push_back(MoveOutcome{mv.vm_id, mv.src, mv.dst, true, model.now});
    }
    recompute_loads();
  }
};

}  // namespace vmtide::strategy::testing
