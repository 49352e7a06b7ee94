// SPDX-License-Identifier: Apache-2.0
// vmtide-sim: run balancing policies over simulated scenarios and compare
// them (docs/simulator.md).
//   vmtide-sim run SCENARIO [--policy P] [--seed N] [--csv FILE] [--moves]
//   vmtide-sim compare SCENARIO... [--policies P,...] [--seed N] [--csv FILE] [--summary-csv FILE]
//       [--loads-csv FILE]
#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "policy.h"
#include "report.h"
#include "scenario.h"
#include "sim.h"

namespace {

using namespace vmtide;

// Runs each policy on one scenario; false (after one message) on error.
bool run_policies(const std::string& path, const std::vector<std::string>& policies, std::optional<int> seed,
                  std::vector<sim::Metrics>* rows, std::string* name) {
  auto s = sim::load_scenario(path);
  if (!s) {
    std::fprintf(stderr, "vmtide-sim: %s\n", s.error().message().c_str());
    return false;
  }
  if (seed) s->seed = static_cast<std::uint64_t>(*seed);
  *name = s->name;
  for (const auto& p : policies) {
    auto pol = sim::make_policy(p, *s);
    if (!pol) {
      std::fprintf(stderr, "vmtide-sim: %s\n", pol.error().message().c_str());
      return false;
    }
    auto m = sim::run(*s, **pol);
    if (!m) {
      std::fprintf(stderr, "vmtide-sim: %s, policy %s: %s\n", path.c_str(), p.c_str(), m.error().message().c_str());
      return false;
    }
    rows->push_back(std::move(*m));
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vmtide-sim: compare balancing policies on simulated clusters"};
  app.require_subcommand(1);
  std::vector<std::string> scenarios;
  std::string policy = "adaptive";
  std::vector<std::string> policies = sim::policy_names();
  std::string csv;
  auto* run = app.add_subcommand("run", "run one policy on a scenario");
  run->add_option("scenario", scenarios, "scenario TOML file")->required()->expected(1);
  run->add_option("--policy", policy, "push, pull, adaptive, adaptive-nocost, threshold, stddev or none");
  run->add_option("--csv", csv, "write entropy over time as CSV to this file");
  bool show_moves = false;
  run->add_flag("--moves", show_moves, "list every migration (start, end, VM, source, target)");
  auto* cmp = app.add_subcommand("compare", "run every policy on each scenario and print a table");
  cmp->add_option("scenarios", scenarios, "scenario TOML files")->required();
  cmp->add_option("--policies", policies, "policies to compare (default: all)")->delimiter(',');
  cmp->add_option("--csv", csv, "write entropy over time as CSV to this file");
  std::string summary_csv;
  cmp->add_option("--summary-csv", summary_csv, "write the table as CSV to this file");
  std::string loads_csv;
  cmp->add_option("--loads-csv", loads_csv, "write host loads at the load step and at the end as CSV");
  std::optional<int> seed;
  for (auto* sub : {run, cmp}) sub->add_option("--seed", seed, "override the scenario's seed");
  std::string seeds;
  cmp->add_option("--seeds", seeds,
                  "run seeds A-B (e.g. 11-20) and print per-policy means instead (--summary-csv: the means)")
      ->excludes("--seed");
  CLI11_PARSE(app, argc, argv);
  if (run->parsed()) policies = {policy};

  if (!seeds.empty()) {
    int lo = 0, hi = -1;
    if (std::sscanf(seeds.c_str(), "%d-%d", &lo, &hi) != 2 || lo > hi || lo < 0) {
      std::fprintf(stderr, "vmtide-sim: --seeds wants A-B with 0 <= A <= B, got '%s'\n", seeds.c_str());
      return 1;
    }
    std::string mean_summary;
    for (std::size_t i = 0; i < scenarios.size(); ++i) {
      std::vector<std::vector<sim::Metrics>> runs(policies.size());
      std::string name;
      for (int sd = lo; sd <= hi; ++sd) {
        std::vector<sim::Metrics> rows;
        if (!run_policies(scenarios[i], policies, sd, &rows, &name)) return 1;
        for (std::size_t p = 0; p < rows.size(); ++p) runs[p].push_back(std::move(rows[p]));
      }
      const auto means = sim::seed_means(runs);
      std::printf("%s%s", i ? "\n" : "", sim::format_mean_table(name, seeds, means).c_str());
      std::fflush(stdout);
      mean_summary += sim::format_mean_summary_csv(name, means, i == 0);
    }
    if (!summary_csv.empty()) {
      std::ofstream f(summary_csv);
      f << mean_summary;
      if (!f) {
        std::fprintf(stderr, "vmtide-sim: cannot write %s\n", summary_csv.c_str());
        return 1;
      }
    }
    return 0;
  }

  std::string all_csv;
  std::string all_summary;
  std::string all_loads;
  for (std::size_t i = 0; i < scenarios.size(); ++i) {
    std::vector<sim::Metrics> rows;
    std::string name;
    if (!run_policies(scenarios[i], policies, seed, &rows, &name)) return 1;
    std::printf("%s%s", i ? "\n" : "", sim::format_table(name, rows).c_str());
    if (show_moves) {
      for (const auto& r : rows) {
        for (const auto& mv : r.moves) {
          std::printf("  %7.0f-%-7.0f %s %s -> %s%s\n", mv.start_s, mv.end_s, mv.vm_id.c_str(), mv.src.c_str(),
                      mv.dst.c_str(), mv.ok ? "" : " (failed)");
        }
      }
    }
    std::fflush(stdout);
    all_csv += sim::format_csv(name, rows, i == 0);
    all_summary += sim::format_summary_csv(name, rows, i == 0);
    all_loads += sim::format_loads_csv(name, rows, i == 0);
  }
  for (const auto& [path, text] :
       {std::pair{&csv, &all_csv}, std::pair{&summary_csv, &all_summary}, std::pair{&loads_csv, &all_loads}}) {
    if (path->empty()) continue;
    std::ofstream f(*path);
    f << *text;
    if (!f) {
      std::fprintf(stderr, "vmtide-sim: cannot write %s\n", path->c_str());
      return 1;
    }
  }
  return 0;
}
