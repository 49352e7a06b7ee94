// SPDX-License-Identifier: Apache-2.0
// Text and CSV output of simulator runs.
#include "report.h"

#include <fmt/format.h>

#include <utility>

namespace vmtide::sim {

std::string format_table(const std::string& scenario, const std::vector<Metrics>& rows) {
  std::string out = fmt::format("scenario {}\n", scenario);
  out += fmt::format("{:<16} {:>10} {:>6} {:>6} {:>8} {:>9} {:>9} {:>12} {:>8}\n", "policy", "balance_s", "migr",
                     "failed", "GiB", "migr_s", "pingpong", "steal_core_s", "entropy");
  for (const Metrics& m : rows) {
    const std::string ttb = m.time_to_balance_s < 0 ? "never" : fmt::format("{:.0f}", m.time_to_balance_s);
    out += fmt::format("{:<16} {:>10} {:>6} {:>6} {:>8.1f} {:>9.0f} {:>9} {:>12.0f} {:>8.4f}\n", m.policy, ttb,
                       m.migrations, m.failed, m.gib_migrated, m.migration_s, m.ping_pong, m.steal_core_s,
                       m.final_entropy);
  }
  return out;
}

std::string format_csv(const std::string& scenario, const std::vector<Metrics>& rows, bool header) {
  std::string out = header ? "scenario,policy,t_s,entropy,max_load,stddev\n" : "";
  for (const Metrics& m : rows) {
    for (const Sample& s : m.series) {
      out += fmt::format("{},{},{:.0f},{:.6f},{:.6f},{:.6f}\n", scenario, m.policy, s.t_s, s.entropy, s.max_load,
                         s.stddev);
    }
  }
  return out;
}

std::string format_summary_csv(const std::string& scenario, const std::vector<Metrics>& rows, bool header) {
  std::string out = header ? "scenario,policy,time_to_balance_s,migrations,failed,gib_migrated,migration_s,ping_pong,"
                             "steal_core_s,final_entropy\n"
                           : "";
  for (const Metrics& m : rows) {
    const std::string ttb = m.time_to_balance_s < 0 ? "" : fmt::format("{:.0f}", m.time_to_balance_s);
    out += fmt::format("{},{},{},{},{},{:.3f},{:.1f},{},{:.1f},{:.6f}\n", scenario, m.policy, ttb, m.migrations,
                       m.failed, m.gib_migrated, m.migration_s, m.ping_pong, m.steal_core_s, m.final_entropy);
  }
  return out;
}

std::string format_loads_csv(const std::string& scenario, const std::vector<Metrics>& rows, bool header) {
  std::string out = header ? "scenario,policy,when,host,load\n" : "";
  for (const Metrics& m : rows) {
    for (const auto& [when, loads] : {std::pair{"step", &m.loads_at_step}, std::pair{"end", &m.loads_end}}) {
      for (std::size_t h = 0; h < loads->size(); ++h) {
        out += fmt::format("{},{},{},{},{:.4f}\n", scenario, m.policy, when, h, (*loads)[h]);
      }
    }
  }
  return out;
}

}  // namespace vmtide::sim
