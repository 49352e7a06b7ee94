// SPDX-License-Identifier: Apache-2.0
// Enforce mode of the controller core with a scripted executor (the
// controller's own logic is under test here; the real back-ends have their
// own tests against libvirt and QEMU): a planned move starts a migration,
// its end is published under the same decision id and feeds the planner's
// cooldown or back-off, no VM ever has two migrations, and migrations found
// running at start are respected.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>

#include "controller.h"
#include "msgs.h"

namespace vmtide::controller {
namespace {

using testsupport::FakeAgent;

model::TimeNs at(double s) { return model::TimeNs{static_cast<std::int64_t>(s * 1e9)}; }

class ScriptedExecutor : public executor::Executor {
 public:
  Result<std::string> start(const executor::MigrationRequest& req) override {
    if (refuse) return make_error(Errc::kIo, "hypervisor refused: " + *refuse);
    requests.push_back(req);
    const std::string h = "h" + std::to_string(requests.size());
    state[h] = executor::Progress{};
    return h;
  }
  Result<executor::Progress> poll(const std::string& h) override {
    auto it = state.find(h);
    if (it == state.end()) return make_error(Errc::kNotFound, "unknown handle " + h);
    return it->second;
  }
  Status abort(const std::string&) override { return {}; }
  void forget(const std::string& h) override { state.erase(h); }
  Result<std::vector<executor::Running>> running() override { return already_running; }
  const char* name() const noexcept override { return "scripted"; }

  void finish(const std::string& h, bool ok) {
    auto& p = state.at(h);
    p.state = ok ? executor::State::kSucceeded : executor::State::kFailed;
    p.total_ms = 4200;
    p.downtime_ms = 12;
    p.bytes = 900ULL << 20;
    p.passes = 5;
    p.setup_ms = 15;
    p.downtime_bytes = 7ULL << 20;  // 7 MiB in 12 ms, 5 of them device state: ~1 GB/s
    if (!ok) p.error = "destination QEMU exited";
  }

