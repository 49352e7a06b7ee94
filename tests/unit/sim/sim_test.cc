// SPDX-License-Identifier: Apache-2.0
// vmtide-sim: a tiny scenario with a known optimum, determinism (same seed,
// bit-identical metrics), conservation of VMs across 10 000 migrations, and
// the shipped scenario files.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include "cost.h"
#include "policy.h"
#include "report.h"
#include "scenario.h"
#include "sim.h"

namespace vmtide::sim {
namespace {

const std::string kScenarios = std::string(VMTIDE_SOURCE_DIR) + "/controller/sim/scenarios/";

Metrics must_run(const Scenario& s, const std::string& policy, const CompletionHook& hook = {}) {
  auto p = make_policy(policy, s);
  EXPECT_TRUE(p.ok()) << p.error().message();
  auto m = run(s, **p, hook);
  EXPECT_TRUE(m.ok()) << m.error().message();
  return m.ok() ? *m : Metrics{};
}

// Host 0 (16 cores) runs 4 + 4 + 6 cores (87.5 %, above high 80 %), host 1
// one 1-core VM (6 %). The best single move is the 6-core VM: 50 % / 44 %.
Scenario one_hot_one_idle() {
  Scenario s;
  s.name = "one-hot-one-idle";
  s.hosts = 2;
  s.host_cpus = 16;
  s.duration_s = 900;
  s.step_at_s = 0;
  s.step_factor = 1.0;
  s.vms = {VmSpec{0, 4.0}, VmSpec{0, 4.0}, VmSpec{0, 6.0}, VmSpec{1, 1.0}};
  return s;
}

TEST(SimOptimum, EveryVmtidePolicyFixesTheHotHostInOneMigration) {
  for (const char* policy : {"push", "pull", "adaptive", "adaptive-nocost"}) {
    SCOPED_TRACE(policy);
    std::vector<int> final_hosts;
    const Metrics m =
        must_run(one_hot_one_idle(), policy,
                 [&](const std::vector<std::vector<int>>&, const std::vector<int>& vm_host) { final_hosts = vm_host; });
    EXPECT_EQ(m.migrations, 1);
    EXPECT_EQ(m.failed, 0);
    EXPECT_EQ(m.ping_pong, 0);
    EXPECT_TRUE(m.balanced_at_end);
    EXPECT_GE(m.time_to_balance_s, 0.0);
    EXPECT_LE(m.time_to_balance_s, 120.0);
    EXPECT_EQ(final_hosts, (std::vector<int>{0, 0, 1, 1}));
  }
}

TEST(SimModel, MigrationLastsThePredictedTimeAndCostsCpuOnBothEnds) {
  // 1 GbE and 32 GiB VMs: the move spans several 10 s ticks, during which
  // both hosts carry migration_cpu_cores on top of their VMs. Equal sizes,
  // so the cost ties and the biggest gain (the 6-core VM) wins.
  Scenario s = one_hot_one_idle();
  s.link_gbit_s = 1;
  s.vms = {VmSpec{0, 4.0, 32, 0.9, 10}, VmSpec{0, 4.0, 32, 0.9, 10}, VmSpec{0, 6.0, 32, 0.9, 10}, VmSpec{1, 1.0}};
  const Metrics m = must_run(s, "push");
  ASSERT_EQ(m.moves.size(), 1u);
  const MoveRecord& mv = m.moves[0];
  EXPECT_EQ(mv.vm_id, "vm00002");
  model::VmState vm;
  vm.id = "vm00002";
  vm.ram_bytes = static_cast<std::uint64_t>(32.0 * 1024 * 1024 * 1024);
  vm.rss_bytes = static_cast<std::uint64_t>(static_cast<double>(vm.ram_bytes) * 0.9);
  vm.dirty_bytes_per_s = 10.0 * 1024 * 1024;
  model::HostState h;
  h.link_bw_bytes_per_s = 1e9 / 8;
  const auto c = strategy::make_precopy_cost_model()(vm, h, h);
  ASSERT_TRUE(c.converges);
  EXPECT_NEAR(mv.end_s - mv.start_s, c.total_s, 0.002);
  EXPECT_NEAR(m.migration_s, c.total_s, 0.002);
  EXPECT_GT(c.total_s, 60.0);
  // A tick inside the migration: source 14 + 0.25 cores of 16.
  bool seen = false;
  for (const Sample& smp : m.series) {
    if (smp.t_s > mv.start_s && smp.t_s < mv.end_s) {
      EXPECT_NEAR(smp.max_load, 14.25 / 16, 1e-9);
      seen = true;
    }
  }
  EXPECT_TRUE(seen);
}

TEST(SimModel, StealIsDemandAboveCapacityOverTime) {
  Scenario s;
  s.hosts = 1;
  s.host_cpus = 4;
  s.duration_s = 100;
  s.step_factor = 1.0;
  s.vms = {VmSpec{0, 3.0}, VmSpec{0, 3.0}};
  const Metrics m = must_run(s, "none");
  EXPECT_NEAR(m.steal_core_s, 2.0 * 100, 1e-6);
}

TEST(SimModel, TracesShapeDemand) {
  for (TraceKind k : {TraceKind::kConst, TraceKind::kStep, TraceKind::kRamp, TraceKind::kDiurnal,
                      TraceKind::kRandomWalk, TraceKind::kBursty}) {
    SCOPED_TRACE(trace_name(k));
    Scenario s;
    s.hosts = 4;
    s.vms_per_host = 8;
    s.trace = k;
    s.trace_amplitude = 0.5;
    s.trace_period_s = 1800;
    s.burst_prob = 0.05;
    s.step_factor = 1.0;
    s.duration_s = 3600;
    const Metrics m = must_run(s, "none");
    double lo = 1e9, hi = 0;
    for (const Sample& smp : m.series) {
      lo = std::min(lo, smp.max_load);
      hi = std::max(hi, smp.max_load);
    }
    if (k == TraceKind::kConst) {
      EXPECT_EQ(lo, hi);
    } else {
      EXPECT_GT(hi - lo, 0.02);
    }
    if (k == TraceKind::kRamp) {
      EXPECT_GT(m.series.back().max_load, m.series.front().max_load * 1.3);
    }
  }
}

std::string vm_line(const char* id, std::uint64_t seq, double t_s, double cores) {
  const auto ns = static_cast<std::uint64_t>(t_s * 1e9);
  const auto cpu = static_cast<std::uint64_t>(cores * 1e9);
  return "{\"v\":1,\"kind\":\"vm\",\"host\":\"n1\",\"epoch\":1,\"seq\":" + std::to_string(seq) +
         ",\"ts_ns\":1,\"mono_ns\":" + std::to_string(ns) + ",\"interval_ns\":1000000000,\"id\":\"" + id +
         "\",\"name\":\"" + id + "\",\"pid\":1,\"vcpus\":4,\"cpu_ns\":" + std::to_string(cpu) +
         ",\"steal_ns\":0,\"ram_bytes\":4294967296,\"rss_bytes\":1000}\n";
}

TEST(SimReplay, RecordedDemandDrivesTheVms) {
  // Two recorded VMs: "a" at 2 cores then 6 from t = 100 s, "b" at 1 core.
  // One 8-core host with two VMs replays a and b: load 3/8, then 7/8 at
  // t = 100 s (the recording repeats after 101 s).
  const std::string dir = ::testing::TempDir();
  {
    std::ofstream rec(dir + "/sim-rec.jsonl");
    rec << vm_line("a", 1, 1000, 2.0) << vm_line("b", 2, 1000, 1.0) << vm_line("a", 3, 1100, 6.0)
        << vm_line("b", 5, 1200, 1.0);
    std::ofstream sc(dir + "/sim-replay.toml");
    sc << "[run]\nduration_s = 100\n[cluster]\nhosts = 1\nhost_cpus = 8\nvms_per_host = 2\n"
          "[vms]\ntrace = \"replay\"\nreplay = \"sim-rec.jsonl\"\n[step]\nfactor = 1.0\n";
  }
  auto s = load_scenario(dir + "/sim-replay.toml");
  ASSERT_TRUE(s.ok()) << s.error().message();
  ASSERT_EQ(s->replay.size(), 2u);
  EXPECT_EQ(s->replay[0].vm_id, "a");
  EXPECT_EQ(s->replay[0].points.size(), 2u);
  const Metrics m = must_run(*s, "none");
  ASSERT_FALSE(m.series.empty());
  EXPECT_NEAR(m.series.front().max_load, 3.0 / 8, 1e-9);
  EXPECT_NEAR(m.series.back().max_load, 7.0 / 8, 1e-9);
}

TEST(SimReplay, MissingOrMalformedRecordingIsAnError) {
  EXPECT_FALSE(parse_scenario("[vms]\ntrace = \"replay\"\n", "t.toml").ok());
  EXPECT_FALSE(parse_scenario("[vms]\nreplay = \"/nonexistent.jsonl\"\n", "t.toml").ok());
  const std::string bad = ::testing::TempDir() + "/sim-bad.jsonl";
  std::ofstream(bad) << "{not json\n";
  auto r = load_replay(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find(":1:"), std::string::npos) << r.error().message();
}

TEST(SimReplay, ADirtyCurveBeyond64BitsIsAnErrorNotAWrappedNumber) {
  // Found by fuzz_sim_scenario: 2^48 pages of 4 MiB is 2^70 bytes, which
  // had no uint64 value (undefined behaviour, not a number).
  const std::string path = ::testing::TempDir() + "/sim-huge-curve.jsonl";
  std::string line = vm_line("a", 1, 1000, 1.0);
  line.insert(line.rfind('}'), ",\"dirty\":{\"src\":\"softdirty\",\"window_ns\":1000000000,\"pages\":5,"
                               "\"page_bytes\":4194304,\"curve\":[[100000000,281474976710656]]}");
  std::ofstream(path) << vm_line("b", 1, 1000, 1.0) << line;
  auto r = load_replay(path);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find(":2: a dirty curve point beyond 2^64 bytes"), std::string::npos)
      << r.error().message();
}

TEST(SimHosts, GroupCountsThatOverflowIntAreRejected) {
  // Two groups of 2^31 - 1 hosts: their sum has no int value.
  auto s = parse_scenario(
      "[cluster]\nhosts = 2\n[[cluster.groups]]\ncount = 2147483647\ncpus = 8\nmem_gib = 64\nlink_gbit_s = 10\n"
      "[[cluster.groups]]\ncount = 2147483647\ncpus = 8\nmem_gib = 64\nlink_gbit_s = 10\n",
      "t.toml");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find("counts sum to 4294967294"), std::string::npos) << s.error().message();
}

