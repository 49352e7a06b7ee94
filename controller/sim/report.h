// SPDX-License-Identifier: Apache-2.0
// Formatting of simulator results: the comparison table (policies x
// metrics) and the CSV of entropy over time that the plot script reads.
#pragma once

#include <string>
#include <vector>

#include "sim.h"

namespace vmtide::sim {

// One row per policy: time to balance, migrations, failed, GiB, migration
// seconds, ping-pong, steal core-seconds, final entropy.
[[nodiscard]] std::string format_table(const std::string& scenario, const std::vector<Metrics>& rows);

// "scenario,policy,t_s,entropy,max_load,stddev" lines (header included when
// `header`).
[[nodiscard]] std::string format_csv(const std::string& scenario, const std::vector<Metrics>& rows, bool header);

// One row per policy: "scenario,policy,time_to_balance_s,migrations,failed,
// gib_migrated,migration_s,ping_pong,steal_core_s,final_entropy"
// (time_to_balance_s empty when never balanced).
[[nodiscard]] std::string format_summary_csv(const std::string& scenario, const std::vector<Metrics>& rows,
                                             bool header);

// "scenario,policy,when,host,load" with when = "step" (the first tick at or
// after the load step) or "end" (the last tick), for the heat map.
[[nodiscard]] std::string format_loads_csv(const std::string& scenario, const std::vector<Metrics>& rows, bool header);

// Means over runs of one policy on several seeds (`compare --seeds`).
struct SeedMean {
  std::string policy;
  int runs = 0;
  int balanced = 0;              // runs that balanced after the step
  double time_to_balance_s = 0;  // mean over the runs that balanced
  double max_time_to_balance_s = 0;
  double migrations = 0;
  double failed = 0;
  double gib_migrated = 0;
  double migration_s = 0;
  double ping_pong = 0;
  double steal_core_s = 0;
  double final_entropy = 0;
};

// runs[i] holds one Metrics per seed for policy i.
[[nodiscard]] std::vector<SeedMean> seed_means(const std::vector<std::vector<Metrics>>& runs);

// format_summary_csv's columns with the means (time_to_balance_s: mean over
// the runs that balanced, empty when none did), plus balanced_runs and runs.
[[nodiscard]] std::string format_mean_summary_csv(const std::string& scenario, const std::vector<SeedMean>& rows,
                                                  bool header);

// Like format_table, with balance_s as "mean (max) n/N balanced".
[[nodiscard]] std::string format_mean_table(const std::string& scenario, const std::string& seeds,
                                            const std::vector<SeedMean>& rows);

}  // namespace vmtide::sim