  std::vector<executor::MigrationRequest> requests;
  std::map<std::string, executor::Progress> state;
  std::optional<std::string> refuse;
  std::vector<executor::Running> already_running;
};

ControllerConfig enforce_config() {
  ControllerConfig c;
  c.mode = wire::Mode::kEnforce;
  c.model.tau = std::chrono::seconds{2};
  c.planner.hot_sustain = std::chrono::seconds{2};
  c.planner.cold_sustain = std::chrono::seconds{2};
  c.planner.host_hold_down = std::chrono::seconds{0};
  return c;
}

// kvm1 hot, kvm2 idle, 8 CPUs each.
void tick(Controller& ctl, FakeAgent& a, FakeAgent& b, double t) {
  ctl.on_message(a.host_sample(0.95), at(t));
  for (auto [id, cores] : {std::pair{"big", 3.0}, {"mid", 2.0}, {"small", 1.5}, {"tiny", 1.0}}) {
    ctl.on_message(a.vm(id, cores, 0.05, 4ULL << 30, 2000), at(t));
  }
  ctl.on_message(b.host_sample(0.10), at(t));
  ctl.on_message(b.vm("idle", 0.5), at(t));
}

// Runs rounds until one starts (or fails to start) a migration.
std::vector<wire::Decision> until_move(Controller& ctl, FakeAgent& a, FakeAgent& b, double& t) {
  for (; t < 30; t += 1) {
    tick(ctl, a, b, t);
    auto r = ctl.round(at(t));
    EXPECT_TRUE(r);
    std::vector<wire::Decision> moves;
    for (auto& d : *r) {
      if (!d.vm.empty()) moves.push_back(d);
    }
    if (!moves.empty()) return moves;
  }
  return {};
}

// A controller in enforce mode over a scripted executor, with the two fake
// agents of tick() (kvm1 hot, kvm2 idle) and the test's clock. Tests bind
// its members by name: auto& [ex, ctl, a, b, t] = e.
struct Enforcing {
  explicit Enforcing(const ControllerConfig& cfg = enforce_config()) : ctl(cfg, "T") { ctl.set_executor(&ex); }
  ScriptedExecutor ex;  // outlives ctl, which points at it
  Controller ctl;
  FakeAgent a{.host = "kvm1"}, b{.host = "kvm2"};
  double t = 1;
};

TEST(ControllerEnforce, AMoveStartsAMigrationAndItsEndIsPublishedUnderTheSameId) {
  Enforcing e;
  auto& [ex, ctl, a, b, t] = e;
  auto moves = until_move(ctl, a, b, t);
  ASSERT_EQ(moves.size(), 1u);
  EXPECT_EQ(moves[0].outcome, wire::Outcome::kStarted);
  ASSERT_EQ(ex.requests.size(), 1u);
  EXPECT_EQ(ex.requests[0].vm_id, moves[0].vm);
  EXPECT_EQ(ex.requests[0].src, "kvm1");
  EXPECT_EQ(ex.requests[0].dst, "kvm2");
  EXPECT_DOUBLE_EQ(ex.requests[0].downtime_limit_ms, 300.0);
  EXPECT_GE(ex.requests[0].timeout, std::chrono::seconds{60});
  EXPECT_EQ(ctl.in_flight(), 1u);

  // While it runs: the same VM is never started again, whatever the rounds say.
  for (int i = 0; i < 5; ++i) {
    t += 1;
    tick(ctl, a, b, t);
    ASSERT_TRUE(ctl.round(at(t)));
    EXPECT_TRUE(ctl.poll_migrations(at(t)).empty());
  }
  for (const auto& r : ex.requests) {
    if (&r != &ex.requests[0]) {
      EXPECT_NE(r.vm_id, ex.requests[0].vm_id);
    }
  }

  ex.finish("h1", true);
  auto done = ctl.poll_migrations(at(t));
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].id, moves[0].id);
  EXPECT_EQ(done[0].outcome, wire::Outcome::kSucceeded);
  ASSERT_TRUE(done[0].detail);
  EXPECT_NE(done[0].detail->find("actual: 4200 ms total, 12 ms downtime"), std::string::npos) << *done[0].detail;
  EXPECT_EQ(ctl.in_flight(), 0u);
  EXPECT_EQ(ctl.counters().migrations_succeeded, 1u);
  // Online calibration: 900 MiB in 4.2 s is far below the 10 Gbit/s the
  // agents reported, and the next prediction for kvm1 -> kvm2 knows it.
  const auto cal = ctl.calibration().get("kvm1", "kvm2");
  EXPECT_EQ(cal.migrations, 1);
  EXPECT_LT(cal.bw_factor, 0.5);
  // The stop-and-copy rate is learnt from the executor's downtime bytes.
  EXPECT_GT(cal.stop_bytes_per_s, 0.5e9);
  EXPECT_LT(cal.stop_bytes_per_s, 2e9);
  EXPECT_EQ(ctl.calibration().get("kvm2", "kvm1").migrations, 0) << "per direction";
  model::VmState v;
  v.id = "x";
  v.host = "kvm1";
  v.ram_bytes = 4ULL << 30;
  v.rss_bytes = 2ULL << 30;
  model::HostState h1, h2;
  h1.name = "kvm1";
  h2.name = "kvm2";
  h1.cpus = h2.cpus = 8;
  h1.link_bw_bytes_per_s = h2.link_bw_bytes_per_s = 1.25e9;
  const auto nominal = strategy::make_precopy_cost_model()(v, h1, h2);
  const auto learnt = strategy::make_precopy_cost_model({}, &ctl.calibration())(v, h1, h2);
  EXPECT_EQ(learnt.model, "precopy+calibrated");
  EXPECT_GT(learnt.total_s, 2.0 * nominal.total_s);
  // The next round learns it: the VM's cooldown runs from the completion.
  t += 1;
  tick(ctl, a, b, t);
  ASSERT_TRUE(ctl.round(at(t)));
  auto vh = ctl.planner_state().vms.find(moves[0].vm);
  ASSERT_NE(vh, ctl.planner_state().vms.end());
  EXPECT_GT(vh->second.cooldown_until, at(t));
}

// The number after "key": in a flat JSON object.
double json_number(const std::string& json, const std::string& key) {
  const auto at = json.find("\"" + key + "\":");
  if (at == std::string::npos) return -1;
  return std::stod(json.substr(at + key.size() + 3));
}