TEST(SimOptimum, NoneNeverBalances) {
  const Metrics m = must_run(one_hot_one_idle(), "none");
  EXPECT_EQ(m.migrations, 0);
  EXPECT_LT(m.time_to_balance_s, 0.0);
  EXPECT_FALSE(m.balanced_at_end);
}

TEST(SimDeterminism, SameSeedGivesIdenticalMetrics) {
  for (const char* file : {"low.toml", "medium.toml", "high.toml", "mixed.toml"}) {
    auto s = load_scenario(kScenarios + file);
    ASSERT_TRUE(s.ok()) << s.error().message();
    for (const auto& policy : policy_names()) {
      SCOPED_TRACE(std::string(file) + " " + policy);
      const Metrics a = must_run(*s, policy);
      const Metrics b = must_run(*s, policy);
      EXPECT_TRUE(a == b);  // every field, the whole series, bit for bit
      EXPECT_FALSE(a.series.empty());
    }
  }
}

TEST(SimDeterminism, AnotherSeedGivesAnotherCluster) {
  auto s = load_scenario(kScenarios + "medium.toml");
  ASSERT_TRUE(s.ok()) << s.error().message();
  const Metrics a = must_run(*s, "none");
  s->seed += 1;
  const Metrics b = must_run(*s, "none");
  EXPECT_FALSE(a.series == b.series);
}

