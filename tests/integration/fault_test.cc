// SPDX-License-Identifier: Apache-2.0
// Faults between agents and the controller, with real processes and real
// sockets: the real vmtide-controller (recommend mode) subscribed to two
// fake agents, each a process of its own (fake_agent: the agents' real
// Publisher) with skewed load, so the controller recommends kvm1 -> kvm2.
// Then kvm2 fails — its process killed with -9, or its link cut (the agent
// in a network namespace behind a veth pair, `ip link set down`) — and the
// controller must mark it stale within 3 heartbeats, decide nothing about
// it while it is away (neither on the decision stream nor in a dry-run
// plan), and take it back once it returns: fresh again (a new epoch after a
// restart) and the recommendation onto it made again.
#include <gtest/gtest.h>
#include <net/if.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <zmq.hpp>

#include "agent_process.h"
#include "control_client.h"
#include "vmtide/wire/zmq_io.h"

namespace vmtide {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testsupport::AgentProcess;

// The fake agents' sampling interval, and so their heartbeat period: the
// controller must call a host stale within 3 of these.
constexpr auto kHeartbeat = 300ms;
// What a health query costs on top: the control socket's round trip and
// the 50 ms between our queries.
constexpr auto kQuerySlack = 200ms;

double secs(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

int run(const std::string& cmd) {
  const int st = std::system((cmd + " >/dev/null 2>&1").c_str());
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

// "kvm2" in health.json: {"name":"kvm2","stale":B,...,"epoch":E,...}.
struct HostHealth {
  bool found = false, stale = true;
  std::string epoch;
};
HostHealth host_health(const std::string& health, const std::string& name) {
  HostHealth h;
  const std::regex re("\\{\"name\":\"" + name + "\",\"stale\":(true|false)[^}]*?\"epoch\":([0-9]+)");
  std::smatch m;
  if (std::regex_search(health, m, re)) {
    h.found = true;
    h.stale = m[1] == "true";
    h.epoch = m[2];
  }
  return h;
}

class ControllerFaults : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("vmtide-fault-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    ctl_.reset();
    kvm1_.reset();
    kvm2_.reset();
    if (!netns_.empty()) {
      run("ip link del " + veth_);
      run("ip netns del " + netns_);
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // A fake agent process; `wrap` runs it (e.g. in a network namespace).
  // Returns the endpoint it bound.
  static std::string start_agent(std::optional<AgentProcess>& p, const std::vector<std::string>& wrap,
                                 const std::string& endpoint, const std::string& host, const std::string& load,
                                 const std::vector<std::string>& vms) {
    std::vector<std::string> args = wrap;
    args.push_back(std::string(VMTIDE_BINARY_DIR) + "/tests/integration/fake_agent");
    args.insert(args.end(), {endpoint, host, load, std::to_string(kHeartbeat.count())});
    args.insert(args.end(), vms.begin(), vms.end());
    p.emplace(args);
    auto ep = p->endpoint();
    return ep.value_or("");
  }
  std::string start_kvm2(const std::string& endpoint) {
    return start_agent(kvm2_, kvm2_wrap_, endpoint, "kvm2", "0.10", {"idle:0.5"});
  }

  // Both agents and the controller; waits for the first recommendation
  // kvm1 -> kvm2.
  void start_all() {
    const std::string ep1 =
        start_agent(kvm1_, {}, "tcp://127.0.0.1:*", "kvm1", "0.95", {"big:3", "mid:2", "small:1.5", "tiny:1"});
    ASSERT_FALSE(ep1.empty()) << "fake agent kvm1 did not start: " << kvm1_->log;
    kvm2_endpoint_ = start_kvm2(kvm2_bind_);
    ASSERT_FALSE(kvm2_endpoint_.empty()) << "fake agent kvm2 did not start: " << kvm2_->log;
    const std::string cfg = (dir_ / "controller.toml").string();
    std::ofstream(cfg) << "[controller]\nround_interval = 0.3\nname = \"ctl\"\n"
                       << "[agents]\nendpoints = [\"" << ep1 << "\", \"" << kvm2_endpoint_ << "\"]\n"
                       << "[publish]\nendpoint = \"tcp://127.0.0.1:*\"\n"
                       << "[control]\nendpoint = \"tcp://127.0.0.1:*\"\n"
                       << "[log]\ndecisions = \"" << (dir_ / "decisions.jsonl").string() << "\"\n"
                       // What a cut link loses keeps the host stale for
                       // loss_window after it returns: 2 s, not 30.
                       << "[model]\nsmoothing = 0.5\nmin_stale_after = 0.1\nloss_window = 2\n"
                       << "[balance]\nhot_sustain = 1.0\ncold_sustain = 1.0\n";
    ctl_.emplace(std::vector<std::string>{std::string(VMTIDE_BINARY_DIR) + "/bin/vmtide-controller", "-c", cfg});
    auto m = ctl_->wait_for(std::regex("decisions on (tcp://[0-9.]+:[0-9]+).*control (tcp://[0-9.]+:[0-9]+)"));
    ASSERT_TRUE(m) << "the controller did not start; its log:\n" << ctl_->log;
    control_endpoint_ = (*m)[2];
    sub_.emplace(ctx_, zmq::socket_type::sub);
    sub_->set(zmq::sockopt::subscribe, "vmtide.v1.decision.");
    sub_->connect((*m)[1]);
    ASSERT_TRUE(await_move_onto_kvm2(30s)) << "no recommendation kvm1 -> kvm2 within 30 s; controller log:\n"
                                           << ctl_->log;
  }

  std::string ask(const std::string& request) {
    return testsupport::ask_controller(ctx_, control_endpoint_, request);
  }

  // Decisions that arrived on the stream since the last call.
  std::vector<wire::Decision> drain() {
    std::vector<wire::Decision> got;
    for (;;) {
      auto r = wire::recv_message(*sub_, zmq::recv_flags::dontwait);
      if (!r || !*r) break;
      if (auto* d = std::get_if<wire::Decision>(&(**r).body)) got.push_back(*d);
    }
    return got;
  }
  bool await_move_onto_kvm2(std::chrono::seconds timeout) {
    for (const auto until = Clock::now() + timeout; Clock::now() < until; std::this_thread::sleep_for(50ms)) {
      for (const auto& d : drain()) {
        if (d.outcome == wire::Outcome::kRecommended && d.src == "kvm1" && d.dst == "kvm2") return true;
      }
    }
    return false;
  }

  // The scenario: `fail` takes kvm2 away, `repair` brings it back;
  // `new_epoch` says whether it comes back as a new process.
  void fault_and_recover(const std::function<void()>& fail, const std::function<void()>& repair, bool new_epoch) {
    ASSERT_NO_FATAL_FAILURE(start_all());
    const HostHealth before = host_health(ask("health.json"), "kvm2");
    ASSERT_TRUE(before.found && !before.stale) << ask("health.json");

    fail();
    if (HasFatalFailure()) return;
    const auto t_fail = Clock::now();  // the fault is in effect
    std::string health;
    std::optional<Clock::duration> stale_after;
    for (const auto until = t_fail + 10s; Clock::now() < until && !stale_after; std::this_thread::sleep_for(50ms)) {
      health = ask("health.json");
      if (host_health(health, "kvm2").stale) stale_after = Clock::now() - t_fail;
    }
    ASSERT_TRUE(stale_after) << "kvm2 never turned stale: " << health;
    std::printf("kvm2 stale %.2f s after the fault (3 heartbeats: %.2f s)\n", secs(*stale_after),
                secs(3 * kHeartbeat));
    EXPECT_LE(*stale_after, 3 * kHeartbeat + kQuerySlack) << health;
    EXPECT_NE(health.find("\"name\":\"kvm2\",\"stale\":true,\"stale_reason\":\"silent for"), std::string::npos)
        << health;

    // Away for 10 decision rounds: nothing decided about kvm2, neither
    // published nor in the plan a round would make now. Decisions about
    // kvm1 alone may come (a skip: no target).
    drain();
    int plans = 0;
    for (const auto until = Clock::now() + 3s; Clock::now() < until; std::this_thread::sleep_for(100ms)) {
      for (const auto& d : drain()) {
        EXPECT_NE(d.src, "kvm2") << "decision " << d.id << " about a stale host";
        EXPECT_NE(d.dst, "kvm2") << "decision " << d.id << " onto a stale host";
      }
      const std::string plan = ask("plan.json");
      EXPECT_EQ(plan.find("\"src\":\"kvm2\""), std::string::npos) << plan;
      EXPECT_EQ(plan.find("\"dst\":\"kvm2\""), std::string::npos) << plan;
      EXPECT_NE(plan.find("{\"host\":\"kvm2\",\"reason\":\"stale data"), std::string::npos) << plan;
      EXPECT_TRUE(host_health(ask("health.json"), "kvm2").stale);
      ++plans;
    }
    EXPECT_GE(plans, 10);

    repair();
    if (HasFatalFailure()) return;
    std::optional<Clock::duration> fresh_after;
    HostHealth after;
    const auto t_repair = Clock::now();
    for (const auto until = t_repair + 15s; Clock::now() < until && !fresh_after; std::this_thread::sleep_for(50ms)) {
      health = ask("health.json");
      after = host_health(health, "kvm2");
      if (!after.stale) fresh_after = Clock::now() - t_repair;
    }
    ASSERT_TRUE(fresh_after) << "kvm2 never came back: " << health << "\ncontroller log:\n" << ctl_->log;
    std::printf("kvm2 fresh again %.2f s after the repair (epoch %s -> %s): %s\n", secs(*fresh_after),
                before.epoch.c_str(), after.epoch.c_str(), health.c_str());
    if (new_epoch) {
      EXPECT_NE(after.epoch, before.epoch) << "a restarted agent is a new epoch";
    } else {
      EXPECT_EQ(after.epoch, before.epoch) << "the same process, the same epoch";
    }
    // Decisions again: the move onto kvm2 is planned and published.
    EXPECT_TRUE(await_move_onto_kvm2(20s)) << "no recommendation onto kvm2 after it returned; log:\n" << ctl_->log;
    EXPECT_NE(ask("plan.json").find("\"dst\":\"kvm2\""), std::string::npos);
  }

  zmq::context_t ctx_;
  std::filesystem::path dir_;
  std::optional<AgentProcess> kvm1_, kvm2_, ctl_;
  std::vector<std::string> kvm2_wrap_;  // how kvm2's agent runs (netns)
  std::string kvm2_bind_ = "tcp://127.0.0.1:*";
  std::string kvm2_endpoint_;
  std::string control_endpoint_;
  std::optional<zmq::socket_t> sub_;
  std::string netns_, veth_;
};

TEST_F(ControllerFaults, AgentKilledAndRestarted) {
  fault_and_recover([&] { kvm2_->kill9(); },
                    [&] {
                      // Same endpoint, so the controller's SUB reconnects;
                      // a new process, so a new epoch.
                      ASSERT_EQ(start_kvm2(kvm2_endpoint_), kvm2_endpoint_) << kvm2_->log;
                    },
                    true);
}

TEST_F(ControllerFaults, AgentLinkDownAndUp) {
  if (geteuid() != 0) GTEST_SKIP() << "a network namespace and a veth pair need root";
  // kvm2's agent in a network namespace of its own, reached over a veth
  // pair: 10.254.N.1 (here) <-> 10.254.N.2 (there), N from our pid.
  const std::string tag = std::to_string(getpid() % 100000);
  const std::string net = "10.254." + std::to_string(getpid() % 250 + 1);
  netns_ = "vtfault" + tag;
  veth_ = "vtf" + tag + "h";
  const std::string peer = "vtf" + tag + "a";
  if (run("ip netns add " + netns_) != 0) {
    netns_.clear();
    GTEST_SKIP() << "cannot create a network namespace (ip netns add failed)";
  }
  ASSERT_EQ(run("ip link add " + veth_ + " type veth peer name " + peer + " netns " + netns_), 0);
  ASSERT_EQ(run("ip addr add " + net + ".1/30 dev " + veth_), 0);
  ASSERT_EQ(run("ip link set " + veth_ + " up"), 0);
  ASSERT_EQ(run("ip -n " + netns_ + " addr add " + net + ".2/30 dev " + peer), 0);
  ASSERT_EQ(run("ip -n " + netns_ + " link set " + peer + " up"), 0);
  ASSERT_EQ(run("ip -n " + netns_ + " link set lo up"), 0);
  kvm2_wrap_ = {"/usr/bin/nsenter", "--net=/run/netns/" + netns_, "--"};
  kvm2_bind_ = "tcp://" + net + ".2:*";
  fault_and_recover([&] { ASSERT_EQ(run("ip link set " + veth_ + " down"), 0); },
                    [&] { ASSERT_EQ(run("ip link set " + veth_ + " up"), 0); }, false);
}

}  // namespace
}  // namespace vmtide