TEST(ControllerEnforce, AMigrationsOwnDirtyRateCalibratesTheVmsNextPredictions) {
  Enforcing e;
  auto& [ex, ctl, a, b, t] = e;
  auto moves = until_move(ctl, a, b, t);
  ASSERT_EQ(moves.size(), 1u);
  const std::string vm = moves[0].vm;
  const std::string before = ctl.predict_json(vm, at(t));
  const double total_before = json_number(before, "total_s");
  ASSERT_GT(total_before, 0) << before;
  // The telemetry said 2 000 pages/s (a straight line); QEMU's figure over
  // the 3 s to its third sync says 6 000. A figure before the first pass
  // ended (still the setup sync) is not a rate of this guest.
  auto& p = ex.state.at("h1");
  p.passes = 1;
  p.dirty_pages_per_s = 50'000;
  EXPECT_TRUE(ctl.poll_migrations(at(t + 1)).empty());
  tick(ctl, a, b, t + 3);
  p.passes = 3;
  p.dirty_pages_per_s = 6'000;
  EXPECT_TRUE(ctl.poll_migrations(at(t + 3)).empty());
  ex.finish("h1", true);
  auto done = ctl.poll_migrations(at(t + 3));
  ASSERT_EQ(done.size(), 1u);
  ASSERT_TRUE(done[0].detail);
  EXPECT_NE(done[0].detail->find("its next predictions x3.00"), std::string::npos) << *done[0].detail;
  const double now_s = t + 3;
  EXPECT_NEAR(ctl.vm_dirty().factor(vm, now_s), 3.0, 1e-9);
  EXPECT_EQ(ctl.vm_dirty().factor("another", now_s), 1.0);
  const std::string after = ctl.predict_json(vm, at(t + 3));
  EXPECT_GT(json_number(after, "total_s"), total_before) << before << "\n" << after;
  // Ten minutes later the evidence has half its weight: x sqrt(3).
  EXPECT_NEAR(ctl.vm_dirty().factor(vm, now_s + 600), std::sqrt(3.0), 1e-9);
}

TEST(ControllerEnforce, AHotSetsMigrationRateIsComparedOverItsOwnSyncs) {
  // A 4 MiB hot set rewritten 20 000 times a second: the telemetry's curve
  // is ~900 pages at 0.1 s and flat at 1024 from 0.5 s, so its rate over
  // 2 s is 512 pages/s. QEMU's figure is the new pages its syncs found over
  // at least a second: pass 0's 4 s found the set once (256 pages/s), and
  // the next second's ten 100 ms syncs found ~900 each (9 000 pages/s).
  // Both are right; against the 512 they would make the VM x4 dirtier
  // (after the clamp). Over the same syncs the telemetry expects exactly
  // them: nothing to learn.
  Enforcing e;
  auto& [ex, ctl, a, b, t] = e;
  auto moves = until_move(ctl, a, b, t);
  ASSERT_EQ(moves.size(), 1u);
  const std::string vm = moves[0].vm;
  auto report = [&e, &vm](double when) {
    tick(e.ctl, e.a, e.b, when);
    wire::Message m = e.a.vm(vm, 1.0, 0.05, 4ULL << 30, 512);
    auto& dirty = *std::get<wire::VmSample>(m.body).dirty;
    dirty.curve = {{100'000'000, 900}, {500'000'000, 1024}, {2'000'000'000, 1024}};
    e.ctl.on_message(m, at(when));
  };
  auto& p = ex.state.at("h1");
  report(t + 4);
  p.passes = 2;
  p.dirty_pages_per_s = 256;
  EXPECT_TRUE(ctl.poll_migrations(at(t + 4)).empty());
  report(t + 5);
  p.passes = 12;
  p.dirty_pages_per_s = 9'000;
  EXPECT_TRUE(ctl.poll_migrations(at(t + 5)).empty());
  ex.finish("h1", true);
  auto done = ctl.poll_migrations(at(t + 5));
  ASSERT_EQ(done.size(), 1u);
  ASSERT_TRUE(done[0].detail);
  EXPECT_NEAR(ctl.vm_dirty().factor(vm, t + 5), 1.0, 0.01) << *done[0].detail;
}

TEST(ControllerEnforce, AnAutoConvergeMigrationDoesNotCalibrateTheGuestsRate) {
  // The throttle slows the guest: what QEMU measures then is not its rate.
  ControllerConfig cfg = enforce_config();
  cfg.predictor.auto_converge = true;
  Enforcing e(cfg);
  auto& [ex, ctl, a, b, t] = e;
  auto moves = until_move(ctl, a, b, t);
  ASSERT_EQ(moves.size(), 1u);
  auto& p = ex.state.at("h1");
  p.passes = 3;
  p.dirty_pages_per_s = 200;  // a tenth of the telemetry's 2 000
  EXPECT_TRUE(ctl.poll_migrations(at(t)).empty());
  ex.finish("h1", true);
  ASSERT_EQ(ctl.poll_migrations(at(t)).size(), 1u);
  EXPECT_EQ(ctl.vm_dirty().factor(moves[0].vm, t), 1.0);
}

TEST(ControllerEnforce, ASkipWhoseCountdownTicksIsPublishedOnce) {
  // After a move both hosts are in hold-down; every round then skips kvm1
  // "in hold-down for another N s" with a smaller N. Published once, not
  // once a round (the skip says nothing new until its kind changes).
  ControllerConfig cfg = enforce_config();
  cfg.planner.host_hold_down = std::chrono::seconds{120};
  Enforcing e(cfg);
  auto& [ex, ctl, a, b, t] = e;
  ASSERT_EQ(until_move(ctl, a, b, t).size(), 1u);
  ex.finish("h1", true);
  ASSERT_EQ(ctl.poll_migrations(at(t)).size(), 1u);
  std::map<std::string, int> hold_down_skips;  // by host
  int rounds = 0;
  std::string reasons;
  for (; rounds < 20; ++rounds) {
    t += 1;
    tick(ctl, a, b, t);
    auto r = ctl.round(at(t));
    ASSERT_TRUE(r);
    for (const auto& d : *r) {
      if (d.outcome == wire::Outcome::kSkipped && d.reason.find("hold-down") != std::string::npos) {
        ++hold_down_skips[d.src];
        reasons += d.src + ": " + d.reason + "\n";
      }
    }
  }
  // kvm1 (hot, cannot give) and kvm2 (cold, cannot take): once each.
  EXPECT_EQ(hold_down_skips, (std::map<std::string, int>{{"kvm1", 1}, {"kvm2", 1}})) << reasons;
  EXPECT_GE(ctl.counters().repeats_suppressed, 10u);
}

TEST(ControllerEnforce, AFailedMigrationIsPublishedAndBacksOff) {
  Enforcing e;
  auto& [ex, ctl, a, b, t] = e;
  auto moves = until_move(ctl, a, b, t);
  ASSERT_EQ(moves.size(), 1u);
  ex.finish("h1", false);
  auto done = ctl.poll_migrations(at(t));
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].outcome, wire::Outcome::kFailed);
  EXPECT_NE(done[0].detail->find("destination QEMU exited"), std::string::npos);
  t += 1;
  tick(ctl, a, b, t);
  ASSERT_TRUE(ctl.round(at(t)));
  const auto& vh = ctl.planner_state().vms.at(moves[0].vm);
  EXPECT_GE(vh.streak, 2) << "the move and its failure";
  EXPECT_GT(vh.cooldown_until, at(t) + std::chrono::minutes{10});
}