// Checks after every completed migration that each VM is listed on exactly
// one host, the one it thinks it is on.
struct Conservation {
  long completions = 0;
  long violations = 0;
  void operator()(const std::vector<std::vector<int>>& host_vms, const std::vector<int>& vm_host) {
    ++completions;
    std::vector<int> seen(vm_host.size(), 0);
    for (std::size_t h = 0; h < host_vms.size(); ++h) {
      for (int v : host_vms[h]) {
        ++seen[static_cast<std::size_t>(v)];
        if (vm_host[static_cast<std::size_t>(v)] != static_cast<int>(h)) ++violations;
      }
    }
    for (int n : seen) {
      if (n != 1) ++violations;
    }
  }
};

TEST(SimConservation, NoVmLostOrDuplicatedAcross10000Migrations) {
  // Bursty demand that swings 3x on small hosts, and a planner with every
  // damper off, so VMs move all the time.
  Scenario s;
  s.name = "churn";
  s.seed = 7;
  s.hosts = 12;
  s.host_cpus = 8;
  s.vms_per_host = 6;
  s.vm_demand_cores = {0.2, 1.6};
  s.vm_ram_gib = {1, 4};
  s.vm_dirty_mib_s = {1, 40};
  s.trace = TraceKind::kBursty;
  s.trace_amplitude = 2.0;
  s.burst_prob = 0.05;
  s.burst_s = 60;
  s.duration_s = 100'000;
  s.stddev_threshold = 0.0;
  auto& p = s.planner;
  p.hot_sustain = p.cold_sustain = std::chrono::nanoseconds{0};
  p.vm_cooldown_base = std::chrono::seconds{10};
  p.vm_cooldown_max = std::chrono::seconds{10};
  p.no_return_window = std::chrono::nanoseconds{0};
  p.host_hold_down = std::chrono::nanoseconds{0};
  p.band = model::Band{.high_enter = 0.6, .high_exit = 0.55, .low_enter = 0.4, .low_exit = 0.45};
  p.adaptive_crossover_frac = 0.5;
  ASSERT_TRUE(validate(s).ok()) << validate(s).error().message();
  Conservation c;
  int migrations = 0;
  for (const char* policy : {"adaptive", "push", "pull", "stddev", "threshold"}) {
    const Metrics m = must_run(s, policy, std::ref(c));
    migrations += m.migrations - m.failed;
  }
  EXPECT_EQ(c.violations, 0);
  EXPECT_GE(c.completions, 10'000);
  EXPECT_GE(migrations, 10'000);
}

TEST(SimScenario, ShippedScenariosParse) {
  for (const char* file : {"low.toml", "medium.toml", "high.toml", "mixed.toml"}) {
    auto s = load_scenario(kScenarios + file);
    EXPECT_TRUE(s.ok()) << file << ": " << (s.ok() ? "" : s.error().message());
  }
}

TEST(SimScenario, UnknownKeysAndBadValuesAreErrors) {
  struct Case {
    const char* toml;
    const char* want;
  };
  const Case cases[] = {
      {"[run]\nseeed = 1\n", "unknown key 'seeed'"},  {"[clusterz]\n", "unknown section"},
      {"[vms]\ntrace = \"sine\"\n", "unknown trace"}, {"[vms]\nram_gib = [8, 4]\n", "min <= max"},
      {"[cluster]\nhosts = 0\n", "must be > 0"},      {"[planner]\nhigh_enter = 0.5\nhigh_exit = 0.6\n", "[planner]"},
      {"[planner]\npush_relief = 1.5\n", "push_relief"},
      // Found by fuzz_sim_scenario: accepted, with no millisecond count.
      {"[run]\nround_s = nan\n", "at most 1e9 s"},     {"[run]\nduration_s = inf\n", "at most 1e9 s"},
  };
  for (const Case& c : cases) {
    auto s = parse_scenario(c.toml, "t.toml");
    ASSERT_FALSE(s.ok()) << c.toml;
    EXPECT_NE(s.error().message().find(c.want), std::string::npos) << s.error().message();
  }
}

TEST(SimScenario, AllKeysParse) {
  auto s = parse_scenario(R"(
[run]
name = "x"
seed = 9
duration_s = 60
round_s = 5
tick_s = 5
[cluster]
hosts = 3
host_cpus = 8
vms_per_host = 2
[vms]
trace = "diurnal"
demand_cores = [1, 1]
[step]
factor = 2.0
[migration]
cpu_cores = 0.5
[metrics]
high_frac = 0.9
[planner]
hot_sustain_s = 0
push_relief = 0.25
push_depth_weight = 0.5
)",
                          "t.toml");
  ASSERT_TRUE(s.ok()) << s.error().message();
  EXPECT_DOUBLE_EQ(s->planner.push_relief, 0.25);
  EXPECT_DOUBLE_EQ(s->planner.push_depth_weight, 0.5);
  EXPECT_EQ(s->seed, 9u);
  EXPECT_EQ(s->trace, TraceKind::kDiurnal);
  EXPECT_EQ(s->planner.hot_sustain, std::chrono::nanoseconds{0});
  EXPECT_DOUBLE_EQ(s->migration_cpu_cores, 0.5);
}

// Keeps the first model the simulator shows a policy, and never moves.
class Capture final : public Policy {
 public:
  std::string_view name() const noexcept override { return "capture"; }
  Result<std::vector<Move>> decide(const model::ClusterModel& m, const strategy::RoundInputs&) override {
    if (first.hosts.empty()) first = m;
    return std::vector<Move>{};
  }
  model::ClusterModel first;
};

model::ClusterModel first_model(const Scenario& s) {
  Capture c;
  auto m = run(s, c);
  EXPECT_TRUE(m.ok()) << m.error().message();
  return c.first;
}

constexpr double kGiBd = 1024.0 * 1024 * 1024;

TEST(SimDistributions, ChoiceAndLognormalShapeTheVmSizes) {
  auto s = parse_scenario(R"(
[run]
duration_s = 10
[cluster]
hosts = 50
vms_per_host = 20
host_mem_gib = 4096
[vms]
ram_gib = {dist = "choice", values = [4, 8, 16], weights = [1, 0, 3]}
dirty_mib_s = {dist = "lognormal", median = 40, sigma = 0.8, min = 5, max = 400}
)",
                          "t.toml");
  ASSERT_TRUE(s.ok()) << s.error().message();
  EXPECT_EQ(s->vm_ram_gib.kind, DistKind::kChoice);
  EXPECT_EQ(s->vm_dirty_mib_s.kind, DistKind::kLognormal);
  const model::ClusterModel m = first_model(*s);
  ASSERT_EQ(m.vms.size(), 1000u);
  int n4 = 0, n8 = 0, n16 = 0;
  std::vector<double> dirty;
  for (const auto& v : m.vms) {
    const double g = static_cast<double>(v.ram_bytes) / kGiBd;
    n4 += std::abs(g - 4) < 1e-6 ? 1 : 0;
    n8 += std::abs(g - 8) < 1e-6 ? 1 : 0;
    n16 += std::abs(g - 16) < 1e-6 ? 1 : 0;
    dirty.push_back(v.dirty_bytes_per_s / (1024 * 1024));
  }
  EXPECT_EQ(n4 + n16, 1000);
  EXPECT_EQ(n8, 0);  // weight 0: never drawn
  EXPECT_NEAR(static_cast<double>(n16) / 1000, 0.75, 0.05);
  std::sort(dirty.begin(), dirty.end());
  EXPECT_GE(dirty.front(), 5.0);
  EXPECT_LE(dirty.back(), 400.0);
  EXPECT_NEAR(dirty[500], 40.0, 6.0);  // the median
  // Lognormal with sigma 0.8: the 84th percentile is ~median * e^0.8.
  EXPECT_NEAR(dirty[841], 40.0 * std::exp(0.8), 15.0);
}

