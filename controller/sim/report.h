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

}  // namespace vmtide::sim