TEST(ControllerEnforce, ARefusedStartIsAFailedDecision) {
  ScriptedExecutor ex;
  ex.refuse = "domain not found";
  Controller ctl(enforce_config(), "T");
  ctl.set_executor(&ex);
  FakeAgent a{.host = "kvm1"}, b{.host = "kvm2"};
  double t = 1;
  auto moves = until_move(ctl, a, b, t);
  ASSERT_EQ(moves.size(), 1u);
  EXPECT_EQ(moves[0].outcome, wire::Outcome::kFailed);
  EXPECT_NE(moves[0].detail->find("not started: "), std::string::npos) << *moves[0].detail;
  EXPECT_NE(moves[0].detail->find("hypervisor refused: domain not found"), std::string::npos) << *moves[0].detail;
  EXPECT_EQ(ctl.in_flight(), 0u);
}

TEST(ControllerEnforce, MigrationsRunningAtStartAreRespected) {
  ScriptedExecutor ex;
  // A previous controller started moving every VM of kvm1 and was killed.
  for (const char* vm : {"big", "mid", "small", "tiny"}) {
    ex.already_running.push_back({vm, "kvm1", "kvm2", std::string("old-") + vm});
    ex.state[std::string("old-") + vm] = executor::Progress{};
  }
  Controller ctl(enforce_config(), "T");
  ctl.set_executor(&ex);
  auto n = ctl.recover_in_flight(at(0));
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 4u);
  EXPECT_EQ(ctl.in_flight(), 4u);
  FakeAgent a{.host = "kvm1"}, b{.host = "kvm2"};
  for (double t = 1; t < 15; t += 1) {
    tick(ctl, a, b, t);
    ASSERT_TRUE(ctl.round(at(t)));
  }
  EXPECT_TRUE(ex.requests.empty()) << "started a second migration of a VM already migrating";
  ex.finish("old-big", true);
  auto done = ctl.poll_migrations(at(15));
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].strategy, "recovered");
  EXPECT_EQ(done[0].outcome, wire::Outcome::kSucceeded);
  EXPECT_EQ(ctl.in_flight(), 3u);
}

}  // namespace
}  // namespace vmtide::controller
