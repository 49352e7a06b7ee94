// SPDX-License-Identifier: Apache-2.0
// The discrete-event simulator: hosts and VMs on a simulated clock, demand
// traces from a seeded RNG, a Policy called every round, migrations that
// take the pre-copy predictor's time, cost CPU on both ends while they run
// and move the VM's load when they complete. Pure: no clocks, no I/O.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "cluster.h"
#include "policy.h"
#include "scenario.h"
#include "vmtide/result.h"

namespace vmtide::sim {

struct Sample {
  double t_s = 0.0;
  double entropy = 0.0;
  double max_load = 0.0;
  double stddev = 0.0;
  bool operator==(const Sample&) const = default;
};

// One migration, as it happened.
struct MoveRecord {
  double start_s = 0.0;
  double end_s = 0.0;
  std::string vm_id;
  std::string src;
  std::string dst;
  bool ok = true;
  bool operator==(const MoveRecord&) const = default;
};

struct Metrics {
  std::string policy;
  double time_to_balance_s = -1;  // from the load step; -1 = never
  bool balanced_at_end = false;
  int migrations = 0;  // started
  int failed = 0;      // did not converge
  int rejected = 0;    // policy asked to move a VM already moving
  double gib_migrated = 0.0;
  double migration_s = 0.0;  // summed durations
  int ping_pong = 0;
  double steal_core_s = 0.0;  // demand above the host's capacity, integrated
  double final_entropy = 0.0;
  std::vector<Sample> series;         // every tick
  std::vector<MoveRecord> moves;      // in completion order
  std::vector<double> loads_at_step;  // per host, at the first tick at or after the load step
  std::vector<double> loads_end;      // per host, at the last tick
  bool operator==(const Metrics&) const = default;
};

// Called after every completed (or failed) migration with the VMs of each
// host (indices into the scenario's VMs) and each VM's host index; tests use
// it to check conservation.
using CompletionHook =
    std::function<void(const std::vector<std::vector<int>>& host_vms, const std::vector<int>& vm_host)>;

[[nodiscard]] Result<Metrics> run(const Scenario& s, Policy& policy, const CompletionHook& hook = {});

}  // namespace vmtide::sim