TEST(SimDistributions, BadDistributionsAreErrors) {
  for (const char* bad : {"[vms]\nram_gib = {dist = \"poisson\", min = 1}\n",
                          "[vms]\nram_gib = {dist = \"lognormal\", median = 0, sigma = 1}\n",
                          "[vms]\nram_gib = {dist = \"choice\", values = [1, 2], weights = [1]}\n",
                          "[vms]\nram_gib = {dist = \"choice\", values = [1], weights = [0]}\n",
                          "[vms]\nram_gib = {dist = \"uniform\", min = 4, max = 2}\n",
                          "[vms]\nram_gib = {dist = \"uniform\", min = 1, max = 2, typo = 3}\n"}) {
    SCOPED_TRACE(bad);
    EXPECT_FALSE(parse_scenario(bad, "t.toml").ok());
  }
}

TEST(SimDirtyCurve, WorkingSetCurveSaturatesAtTheHotSet) {
  const double r = 100e6, w = 2e9;
  const auto c = working_set_curve(r, w);
  ASSERT_GE(c.size(), 8u);
  EXPECT_NEAR(static_cast<double>(c.front().bytes), r * 0.25, r * 0.25 * 0.01);  // slope r at first
  for (std::size_t i = 1; i < c.size(); ++i) {
    EXPECT_GT(c[i].tau, c[i - 1].tau);
    EXPECT_GE(c[i].bytes, c[i - 1].bytes);
    EXPECT_LE(static_cast<double>(c[i].bytes), w);
  }
  EXPECT_GT(static_cast<double>(c.back().bytes), 0.99 * w);
  EXPECT_TRUE(working_set_curve(0, w).empty());
}

