// SPDX-License-Identifier: Apache-2.0
// A simulator scenario: the cluster, the VMs' demand traces and sizes, the
// load step, the round period and the planner's thresholds, read from a
// strict TOML file (unknown keys are errors). Fixed seed -> same cluster.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cluster.h"
#include "config.h"
#include "vmtide/result.h"

namespace vmtide::sim {

enum class DistKind { kUniform, kLognormal, kChoice };

// A distribution VM sizes are drawn from. Uniform [min, max] (min == max is
// a constant); lognormal with the given median and sigma (of the log),
// clamped to [min, max] when max > 0; or a choice among values with
// weights (equal when empty).
struct Range {
  double min = 0.0;
  double max = 0.0;
  DistKind kind = DistKind::kUniform;
  double median = 0.0;
  double sigma = 0.0;
  std::vector<double> values;
  std::vector<double> weights;
};

enum class TraceKind { kConst, kStep, kRamp, kDiurnal, kRandomWalk, kBursty, kReplay };

// One VM's recorded samples (`vmtide tap` vm messages).
struct ReplayPoint {
  double t_s = 0;            // since the VM's first sample
  double cores = 0;          // (cpu_ns + steal_ns) / interval_ns
  double dirty_bytes_s = -1;  // distinct pages dirtied in the window / window; -1 = not measured
  bool operator==(const ReplayPoint&) const = default;
};
struct ReplayTrace {
  std::string vm_id;
  std::vector<ReplayPoint> points;  // t ascending, first t = 0
  double ram_bytes = 0;             // the last reported values; 0 = never reported
  double rss_bytes = 0;
  std::vector<model::DirtyPoint> dirty_curve;  // the last reported D(tau), bytes; may be empty
};

// Reads `vmtide tap` JSON lines (other kinds are skipped); one trace per VM
// id, in id order. A malformed line is an error naming it.
[[nodiscard]] Result<std::vector<ReplayTrace>> load_replay(const std::string& path);
[[nodiscard]] const char* trace_name(TraceKind k) noexcept;
[[nodiscard]] Result<TraceKind> parse_trace(std::string_view s);

// One VM placed by hand (tests, small what-if scenarios): replaces the
// generated VMs when Scenario::vms is not empty.
struct VmSpec {
  int host = 0;
  double demand_cores = 1.0;
  double ram_gib = 4;
  double touched_frac = 0.8;
  double dirty_mib_s = 20;
};

struct Scenario {
  std::string name = "unnamed";
  std::uint64_t seed = 1;
  double duration_s = 3600;
  double round_s = 10;  // a decision round every round_s
  double tick_s = 10;   // demand traces advance and metrics sample every tick_s
  // Policies see host loads smoothed with this time constant, as the
  // controller's model does (EWMA, 30 s there); 0 = the true load.
  double model_tau_s = 0;

  // Hosts: `hosts` alike, or, when `groups` is not empty, the groups in
  // order (hosts = the sum of their counts).
  int hosts = 10;
  std::uint32_t host_cpus = 32;
  double host_mem_gib = 512;
  double link_gbit_s = 10;
  struct HostGroup {
    int count = 1;
    std::uint32_t cpus = 32;
    double mem_gib = 512;
    double link_gbit_s = 10;
    int vms_per_host = 10;
  };
  std::vector<HostGroup> groups;

  // VMs: vms_per_host placed round-robin, each drawn from these ranges.
  int vms_per_host = 10;
  std::vector<VmSpec> vms;          // empty: generate vms_per_host per host from the ranges below
  Range vm_demand_cores{0.5, 2.0};  // base CPU demand
  Range vm_ram_gib{4, 16};
  Range vm_touched_frac{0.5, 0.9};      // of RAM: what pass 0 sends
  Range vm_dirty_mib_s{5, 80};          // dirty rate: the curve's initial slope
  // Working-set dirty curves: when set, each VM's D(tau) saturates at a hot
  // set of this fraction of its touched RAM, D(tau) = W (1 - exp(-r tau / W))
  // with r its dirty rate, instead of growing at r for ever (kind uniform
  // with max 0 = unset: constant rate).
  Range vm_dirty_wss_frac{0, 0};
  TraceKind trace = TraceKind::kConst;  // shape on top of the base demand
  double trace_amplitude = 0.3;         // diurnal/ramp/step size, walk step, burst size (fractions)
  double trace_period_s = 86400;        // diurnal period; ramp/step time
  double burst_prob = 0.01;             // bursty: chance per tick a burst starts
  double burst_s = 120;                 // bursty: how long it lasts
  // replay: VM i replays recorded trace i mod K as its demand in cores
  // (cyclic over the recording) and, where the recording has them, takes
  // its RAM, touched RAM and dirty curve from it and its dirty rate from
  // each sample; loaded from [vms] replay, a path relative to the scenario.
  std::vector<ReplayTrace> replay;

  // The load step: at step_at_s the VMs first placed on the first
  // step_hosts_frac of hosts multiply their demand by step_factor.
  double step_at_s = 600;
  double step_hosts_frac = 0.2;
  double step_factor = 1.8;

  // A running migration costs this many cores on its source and on its
  // target (QEMU's migration thread and page copying; ~0.1-0.3 core at
  // 10 GbE in our lab), and a move that does not converge fails after at
  // most fail_after_s.
  double migration_cpu_cores = 0.25;
  double fail_after_s = 300;

  // Metrics: balanced = entropy >= balanced_entropy and no host above
  // high_frac; a return to a host left within ping_pong_window_s is a
  // ping-pong move.
  double balanced_entropy = 0.95;
  double high_frac = 0.80;
  double low_frac = 0.20;
  double ping_pong_window_s = 1800;
  double stddev_threshold = 0.20;  // the Watcher-like baseline

  // The vmtide planner's configuration for this scenario.
  strategy::PlannerConfig planner = default_planner();

  // vmtide's defaults except the band, aligned with the metric's "high"
  // (0.80) so every policy is judged by the threshold it acts on, and a
  // 30 s hot sustain (a 10 s round sees a hot host three times first).
  static strategy::PlannerConfig default_planner();
};

// Rejects a scenario the simulator cannot run (no hosts, a VM on a host
// that does not exist, an invalid planner configuration).
[[nodiscard]] Status validate(const Scenario& s);

// The dirty curve of a working set W (bytes) first written at r bytes/s:
// D(tau) = W (1 - exp(-r tau / W)) at tau = 0.25 s .. 256 s (doubling).
[[nodiscard]] std::vector<model::DirtyPoint> working_set_curve(double rate_bytes_s, double wss_bytes);

// Parses a scenario; errors name the source and line.
[[nodiscard]] Result<Scenario> parse_scenario(std::string_view toml, const std::string& source);
[[nodiscard]] Result<Scenario> load_scenario(const std::string& path);

}  // namespace vmtide::sim
