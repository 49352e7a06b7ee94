// SPDX-License-Identifier: Apache-2.0
// The controller core end to end without sockets: agents' messages in,
// decision records out, on a hand-driven clock.
#include "controller.h"

#include <gtest/gtest.h>

#include "msgs.h"

namespace vmtide::controller {
namespace {

using testsupport::FakeAgent;

model::TimeNs at(double s) { return model::TimeNs{static_cast<std::int64_t>(s * 1e9)}; }

ControllerConfig test_config(wire::Mode mode = wire::Mode::kRecommend) {
  ControllerConfig c;
  c.mode = mode;
  c.model.tau = std::chrono::seconds{2};
  c.planner.hot_sustain = std::chrono::seconds{3};
  c.planner.cold_sustain = std::chrono::seconds{3};
  return c;
}

// kvm1 hot (95 %), kvm2 idle (10 %), kvm3 medium (40 %); 8 CPUs each.
struct Cluster {
  FakeAgent a{.host = "kvm1"}, b{.host = "kvm2"}, c{.host = "kvm3"};
  bool b_alive = true;

  void tick(Controller& ctl, double t) {
    ctl.on_message(a.host_sample(0.95), at(t));
    for (auto [id, cores] : {std::pair{"big", 3.0}, {"mid", 2.0}, {"small", 1.5}, {"tiny", 1.0}}) {
      ctl.on_message(a.vm(id, cores, 0.05, 4ULL << 30, 2000), at(t));
    }
    if (b_alive) {
      ctl.on_message(b.host_sample(0.10), at(t));
      ctl.on_message(b.vm("idle", 0.5), at(t));
    }
    ctl.on_message(c.host_sample(0.40), at(t));
    ctl.on_message(c.vm("steady", 3.0), at(t));
  }
};

TEST(ControllerCore, HotHostGetsARecommendedMoveToTheIdleHost) {
  Controller ctl(test_config(), "T");
  Cluster cl;
  std::vector<wire::Decision> got;
  for (int t = 1; t <= 10 && got.empty(); ++t) {
    cl.tick(ctl, t);
    auto r = ctl.round(at(t));
    ASSERT_TRUE(r) << r.error().message();
    for (auto& d : *r) {
      if (d.outcome == wire::Outcome::kRecommended) got.push_back(d);
    }
  }
  ASSERT_EQ(got.size(), 1u);
  const wire::Decision& d = got[0];
  EXPECT_EQ(d.src, "kvm1");
  EXPECT_EQ(d.dst, "kvm2");
  EXPECT_EQ(d.mode, wire::Mode::kRecommend);
  EXPECT_EQ(d.id.rfind("d-T-", 0), 0u) << d.id;
  ASSERT_TRUE(d.predict);
  EXPECT_TRUE(d.predict->converges);
  // 2 GiB touched over 10 Gbit/s: at least 1.7 s.
  EXPECT_GT(d.predict->total_ms, 1700.0);
  EXPECT_FALSE(d.candidates.empty());
  ASSERT_TRUE(d.entropy_before && d.entropy_after);
  EXPECT_GT(*d.entropy_after, *d.entropy_before);
  EXPECT_FALSE(d.reason.empty());
}

TEST(ControllerCore, RecommendModeRepeatsNothingUntilTheRecommendationChanges) {
  Controller ctl(test_config(), "T");
  Cluster cl;
  int recommended = 0;
  for (int t = 1; t <= 30; ++t) {
    cl.tick(ctl, t);
    auto r = ctl.round(at(t));
    ASSERT_TRUE(r);
    for (auto& d : *r) recommended += d.outcome == wire::Outcome::kRecommended ? 1 : 0;
  }
  // Nothing moved, so the same move stays the best: announced once.
  EXPECT_EQ(recommended, 1);
  EXPECT_GT(ctl.counters().repeats_suppressed, 10u);
  // The planner did not start a cooldown for a move nobody made.
  EXPECT_TRUE(ctl.planner_state().vms.empty());
}

TEST(ControllerCore, ObserveModeDecidesNothing) {
  Controller ctl(test_config(wire::Mode::kObserve), "T");
  Cluster cl;
  for (int t = 1; t <= 10; ++t) {
    cl.tick(ctl, t);
    auto r = ctl.round(at(t));
    ASSERT_TRUE(r);
    EXPECT_TRUE(r->empty());
  }
  // ...but the plan a round would make is there for `vmtide plan`.
  auto plan = ctl.dry_run(at(10));
  ASSERT_TRUE(plan);
  EXPECT_EQ(plan->moves.size(), 1u);
}

TEST(ControllerCore, AStaleHostIsNeverChosen) {
  Controller ctl(test_config(), "T");
  Cluster cl;
  for (int t = 1; t <= 2; ++t) cl.tick(ctl, t);
  cl.b_alive = false;  // kvm2, the idle one, goes silent
  int to_kvm3 = 0;
  for (int t = 3; t <= 12; ++t) {
    cl.tick(ctl, t);
    auto r = ctl.round(at(t));
    ASSERT_TRUE(r);
    for (auto& d : *r) {
      EXPECT_NE(d.dst, "kvm2") << "round at " << t << " chose the silent host";
      to_kvm3 += d.dst == "kvm3" ? 1 : 0;
    }
  }
  // The hot host still acts, on the next best target.
  EXPECT_EQ(to_kvm3, 1);
  const std::string health = ctl.health_json(at(12));
  EXPECT_NE(health.find("silent for"), std::string::npos) << health;
}

TEST(ControllerCore, ControlQueriesAnswerInJson) {
  Controller ctl(test_config(), "T");
  Cluster cl;
  for (int t = 1; t <= 5; ++t) {
    cl.tick(ctl, t);
    ASSERT_TRUE(ctl.round(at(t)));
  }
  const std::string plan = ctl.handle_control("plan.json", at(5));
  EXPECT_NE(plan.find("\"decisions\":[{"), std::string::npos) << plan;
  EXPECT_NE(plan.find("\"src\":\"kvm1\""), std::string::npos) << plan;
  const std::string pred = ctl.handle_control("predict.json vm-big", at(5));
  EXPECT_NE(pred.find("\"precopy\":{\"converges\":true"), std::string::npos) << pred;
  EXPECT_NE(pred.find("\"constant_rate\":"), std::string::npos) << pred;
  EXPECT_NE(ctl.handle_control("predict.json nosuch", at(5)).find("\"error\""), std::string::npos);
  // The plain-language forms vmtide plan / predict print.
  const std::string text = ctl.handle_control("plan", at(5));
  // Mean load 0.49 is below the adaptive crossover: Pull acts.
  EXPECT_NE(text.find("1. pull: move vm-big (big) from kvm1 to kvm2"), std::string::npos) << text;
  EXPECT_NE(text.find("why: pull: kvm2 cold"), std::string::npos) << text;
  const std::string ptext = ctl.handle_control("predict vm-big", at(5));
  EXPECT_NE(ptext.find("pre-copy model  converges"), std::string::npos) << ptext;
  EXPECT_NE(ptext.find("constant rate"), std::string::npos) << ptext;
  EXPECT_EQ(ctl.handle_control("predict nosuch", at(5)).rfind("error: no VM", 0), 0u);
  EXPECT_NE(ctl.handle_control("dance", at(5)).find("unknown request"), std::string::npos);
  const std::string health = ctl.handle_control("health.json", at(5));
  EXPECT_NE(health.find("\"name\":\"kvm3\",\"stale\":false"), std::string::npos) << health;
}

}  // namespace
}  // namespace vmtide::controller
