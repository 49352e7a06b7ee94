// SPDX-License-Identifier: Apache-2.0
// `vmtide explain`'s text for decisions made the way the controller makes
// them (strategy::to_decision): a move, a skip, and the other outcomes.
#include "explain.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <variant>

#include "decision.h"
#include "samples.h"

namespace vmtide::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kWeb3 = "0f4c2a9e-5b1d-4c3e-8f70-3a2b1c0d9e8f";

wire::Message at_2026_12_01_103102(wire::Decision d) {
  wire::Message m{wire::samples::envelope(7, 0), std::move(d)};
  m.env.host = "ctl1";
  m.env.ts_ns = 1'796'121'062'250'000'000;  // 2026-12-01 10:31:02.25 UTC
  return m;
}

wire::Message move_decision() {
  strategy::PlannedMove move{
      .trigger = strategy::Trigger::kPush,
      .vm_id = kWeb3,
      .vm_name = "web-3",
      .src = "kvm1",
      .dst = "kvm4",
      .reason = "kvm1 CPU load 92% has been above the high threshold (80%) for 60 s",
      .score = 0.0098,
      .gain = 0.12,
      .cost = {.total_s = 12.3, .downtime_ms = 45, .bytes = 2'254'857'830, .passes = 6, .converges = true},
      .entropy_before = 0.71,
      .entropy_after = 0.83,
      .candidates = {{kWeb3, "kvm4", 0.0098, 0.12, 12.3, std::nullopt},
                     {"proc:5120", "kvm4", 0.004, 0.05, 12.5, "predicted downtime 420 ms above the 300 ms limit"},
                     {"b7e1", "", 0, 0, 0, "in cooldown until 10:35:00 after a move"}}};
  strategy::Plan plan;
  plan.strategy_reason = "adaptive: mean load 72% is above 60%, so push";
  return at_2026_12_01_103102(strategy::to_decision(move, plan, wire::Mode::kRecommend, "d-42"));
}

wire::Message skip_decision() {
  strategy::Skipped skipped{.trigger = strategy::Trigger::kPull,
                            .host = "kvm2",
                            .reason = "no VM on a loaded host fits kvm2's free memory",
                            .candidates = {{"proc:7", "kvm2", 0, 0, 0, "needs 16 GiB, kvm2 has 9 GiB free"}}};
  strategy::Plan plan;
  plan.entropy_before = 0.64;
  plan.strategy_reason = "adaptive: mean load 35% is below 60%, so pull";
  return at_2026_12_01_103102(strategy::to_decision(skipped, plan, wire::Mode::kRecommend, "d-43"));
}

wire::Decision& decision_of(wire::Message& m) { return std::get<wire::Decision>(m.body); }

TEST(Explain, Move) {
  EXPECT_EQ(explain_decision(move_decision()),
            "Decision d-42 (recommend mode, push, 2026-12-01 10:31:02 UTC): move VM web-3 "
            "(0f4c2a9e-5b1d-4c3e-8f70-3a2b1c0d9e8f) from kvm1 to kvm4.\n"
            "Outcome: recommended, not carried out (recommend mode: nothing moves until an operator acts).\n"
            "Why: kvm1 CPU load 92% has been above the high threshold (80%) for 60 s.\n"
            "Predicted migration: 12.3 s, downtime 45 ms, 2.10 GiB in 6 passes, converges.\n"
            "Balance (normalised entropy of host loads, 1 = perfectly even): 0.710 -> 0.830 (+0.120).\n"
            "Score: 0.0098 entropy gain per predicted migration second.\n"
            "Strategy this round: adaptive: mean load 72% is above 60%, so push.\n"
            "Candidates considered (best first):\n"
            "  1. web-3 -> kvm4  score 0.0098/s (gain +0.120 over 12.3 s)  chosen\n"
            "  2. proc:5120 -> kvm4  score 0.004/s (gain +0.050 over 12.5 s)  rejected: predicted downtime 420 ms "
            "above the 300 ms limit\n"
            "  3. b7e1  rejected: in cooldown until 10:35:00 after a move\n");
}

TEST(Explain, Skip) {
  EXPECT_EQ(explain_decision(skip_decision()),
            "Decision d-43 (recommend mode, pull, 2026-12-01 10:31:02 UTC): nothing moved for host kvm2 (it is "
            "underloaded and would take a VM).\n"
            "Why nothing happened: no VM on a loaded host fits kvm2's free memory.\n"
            "Balance (normalised entropy of host loads, 1 = perfectly even): 0.640, unchanged.\n"
            "Strategy this round: adaptive: mean load 35% is below 60%, so pull.\n"
            "Candidates considered, none chosen:\n"
            "  1. proc:7 -> kvm2  rejected: needs 16 GiB, kvm2 has 9 GiB free\n");

  wire::Message bare = skip_decision();
  decision_of(bare).candidates.clear();
  decision_of(bare).strategy = "maintenance";
  decision_of(bare).reason = "";
  const std::string text = explain_decision(bare);
  EXPECT_THAT(text, HasSubstr("nothing moved for host kvm2 (it is in maintenance and being evacuated).\n"));
  EXPECT_THAT(text, HasSubstr("Why nothing happened: (none recorded).\n"));
  EXPECT_THAT(text, HasSubstr("No candidate move was found.\n"));
}

TEST(Explain, OutcomesAndModes) {
  wire::Message m = move_decision();
  const auto outcome_line = [&](wire::Mode mode, wire::Outcome outcome) {
    decision_of(m).mode = mode;
    decision_of(m).outcome = outcome;
    const std::string text = explain_decision(m);
    const auto at = text.find("Outcome: ");
    return at == std::string::npos ? std::string() : text.substr(at, text.find('\n', at) - at);
  };
  EXPECT_EQ(outcome_line(wire::Mode::kObserve, wire::Outcome::kRecommended),
            "Outcome: recommended only (observe mode: the controller watches and moves nothing).");
  EXPECT_EQ(outcome_line(wire::Mode::kEnforce, wire::Outcome::kPending),
            "Outcome: pending: accepted, the migration has not started yet.");
  EXPECT_EQ(outcome_line(wire::Mode::kEnforce, wire::Outcome::kStarted),
            "Outcome: started: the live migration is running.");
  EXPECT_EQ(outcome_line(wire::Mode::kEnforce, wire::Outcome::kSucceeded),
            "Outcome: succeeded: the VM now runs on kvm4.");
  EXPECT_THAT(outcome_line(wire::Mode::kEnforce, wire::Outcome::kFailed), HasSubstr("failed"));
  EXPECT_THAT(explain_decision(m), HasSubstr("(enforce mode, push,"));
}

TEST(Explain, PredictionThatDoesNotConverge) {
  wire::Message m = move_decision();
  decision_of(m).predict = wire::Prediction{
      .total_ms = 3'600'000, .bytes = 1 << 30, .passes = 300, .converges = false, .need_bw_bps = 2'500'000'000};
  EXPECT_THAT(explain_decision(m),
              HasSubstr("Predicted migration: does not converge; it would with 2.50 Gbit/s of bandwidth.\n"));
  decision_of(m).predict->need_throttle_pct = 40;
  EXPECT_THAT(explain_decision(m), HasSubstr("with 2.50 Gbit/s of bandwidth or the guest's CPU throttled by 40 %.\n"));
  decision_of(m).predict->need_bw_bps.reset();
  decision_of(m).predict->need_throttle_pct.reset();
  EXPECT_THAT(explain_decision(m), HasSubstr("Predicted migration: does not converge.\n"));
}

TEST(Explain, WithoutOptionalKeys) {
  const std::string text = explain_decision(wire::samples::minimal_decision());
  EXPECT_THAT(text,
              HasSubstr("Decision d-1 (enforce mode, push, 2023-11-14 22:13:32 UTC): move VM proc:1 from a to b.\n"));
  EXPECT_THAT(text, HasSubstr("Outcome: failed"));
  EXPECT_THAT(text, HasSubstr("Why: r.\n"));
  EXPECT_THAT(text, Not(HasSubstr("Predicted")));
  EXPECT_THAT(text, Not(HasSubstr("Balance")));
  EXPECT_THAT(text, Not(HasSubstr("Candidates")));
}

TEST(Explain, NotADecision) {
  EXPECT_EQ(explain_decision(wire::samples::full_hb()), "Not a decision: a \"hb\" message from node1.\n");
}

}  // namespace
}  // namespace vmtide::cli