TEST(SimDirtyCurve, AHotSetMakesAFastWriterCheaperToMove) {
  // A 32 GiB VM rewriting 900 MiB/s on 10 GbE. As a constant rate, each
  // pre-copy pass resends 900 MiB per second it took; with a 2 % hot set
  // (D(tau) saturating at ~590 MiB) the passes shrink to the hot set, so
  // the predicted move, which is also the simulated one, is far shorter.
  Scenario s = one_hot_one_idle();
  s.vms = {VmSpec{0, 2.0, 32, 0.9, 900}, VmSpec{1, 1.0}};
  const model::ClusterModel flat = first_model(s);
  s.vm_dirty_wss_frac = Range{0.02, 0.02};
  const model::ClusterModel curved = first_model(s);
  ASSERT_TRUE(flat.vms[0].dirty_curve.empty());
  ASSERT_FALSE(curved.vms[0].dirty_curve.empty());
  EXPECT_EQ(curved.vms[1].dirty_curve.size(), curved.vms[0].dirty_curve.size());
  const auto cost = strategy::make_precopy_cost_model();
  const auto a = cost(flat.vms[0], flat.hosts[0], flat.hosts[1]);
  const auto b = cost(curved.vms[0], curved.hosts[0], curved.hosts[1]);
  ASSERT_TRUE(b.converges) << b.model;
  EXPECT_TRUE(!a.converges || b.total_s < 0.8 * a.total_s) << a.total_s << " vs " << b.total_s;
}

