// SPDX-License-Identifier: Apache-2.0
// Text and CSV output of simulator runs.
#include "report.h"

#include <fmt/format.h>

#include <algorithm>
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

std::vector<SeedMean> seed_means(const std::vector<std::vector<Metrics>>& runs) {
  std::vector<SeedMean> out;
  for (const auto& per_seed : runs) {
    SeedMean r;
    if (per_seed.empty()) continue;
    r.policy = per_seed.front().policy;
    for (const Metrics& m : per_seed) {
      ++r.runs;
      if (m.time_to_balance_s >= 0) {
        ++r.balanced;
        r.time_to_balance_s += m.time_to_balance_s;
        r.max_time_to_balance_s = std::max(r.max_time_to_balance_s, m.time_to_balance_s);
      }
      r.migrations += m.migrations;
      r.failed += m.failed;
      r.gib_migrated += m.gib_migrated;
      r.migration_s += m.migration_s;
      r.ping_pong += m.ping_pong;
      r.steal_core_s += m.steal_core_s;
      r.final_entropy += m.final_entropy;
    }
    const double n = r.runs;
    if (r.balanced > 0) r.time_to_balance_s /= r.balanced;
    for (double* x : {&r.migrations, &r.failed, &r.gib_migrated, &r.migration_s, &r.ping_pong, &r.steal_core_s,
                      &r.final_entropy}) {
      *x /= n;
    }
    out.push_back(std::move(r));
  }
  return out;
}

std::string format_mean_summary_csv(const std::string& scenario, const std::vector<SeedMean>& rows, bool header) {
  std::string out = header ? "scenario,policy,time_to_balance_s,migrations,failed,gib_migrated,migration_s,ping_pong,"
                             "steal_core_s,final_entropy,balanced_runs,runs\n"
                           : "";
  for (const SeedMean& m : rows) {
    const std::string ttb = m.balanced == 0 ? "" : fmt::format("{:.1f}", m.time_to_balance_s);
    out += fmt::format("{},{},{},{:.2f},{:.2f},{:.3f},{:.1f},{:.2f},{:.1f},{:.6f},{},{}\n", scenario, m.policy, ttb,
                       m.migrations, m.failed, m.gib_migrated, m.migration_s, m.ping_pong, m.steal_core_s,
                       m.final_entropy, m.balanced, m.runs);
  }
  return out;
}

std::string format_mean_table(const std::string& scenario, const std::string& seeds,
                              const std::vector<SeedMean>& rows) {
  std::string out = fmt::format("scenario {} (mean over seeds {})\n", scenario, seeds);
  out += fmt::format("{:<16} {:>18} {:>6} {:>6} {:>8} {:>9} {:>9} {:>12} {:>8}\n", "policy", "balance_s(max) ok",
                     "migr", "failed", "GiB", "migr_s", "pingpong", "steal_core_s", "entropy");
  for (const SeedMean& m : rows) {
    const std::string ttb = m.balanced == 0 ? fmt::format("never 0/{}", m.runs)
                                            : fmt::format("{:.0f}({:.0f}) {}/{}", m.time_to_balance_s,
                                                          m.max_time_to_balance_s, m.balanced, m.runs);
    out += fmt::format("{:<16} {:>18} {:>6.1f} {:>6.1f} {:>8.1f} {:>9.0f} {:>9.1f} {:>12.0f} {:>8.4f}\n", m.policy, ttb,
                       m.migrations, m.failed, m.gib_migrated, m.migration_s, m.ping_pong, m.steal_core_s,
                       m.final_entropy);
  }
  return out;
}

}  // namespace vmtide::sim
