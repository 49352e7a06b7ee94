// SPDX-License-Identifier: Apache-2.0
// scripts/bench sim: the simulator at scale (1 000 hosts x 20 VMs, one
// simulated hour, 10 s rounds, adaptive policy) for wall_s, and the
// standard load-step scenario (controller/sim/scenarios/medium.toml) for
// adaptive's time_to_balance_s, ping_pong_moves and
// migrations_vs_best_baseline (adaptive's migrations / those of the
// baseline with the fewest migrations among the ones that balance).
#include <chrono>
#include <cmath>
#include <string>

#include "bench_util.h"
#include "policy.h"
#include "scenario.h"
#include "sim.h"

namespace {

using namespace vmtide;

sim::Metrics run_or_die(const sim::Scenario& s, const std::string& policy) {
  auto p = sim::make_policy(policy, s);
  if (!p) {
    bench::progress("make_policy: %s", p.error().message().c_str());
    std::exit(1);
  }
  auto m = sim::run(s, **p);
  if (!m) {
    bench::progress("run %s: %s", policy.c_str(), m.error().message().c_str());
    std::exit(1);
  }
  return std::move(*m);
}

}  // namespace

int main() {
  bench::Report r("sim");
  auto medium = sim::load_scenario(std::string(VMTIDE_SOURCE_DIR) + "/controller/sim/scenarios/medium.toml");
  if (!medium) {
    bench::progress("%s", medium.error().message().c_str());
    return 1;
  }

  // Scale: the medium scenario's VMs, 20 per host on 64-core hosts (~50 %).
  sim::Scenario big = *medium;
  big.name = "scale-1000x20";
  big.hosts = 1000;
  big.vms_per_host = 20;
  big.host_cpus = 64;
  big.duration_s = 3600;
  big.round_s = 10;
  bench::progress("scale: %d hosts x %d VMs, %.0f s simulated, %.0f s rounds", big.hosts, big.vms_per_host,
                  big.duration_s, big.round_s);
  const auto t0 = std::chrono::steady_clock::now();
  const sim::Metrics bm = run_or_die(big, "adaptive");
  const double wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  bench::progress("scale: %.1f s wall, %d migrations, time to balance %.0f s", wall_s, bm.migrations,
                  bm.time_to_balance_s);
  r.metric("wall_s", wall_s);
  r.metric("scale_migrations", bm.migrations);
  r.metric("scale_time_to_balance_s", bm.time_to_balance_s < 0 ? NAN : bm.time_to_balance_s);

  // The standard load-step scenario.
  const sim::Metrics ad = run_or_die(*medium, "adaptive");
  r.metric("time_to_balance_s", ad.time_to_balance_s < 0 ? NAN : ad.time_to_balance_s);
  r.metric("ping_pong_moves", ad.ping_pong);
  r.metric("migrations", ad.migrations);
  r.metric("steal_core_s", ad.steal_core_s);
  std::string best;
  int best_migrations = 0;
  for (const char* b : {"threshold", "stddev"}) {
    const sim::Metrics m = run_or_die(*medium, b);
    r.metric(std::string(b) + "_migrations", m.migrations);
    r.metric(std::string(b) + "_time_to_balance_s", m.time_to_balance_s < 0 ? NAN : m.time_to_balance_s);
    if (m.time_to_balance_s >= 0 && (best.empty() || m.migrations < best_migrations)) {
      best = b;
      best_migrations = m.migrations;
    }
  }
  if (best.empty() || best_migrations == 0) {
    r.metric("migrations_vs_best_baseline", NAN);
    r.note("migrations_vs_best_baseline", "no baseline balanced the scenario");
  } else {
    // The best baseline is the one whose <name>_migrations equals the
    // denominator (notes are reserved for metrics that are absent).
    r.metric("migrations_vs_best_baseline", static_cast<double>(ad.migrations) / best_migrations);
    bench::progress("best baseline: %s (%d migrations)", best.c_str(), best_migrations);
  }
  bench::progress("medium: adaptive balanced in %.0f s with %d migrations, %d ping-pong", ad.time_to_balance_s,
                  ad.migrations, ad.ping_pong);
  r.print();
  return 0;
}
