// SPDX-License-Identifier: Apache-2.0
// Balancing policies the simulator compares, behind one interface: vmtide's
// planner (Push, Pull, adaptive, adaptive with a constant cost) and the
// baselines operators run today (oVirt-like threshold, Watcher-like
// standard-deviation stabilisation, none).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cluster.h"
#include "planner.h"
#include "scenario.h"
#include "vmtide/result.h"

namespace vmtide::sim {

struct Move {
  std::string vm_id;
  std::string src;
  std::string dst;
};

class Policy {
 public:
  virtual ~Policy() = default;
  [[nodiscard]] virtual std::string_view name() const noexcept = 0;
  // One round: the cluster now, migrations still running and the outcomes
  // since the last round. Moves of a VM already migrating are ignored.
  [[nodiscard]] virtual Result<std::vector<Move>> decide(const model::ClusterModel& m,
                                                         const strategy::RoundInputs& in) = 0;
};

// "push", "pull", "adaptive", "adaptive-nocost", "threshold", "stddev", "none".
[[nodiscard]] const std::vector<std::string>& policy_names();
[[nodiscard]] Result<std::unique_ptr<Policy>> make_policy(std::string_view name, const Scenario& s);

}  // namespace vmtide::sim
