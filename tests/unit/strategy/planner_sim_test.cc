// SPDX-License-Identifier: Apache-2.0
// Multi-round simulations of the planner: oscillating load without
// ping-pong, maintenance evacuation within the concurrency limits, and a
// randomised cluster in which anti-affinity, stale hosts and exclusion tags
// are never violated.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "planner.h"
#include "scenario.h"

namespace vmtide::strategy {
namespace {

using testing::at_s;
using testing::host;
using testing::kGiB;
using testing::Sim;
using testing::vm;

constexpr double kRoundS = 30.0;

TEST(PlannerSimPingPong, OscillatingLoadNeverBringsAVmBack) {
  // Two hosts; the background load flips between them every flip_rounds.
  struct Case {
    const char* name;
    int flip_rounds;
    std::chrono::nanoseconds no_return_window;
    std::chrono::nanoseconds window;  // a return within this counts as ping-pong
    bool expect_moves;
  };
  const Case cases[] = {
      {"flips faster than the sustain time", 2, std::chrono::hours{1}, std::chrono::hours{1}, false},
      {"flips every 10 min", 20, std::chrono::hours{1}, std::chrono::hours{1}, true},
      {"flips every 100 min", 200, std::chrono::hours{1}, std::chrono::hours{1}, true},
      {"cooldown back-off alone", 20, std::chrono::nanoseconds{0}, std::chrono::minutes{10}, true},
  };
  for (const Case& c : cases) {
    Sim sim;
    sim.model.hosts = {host("a", 0), host("b", 0)};
    for (int i = 0; i < 4; ++i) {
      sim.model.vms.push_back(vm("a" + std::to_string(i), "a", 1.0));
      sim.model.vms.push_back(vm("b" + std::to_string(i), "b", 1.0));
    }
    PlannerConfig cfg;
    cfg.no_return_window = c.no_return_window;
    const auto cost = make_const_dirty_cost_model();
    std::map<std::string, std::map<std::string, model::TimeNs>> left;  // vm -> host -> when it left
    std::map<std::string, model::TimeNs> last_move;
    int moves = 0;
    int returns = 0;
    int early = 0;  // a VM moved again before its base cooldown
    RoundInputs in;
    for (int round = 0; round < 1000; ++round) {
      const bool phase = (round / c.flip_rounds) % 2 == 1;
      sim.background_frac["a"] = phase ? 0.10 : 0.65;
      sim.background_frac["b"] = phase ? 0.65 : 0.10;
      sim.recompute_loads();
      sim.model.now = at_s(kRoundS * round);
      auto r = plan_round(sim.model, cfg, std::move(sim.state), in, cost);
      ASSERT_TRUE(r.ok()) << r.error().message();
      sim.state = std::move(r->state);
      for (const auto& mv : r->plan.moves) {
        ++moves;
        auto& l = left[mv.vm_id];
        if (auto it = l.find(mv.dst); it != l.end() && sim.model.now - it->second < c.window) ++returns;
        l[mv.src] = sim.model.now;
        if (auto it = last_move.find(mv.vm_id);
            it != last_move.end() && sim.model.now - it->second < cfg.vm_cooldown_base) {
          ++early;
        }
        last_move[mv.vm_id] = sim.model.now;
      }
      in = RoundInputs{};
      sim.apply(r->plan, in);
    }
    EXPECT_EQ(returns, 0) << c.name;
    EXPECT_EQ(early, 0) << c.name;
    if (c.expect_moves) {
      EXPECT_GT(moves, 0) << c.name << ": the balancer must still react";
    } else {
      EXPECT_EQ(moves, 0) << c.name;
    }
    // Each flip is a real load change that may move at most every VM once.
    EXPECT_LE(moves, 8 * (1000 / c.flip_rounds + 1)) << c.name;
  }
}

TEST(PlannerSimMaintenance, EvacuatesEveryVmWithinTheLimits) {
  Sim sim;
  sim.model.hosts = {host("m0", 0), host("h1", 0), host("h2", 0), host("h3", 0), host("h4", 0)};
  sim.model.hosts[0].maintenance = true;
  for (int i = 0; i < 10; ++i) {
    sim.model.vms.push_back(vm("m0-vm" + std::to_string(i), "m0", 1.0, 8 * kGiB));
  }
  sim.model.vms[0].anti_affinity_groups = {"ha"};
  sim.model.vms[1].anti_affinity_groups = {"ha"};
  sim.model.vms[2].affinity_group = "pair";
  sim.model.vms[3].affinity_group = "pair";
  for (int h = 1; h <= 4; ++h) {
    const std::string name = "h" + std::to_string(h);
    sim.background_frac[name] = 0.30;
    sim.model.vms.push_back(vm(name + "-vm", name, 1.0));
  }
  sim.model.vms.back().anti_affinity_groups = {"ha"};  // h4 already runs one "ha" member
  sim.recompute_loads();

  PlannerConfig cfg;
  cfg.max_inflight_cluster = 2;
  cfg.max_inflight_per_host = 1;
  const auto cost = make_const_dirty_cost_model();
  // A migration planned in round r is in flight during round r+1 and has
  // landed before round r+2.
  std::vector<PlannedMove> in_flight;
  int rounds = 0;
  auto on_m0 = [&] {
    int n = 0;
    for (const auto& v : sim.model.vms) n += v.host == "m0" ? 1 : 0;
    return n;
  };
  for (; rounds < 200 && (on_m0() > 0 || !in_flight.empty()); ++rounds) {
    sim.model.now = at_s(kRoundS * rounds);
    RoundInputs in;
    for (const auto& mv : in_flight) in.in_flight.push_back(InFlight{mv.vm_id, mv.src, mv.dst});
    auto r = plan_round(sim.model, cfg, std::move(sim.state), in, cost);
    ASSERT_TRUE(r.ok()) << r.error().message();
    sim.state = std::move(r->state);

    std::map<std::string, int> per_host;
    for (const auto& mv : in_flight) {
      ++per_host[mv.src];
      ++per_host[mv.dst];
    }
    for (const auto& mv : r->plan.moves) {
      EXPECT_EQ(mv.trigger, Trigger::kMaintenance);
      EXPECT_NE(mv.dst, "m0");
      ++per_host[mv.src];
      ++per_host[mv.dst];
    }
    EXPECT_LE(in_flight.size() + r->plan.moves.size(), 2u) << "round " << rounds;
    for (const auto& [h, n] : per_host) EXPECT_LE(n, 1) << h << " in round " << rounds;

    // Land the migrations that were in flight, start the new ones.
    Plan landed;
    landed.moves = in_flight;
    RoundInputs ignored;
    sim.apply(landed, ignored);
    in_flight = r->plan.moves;
  }
  EXPECT_EQ(on_m0(), 0) << "evacuation incomplete after " << rounds << " rounds";
  EXPECT_GE(rounds, 10) << "10 VMs through one host slot take at least 10 rounds";
  std::map<std::string, int> ha;
  std::set<std::string> pair_hosts;
  for (const auto& v : sim.model.vms) {
    if (!v.anti_affinity_groups.empty()) {
      EXPECT_EQ(++ha[v.host], 1) << "anti-affinity violated on " << v.host;
    }
    if (v.affinity_group == "pair") pair_hosts.insert(v.host);
  }
  EXPECT_EQ(pair_hosts.size(), 1u) << "the affinity pair re-gathers on one host";
}

TEST(PlannerSimRandomised, AntiAffinityStaleAndExclusionsNeverViolated) {
  std::mt19937 rng(20150301);
  auto frac = [&] { return static_cast<double>(rng() % 1000) / 1000.0; };
  Sim sim;
  const int kHosts = 8;
  for (int h = 0; h < kHosts; ++h) sim.model.hosts.push_back(host("h" + std::to_string(h), 0));
  sim.model.hosts[7].tags = {"vmtide.no-receive"};
  int next = 0;
  // Four anti-affinity groups of five, each member on its own host.
  for (int g = 0; g < 4; ++g) {
    for (int k = 0; k < 5; ++k) {
      auto v = vm("vm" + std::to_string(next++), "h" + std::to_string((g + k) % kHosts), 0.5 + 1.5 * frac());
      v.anti_affinity_groups = {"g" + std::to_string(g)};
      if (k == 0 && g < 2) v.anti_affinity_groups.push_back("both");  // two groups at once
      sim.model.vms.push_back(std::move(v));
    }
  }
  for (int k = 0; k < 28; ++k) {
    auto v = vm("vm" + std::to_string(next++), "h" + std::to_string(rng() % kHosts), 0.5 + 1.5 * frac());
    if (k % 9 == 0) v.tags = {"vmtide.pinned"};
    sim.model.vms.push_back(std::move(v));
  }
  std::map<std::string, std::string> pinned_at;
  for (const auto& v : sim.model.vms) {
    if (!v.tags.empty()) pinned_at[v.id] = v.host;
  }

  PlannerConfig cfg;
  cfg.hot_sustain = std::chrono::seconds{30};
  cfg.cold_sustain = std::chrono::seconds{30};
  cfg.vm_cooldown_base = std::chrono::minutes{1};
  cfg.host_hold_down = std::chrono::seconds{30};
  cfg.no_return_window = std::chrono::minutes{5};
  cfg.max_inflight_cluster = 3;
  const auto cost = make_const_dirty_cost_model();

  auto check_anti = [&](const std::string& when) {
    std::map<std::pair<std::string, std::string>, int> seen;  // (group, host)
    for (const auto& v : sim.model.vms) {
      for (const auto& g : v.anti_affinity_groups) {
        const int n = ++seen[std::make_pair(g, v.host)];
        ASSERT_EQ(n, 1) << "group " << g << " twice on " << v.host << " " << when;
      }
    }
  };
  check_anti("at start");
  int moves = 0;
  RoundInputs in;
  for (int round = 0; round < 2000; ++round) {
    if (round % 10 == 0) {
      for (const auto& h : sim.model.hosts) sim.background_frac[h.name] = 0.6 * frac();
      for (auto& h : sim.model.hosts) h.stale = false;
      sim.model.hosts[rng() % kHosts].stale = true;
    }
    sim.recompute_loads();
    sim.model.now = at_s(kRoundS * round);
    auto r = plan_round(sim.model, cfg, std::move(sim.state), in, cost);
    ASSERT_TRUE(r.ok()) << r.error().message();
    sim.state = std::move(r->state);
    std::set<std::string> stale;
    for (const auto& h : sim.model.hosts) {
      if (h.stale) stale.insert(h.name);
    }
    for (const auto& mv : r->plan.moves) {
      ++moves;
      EXPECT_FALSE(stale.contains(mv.src)) << "round " << round << ": stale source " << mv.src;
      EXPECT_FALSE(stale.contains(mv.dst)) << "round " << round << ": stale target " << mv.dst;
      EXPECT_NE(mv.dst, "h7") << "round " << round << ": no-receive host received " << mv.vm_id;
      EXPECT_FALSE(pinned_at.contains(mv.vm_id)) << "round " << round << ": pinned " << mv.vm_id << " moved";
    }
    in = RoundInputs{};
    sim.apply(r->plan, in);
    check_anti("after round " + std::to_string(round));
    if (::testing::Test::HasFatalFailure()) return;
  }
  EXPECT_GT(moves, 50) << "the scenario must exercise the planner";
}

}  // namespace
}  // namespace vmtide::strategy