std::string dirty_vm_line(const char* id, std::uint64_t seq, double t_s, double cores, std::uint64_t pages) {
  std::string l = vm_line(id, seq, t_s, cores);
  l.pop_back();  // newline
  l.pop_back();  // closing brace
  return l + ",\"dirty\":{\"src\":\"softdirty\",\"window_ns\":1000000000,\"pages\":" + std::to_string(pages) +
         ",\"page_bytes\":4096,\"curve\":[[500000000," + std::to_string(pages / 2) + "],[1000000000," +
         std::to_string(pages) + "]]}}\n";
}

TEST(SimReplay, RecordedRamAndDirtyReplaceTheDrawnOnes) {
  // "a" reports 4 GiB RAM, 1000 touched bytes and 2560 then 5120 dirty
  // pages per second: the simulated VM has that RAM, the recorded curve,
  // and its dirty rate follows the samples.
  const std::string dir = ::testing::TempDir();
  {
    std::ofstream rec(dir + "/sim-rec-dirty.jsonl");
    rec << dirty_vm_line("a", 1, 1000, 2.0, 2560) << dirty_vm_line("a", 2, 1100, 2.0, 5120);
    std::ofstream sc(dir + "/sim-replay-dirty.toml");
    sc << "[run]\nduration_s = 300\n[cluster]\nhosts = 1\nhost_cpus = 8\nvms_per_host = 1\n"
          "[vms]\ntrace = \"replay\"\nreplay = \"sim-rec-dirty.jsonl\"\nram_gib = [64, 64]\n[step]\nfactor = 1.0\n";
  }
  auto s = load_scenario(dir + "/sim-replay-dirty.toml");
  ASSERT_TRUE(s.ok()) << s.error().message();
  ASSERT_EQ(s->replay.size(), 1u);
  EXPECT_DOUBLE_EQ(s->replay[0].ram_bytes, 4294967296.0);
  ASSERT_EQ(s->replay[0].points.size(), 2u);
  EXPECT_DOUBLE_EQ(s->replay[0].points[0].dirty_bytes_s, 2560.0 * 4096);
  ASSERT_EQ(s->replay[0].dirty_curve.size(), 2u);
  EXPECT_EQ(s->replay[0].dirty_curve[1].bytes, 5120u * 4096);

  struct Rates final : Policy {
    std::string_view name() const noexcept override { return "rates"; }
    Result<std::vector<Move>> decide(const model::ClusterModel& m, const strategy::RoundInputs&) override {
      seen.emplace_back(m.now, m.vms[0]);
      return std::vector<Move>{};
    }
    std::vector<std::pair<model::TimeNs, model::VmState>> seen;
  } p;
  ASSERT_TRUE(run(*s, p).ok());
  ASSERT_FALSE(p.seen.empty());
  const model::VmState& v0 = p.seen.front().second;
  EXPECT_EQ(v0.ram_bytes, 4294967296u);  // not the drawn 64 GiB
  EXPECT_EQ(v0.rss_bytes, 1000u);
  EXPECT_EQ(v0.dirty_curve, s->replay[0].dirty_curve);
  EXPECT_DOUBLE_EQ(v0.dirty_bytes_per_s, 2560.0 * 4096);
  bool later = false;
  for (const auto& [t, v] : p.seen) {
    if (t == model::TimeNs{std::chrono::seconds{100}}) {  // the second sample (the recording spans 101 s)
      EXPECT_DOUBLE_EQ(v.dirty_bytes_per_s, 5120.0 * 4096);
      later = true;
    }
  }
  EXPECT_TRUE(later);
}

