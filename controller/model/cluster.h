// SPDX-License-Identifier: Apache-2.0
// The cluster model the balancer decides on: plain value types (hosts, VMs,
// the time of the snapshot) that the daemon fills from samples and the
// simulator builds by hand. No I/O, no clocks: `now` is part of the value.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "vmtide/result.h"

namespace vmtide::model {

// A point in time: nanoseconds since an epoch the caller picks (the daemon
// uses CLOCK_MONOTONIC, the simulator its own clock). Only differences matter.
using TimeNs = std::chrono::nanoseconds;

// One point of a VM's dirty curve D(tau): distinct bytes written within tau
// after a reset (DESIGN.md, "Memory dirty rate per VM").
struct DirtyPoint {
  std::chrono::nanoseconds tau{0};
  std::uint64_t bytes = 0;
  bool operator==(const DirtyPoint&) const = default;
};

struct HostState {
  std::string name;
  std::uint32_t cpus = 0;  // capacity in cores; loads below are fractions of it
  // Smoothed CPU *demand* as a fraction of capacity: (host busy time + the
  // run-queue wait (steal) of its VMs' vCPUs) / (cpus * interval). Steal is
  // included so a saturated host whose VMs wait reads above 1.0 instead of
  // flat-lining at 1.0; the same quantity is what a VM's demand_cores()
  // adds or removes, so projections are consistent.
  double cpu_load_frac = 0.0;
  std::uint64_t mem_total_bytes = 0;
  std::uint64_t mem_free_bytes = 0;  // MemAvailable
  // Pressure indicators, each a smoothed fraction of wall time in [0, 1]:
  // steal_frac = summed vCPU run-queue wait of the host's VMs / (cpus *
  // interval); io_pressure_frac = PSI io "some" share. A host under either
  // is not a migration target even when its CPU load looks fine.
  double steal_frac = 0.0;
  double io_pressure_frac = 0.0;
  double link_bw_bytes_per_s = 0.0;  // migration link bandwidth; 0 = unknown
  bool stale = false;                // data too old or lossy: never a source or target
  bool maintenance = false;          // operator asked to evacuate it
  std::vector<std::string> tags;     // e.g. "vmtide.no-receive" (PlannerConfig)
  bool operator==(const HostState&) const = default;
};

struct VmState {
  std::string id;  // libvirt UUID (wire VmSample::id)
  std::string name;
  std::string host;  // HostState::name it runs on now
  std::uint32_t vcpus = 0;
  // CPU in cores (1.0 = one core fully busy), smoothed: time the VM's
  // threads ran, and time its vCPUs waited runnable (steal). Demand = used +
  // steal: what the VM would use on a host with room, hence what a move
  // takes off the source and adds to the target.
  double cpu_used_cores = 0.0;
  double steal_cores = 0.0;
  std::uint64_t ram_bytes = 0;                    // configured guest RAM: what the target must back
  std::uint64_t rss_bytes = 0;                    // touched RAM: what a first pre-copy pass sends (0 = unknown)
  double dirty_bytes_per_s = 0.0;                 // summary of the dirty curve at a migration pass's scale
  std::vector<DirtyPoint> dirty_curve;            // full D(tau) for the predictor; may be empty
  std::vector<std::string> tags;                  // e.g. "vmtide.pinned" (PlannerConfig)
  std::string affinity_group;                     // empty = none; members are kept together
  std::vector<std::string> anti_affinity_groups;  // no two members ever share a host

  [[nodiscard]] double demand_cores() const noexcept { return cpu_used_cores + steal_cores; }
  bool operator==(const VmState&) const = default;
};

struct ClusterModel {
  TimeNs now{0};
  std::vector<HostState> hosts;
  std::vector<VmState> vms;
  bool operator==(const ClusterModel&) const = default;
};

[[nodiscard]] bool has_tag(const std::vector<std::string>& tags, std::string_view tag) noexcept;

// Checks the invariants the planner relies on: unique, non-empty host names
// and VM ids; every VM on a host of the model; cpus > 0; finite,
// non-negative loads, demands and rates. The error names the offender.
[[nodiscard]] Status validate(const ClusterModel& m);

// validate(), also returning, for each VM, the index of its host in
// ClusterModel::hosts (so the planner resolves names once).
[[nodiscard]] Result<std::vector<std::size_t>> host_of_vms(const ClusterModel& m);

}  // namespace vmtide::model
