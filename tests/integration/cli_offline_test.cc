// SPDX-License-Identifier: Apache-2.0
// The real `vmtide` binary's offline subcommands: explain on a decision log
// written with decision_log::append (plus a line of garbage), and predict
// for the lab's migration case, checked against bounds from its inputs.
#include <fcntl.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "decision.h"
#include "decision_log.h"

namespace vmtide {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
namespace fs = std::filesystem;

struct Finished {
  int status = -1;  // exit status, or -1 if it did not exit normally
  std::string out;
  std::string err;
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs bin/vmtide with `args`, stdout and stderr to files in `dir`.
Finished vmtide(const fs::path& dir, const std::vector<std::string>& args) {
  const std::string bin = std::string(VMTIDE_BINARY_DIR) + "/bin/vmtide";
  const fs::path out = dir / "stdout", err = dir / "stderr";
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  std::vector<char*> argv{const_cast<char*>(bin.c_str())};
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, bin.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  Finished r;
  if (rc != 0) {
    r.err = "posix_spawn " + bin + " failed: " + std::to_string(rc);
    return r;
  }
  int ws = 0;
  waitpid(pid, &ws, 0);
  r.status = WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

class CliOffline : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "vmtide-cli-test.XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    log_ = dir_ / "decisions.jsonl";
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  wire::Message decision(std::uint64_t seq, wire::Decision d) {
    wire::Message m;
    m.env = wire::Envelope{.host = "ctl1",
                           .epoch = 1'796'000'000'000'000'000,
                           .seq = seq,
                           .ts_ns = 1'796'121'062'000'000'000 + static_cast<std::int64_t>(seq) * 30'000'000'000,
                           .mono_ns = seq * 30'000'000'000};
    m.body = std::move(d);
    return m;
  }

  // Three decisions of one round each, as the controller makes them, and a
  // line a crash or an editor could leave behind.
  void write_log() {
    strategy::Plan plan;
    plan.strategy_reason = "adaptive: mean load 72% is above 60%, so push";
    strategy::PlannedMove web{.trigger = strategy::Trigger::kPush,
                              .vm_id = "0f4c2a9e-5b1d-4c3e-8f70-3a2b1c0d9e8f",
                              .vm_name = "web-3",
                              .src = "kvm1",
                              .dst = "kvm4",
                              .reason = "kvm1 CPU load 92% above the high threshold (80%) for 60 s",
                              .score = 0.0098,
                              .gain = 0.12,
                              .cost = {.total_s = 12.3, .downtime_ms = 45, .bytes = 2'254'857'830, .passes = 6},
                              .entropy_before = 0.71,
                              .entropy_after = 0.83,
                              .candidates = {{"0f4c2a9e-5b1d-4c3e-8f70-3a2b1c0d9e8f", "kvm4", 0.0098, 0.12, 12.3, {}},
                                             {"proc:5120", "kvm4", 0.004, 0.05, 12.5, "downtime above 300 ms"}}};
    ASSERT_TRUE(
        decision_log::append(log_, decision(1, strategy::to_decision(web, plan, wire::Mode::kRecommend, "d-42"))));
    std::ofstream(log_, std::ios::app) << "{\"v\":1,\"kind\":\"decision\",\"id\":\"d-4\n";  // cut short
    strategy::Skipped skip{.trigger = strategy::Trigger::kPull,
                           .host = "kvm2",
                           .reason = "no VM on a loaded host fits kvm2's free memory"};
    plan.entropy_before = 0.83;
    ASSERT_TRUE(
        decision_log::append(log_, decision(2, strategy::to_decision(skip, plan, wire::Mode::kRecommend, "d-43"))));
    strategy::PlannedMove db = web;
    db.vm_id = "proc:5120";
    db.vm_name = "db-1";
    db.dst = "kvm3";
    db.reason = "kvm1 still above the high threshold";
    auto moved = strategy::to_decision(db, plan, wire::Mode::kEnforce, "d-44");
    moved.outcome = wire::Outcome::kSucceeded;
    ASSERT_TRUE(decision_log::append(log_, decision(3, moved)));
  }

  fs::path dir_;
  fs::path log_;
};

TEST_F(CliOffline, ExplainAMove) {
  write_log();
  const Finished r = vmtide(dir_, {"explain", "d-42", "--log", log_.string()});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("Decision d-42 (recommend mode, push, 2026-12-01 10:31:32 UTC): move VM web-3 "
                               "(0f4c2a9e-5b1d-4c3e-8f70-3a2b1c0d9e8f) from kvm1 to kvm4.\n"));
  EXPECT_THAT(r.out, HasSubstr("Why: kvm1 CPU load 92% above the high threshold (80%) for 60 s.\n"));
  EXPECT_THAT(r.out, HasSubstr("Predicted migration: 12.3 s, downtime 45 ms, 2.10 GiB in 6 passes, converges.\n"));
  EXPECT_THAT(r.out, HasSubstr("0.710 -> 0.830 (+0.120)"));
  EXPECT_THAT(r.out, HasSubstr("  1. web-3 -> kvm4  score 0.0098/s (gain +0.120 over 12.3 s)  chosen\n"));
  EXPECT_THAT(r.out, HasSubstr("  2. proc:5120 -> kvm4  score 0.004/s (gain +0.050 over 12.5 s)  rejected: downtime "
                               "above 300 ms\n"));
  // The garbage line is reported, not fatal.
  EXPECT_THAT(r.err, HasSubstr("4 lines read, 1 malformed (line 2: wire_truncated"));
}

TEST_F(CliOffline, ExplainASkipAndTheLast) {
  write_log();
  const Finished skip = vmtide(dir_, {"explain", "--log", log_.string(), "d-43"});
  EXPECT_EQ(skip.status, 0) << skip.err;
  EXPECT_THAT(skip.out, HasSubstr("Decision d-43 (recommend mode, pull, 2026-12-01 10:32:02 UTC): nothing moved for "
                                  "host kvm2 (it is underloaded and would take a VM).\n"
                                  "Why nothing happened: no VM on a loaded host fits kvm2's free memory.\n"));

  const Finished last = vmtide(dir_, {"explain", "--last", "2", "--log", log_.string()});
  EXPECT_EQ(last.status, 0) << last.err;
  const auto d43 = last.out.find("Decision d-43");
  const auto d44 = last.out.find("Decision d-44 (enforce mode, push,");
  ASSERT_NE(d43, std::string::npos) << last.out;
  ASSERT_NE(d44, std::string::npos) << last.out;
  EXPECT_LT(d43, d44);
  EXPECT_THAT(last.out, HasSubstr("Outcome: succeeded: the VM now runs on kvm3.\n"));
  EXPECT_THAT(last.out, Not(HasSubstr("d-42")));

  const Finished one = vmtide(dir_, {"explain", "--last", "--log", log_.string()});
  EXPECT_EQ(one.status, 0) << one.err;
  EXPECT_THAT(one.out, HasSubstr("Decision d-44"));
  EXPECT_THAT(one.out, Not(HasSubstr("Decision d-43")));
}

TEST_F(CliOffline, ExplainExitCodes) {
  write_log();
  const Finished missing_id = vmtide(dir_, {"explain", "d-99", "--log", log_.string()});
  EXPECT_EQ(missing_id.status, 1);
  EXPECT_EQ(missing_id.out, "");
  EXPECT_THAT(missing_id.err, HasSubstr("no decision \"d-99\" in " + log_.string() + ": 4 lines read, 1 malformed"));

  const Finished missing_log = vmtide(dir_, {"explain", "d-42", "--log", (dir_ / "nope.jsonl").string()});
  EXPECT_EQ(missing_log.status, 2);
  EXPECT_THAT(missing_log.err, HasSubstr("cannot read the decision log: not_found"));
  EXPECT_THAT(missing_log.err, HasSubstr("nope.jsonl"));

  const Finished a_directory = vmtide(dir_, {"explain", "--last", "--log", dir_.string()});
  EXPECT_EQ(a_directory.status, 2);

  std::ofstream(dir_ / "empty.jsonl").flush();
  const Finished empty = vmtide(dir_, {"explain", "--last", "3", "--log", (dir_ / "empty.jsonl").string()});
  EXPECT_EQ(empty.status, 1);
  EXPECT_THAT(empty.err, HasSubstr("no decisions in"));
}

// The lab case (docs/predictor.md): 512 MB of RAM all touched, 20 MB/s of
// distinct pages dirtied, 32 MB/s of bandwidth. Bounds from the inputs: pass
// 0 alone takes RAM / bandwidth; with a constant rate R < B the passes shrink
// geometrically, so the total is at most RAM / (B - R) and the bytes at most
// RAM / (1 - R/B); the downtime fits the 300 ms limit plus device state.
TEST_F(CliOffline, PredictTheLabCase) {
  const std::vector<std::string> args = {"predict", "--ram", "512M", "--dirty-rate", "20M", "--bandwidth", "32M"};
  const Finished text = vmtide(dir_, args);
  ASSERT_EQ(text.status, 0) << text.err;
  EXPECT_THAT(text.out, HasSubstr("vmtide (dirty curve)"));
  EXPECT_THAT(text.out, HasSubstr("baseline (constant rate)"));
  EXPECT_THAT(text.out, testing::ContainsRegex("converges +yes +yes"));

  std::vector<std::string> json_args = args;
  json_args.push_back("--json");
  const Finished json = vmtide(dir_, json_args);
  ASSERT_EQ(json.status, 0) << json.err;
  const double ram = 512e6, bw = 32e6, rate = 20e6;
  for (const char* model : {"precopy", "constant_rate"}) {
    SCOPED_TRACE(model);
    const std::regex re(std::string("\"") + model +
                        R"(":\{"converges":(true|false),"total_s":([0-9.e+-]+),"downtime_ms":([0-9.e+-]+),)"
                        R"("bytes":([0-9.e+-]+),"passes":([0-9]+))");
    std::smatch m;
    ASSERT_TRUE(std::regex_search(json.out, m, re)) << json.out;
    EXPECT_EQ(m[1], "true");
    const double total_s = std::stod(m[2]), downtime_ms = std::stod(m[3]), bytes = std::stod(m[4]);
    EXPECT_GE(total_s, ram / bw);
    EXPECT_LE(total_s, ram / (bw - rate) + 1);
    EXPECT_GT(downtime_ms, 0);
    EXPECT_LE(downtime_ms, 300 + 5);
    EXPECT_GE(bytes, ram);
    EXPECT_LE(bytes, ram / (1 - rate / bw));
    EXPECT_GE(std::stoi(m[5]), 2);
  }

  const Finished bad = vmtide(dir_, {"predict", "--ram", "512X", "--dirty-rate", "20M", "--bandwidth", "32M"});
  EXPECT_EQ(bad.status, 2);
  EXPECT_THAT(bad.err, HasSubstr("--ram: \"512X\": unknown unit"));
}

}  // namespace
}  // namespace vmtide