TEST(SimHosts, GroupsMakeAHeterogeneousCluster) {
  auto s = parse_scenario(R"(
[cluster]
vms_per_host = 3
groups = [ {count = 2, cpus = 8, link_gbit_s = 1, vms_per_host = 1},
           {count = 1, cpus = 64, mem_gib = 1024, link_gbit_s = 25} ]
[vms]
demand_cores = [2, 2]
[step]
factor = 1.0
)",
                          "t.toml");
  ASSERT_TRUE(s.ok()) << s.error().message();
  EXPECT_EQ(s->hosts, 3);
  const model::ClusterModel m = first_model(*s);
  ASSERT_EQ(m.hosts.size(), 3u);
  EXPECT_EQ(m.hosts[0].cpus, 8u);
  EXPECT_EQ(m.hosts[2].cpus, 64u);
  EXPECT_DOUBLE_EQ(m.hosts[0].link_bw_bytes_per_s, 1e9 / 8);
  EXPECT_DOUBLE_EQ(m.hosts[2].link_bw_bytes_per_s, 25e9 / 8);
  EXPECT_EQ(m.hosts[2].mem_total_bytes, static_cast<std::uint64_t>(1024 * kGiBd));
  std::vector<int> count(3, 0);
  for (const auto& v : m.vms) {
    for (std::size_t h = 0; h < 3; ++h) count[h] += v.host == m.hosts[h].name ? 1 : 0;
  }
  EXPECT_EQ(count, (std::vector<int>{1, 1, 3}));  // the big group inherits vms_per_host = 3
  // Load is per host: one 2-core VM on 8 cores, three on 64.
  EXPECT_NEAR(m.hosts[0].cpu_load_frac, 2.0 / 8, 1e-9);
  EXPECT_NEAR(m.hosts[2].cpu_load_frac, 6.0 / 64, 1e-9);
  EXPECT_FALSE(parse_scenario("[cluster]\nhosts = 5\ngroups = [{count = 2}]\n", "t.toml").ok());
  EXPECT_FALSE(parse_scenario("[cluster]\ngroups = [{cpus = 8}]\n", "t.toml").ok());
  EXPECT_FALSE(parse_scenario("[cluster]\ngroups = [{count = 1, nic = 8}]\n", "t.toml").ok());
}

TEST(SimHosts, ABigHostRelievesSmallOnes) {
  // Two small hot hosts and one big idle one: every vmtide policy moves
  // load to the big host, and the simulator's capacity is per host.
  Scenario s;
  s.hosts = 3;
  s.groups = {Scenario::HostGroup{2, 8, 256, 10, 0}, Scenario::HostGroup{1, 64, 1024, 10, 0}};
  s.duration_s = 600;
  s.step_at_s = 0;
  s.step_factor = 1.0;
  s.vms = {VmSpec{0, 4.0}, VmSpec{0, 3.0}, VmSpec{1, 4.0}, VmSpec{1, 3.0}, VmSpec{2, 4.0}};
  for (const char* policy : {"push", "adaptive"}) {
    SCOPED_TRACE(policy);
    const Metrics m = must_run(s, policy);
    ASSERT_FALSE(m.series.empty());
    EXPECT_LE(m.series.back().max_load, 0.80);  // both small hosts relieved (entropy stays low: 64 vs 8 cores)
    EXPECT_EQ(m.ping_pong, 0);
    ASSERT_GE(m.moves.size(), 2u);
    for (const auto& mv : m.moves) EXPECT_EQ(mv.dst, "h0002");
  }
}

TEST(SimReport, SeedMeansAverageTheRuns) {
  Metrics a, b;
  a.policy = b.policy = "p";
  a.time_to_balance_s = 60;
  a.migrations = 4;
  b.time_to_balance_s = -1;  // never
  b.migrations = 6;
  const auto r = seed_means({{a, b}});
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].runs, 2);
  EXPECT_EQ(r[0].balanced, 1);
  EXPECT_DOUBLE_EQ(r[0].time_to_balance_s, 60);  // over the runs that balanced
  EXPECT_DOUBLE_EQ(r[0].migrations, 5);
  const std::string t = format_mean_table("x", "1-2", r);
  EXPECT_NE(t.find("60(60) 1/2"), std::string::npos) << t;
}

}  // namespace
}  // namespace vmtide::sim
