// SPDX-License-Identifier: Apache-2.0
// The real vmtide-controller against two test publishers over TCP on
// 127.0.0.1 (the agents' own Publisher class: real envelopes, seq, epoch)
// with skewed load: in recommend mode it publishes the expected decision on
// its decision stream and appends it to its log; its control socket answers
// plan and health; malformed messages from a third publisher are counted
// and change nothing; a host that goes silent turns stale.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <zmq.hpp>

#include "agent_process.h"
#include "control_client.h"
#include "fake_host.h"
#include "publisher.h"
#include "vmtide/wire/zmq_io.h"

namespace vmtide {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testsupport::AgentProcess;
using testsupport::FakeHost;

constexpr std::uint64_t kTick = 100'000'000ULL;  // 100 ms: a fast agent

class ControllerStream : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("vmtide-ctl-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
    for (const char* name : {"kvm1", "kvm2"}) {
      auto p = agent::Publisher::create(ctx_, {.endpoint = "tcp://127.0.0.1:*", .host = name, .sndhwm = 10000});
      ASSERT_TRUE(p) << p.error().message();
      hosts_.push_back(FakeHost{std::move(*p)});
    }
    hosts_[0].load = 0.95;
    hosts_[0].vms = {{"big", 3.0}, {"mid", 2.0}, {"small", 1.5}, {"tiny", 1.0}};
    hosts_[1].load = 0.10;
    hosts_[1].vms = {{"idle", 0.5}};
    // A third "agent" that sends garbage.
    bad_.emplace(ctx_, zmq::socket_type::pub);
    bad_->set(zmq::sockopt::linger, 0);
    bad_->bind("tcp://127.0.0.1:*");
    bad_endpoint_ = bad_->get(zmq::sockopt::last_endpoint);

    log_ = (dir_ / "decisions.jsonl").string();
    const std::string cfg = (dir_ / "controller.toml").string();
    std::ofstream(cfg) << "[controller]\nround_interval = 0.3\nname = \"ctl\"\n"
                       << "[agents]\nendpoints = [\"" << hosts_[0].pub->endpoint() << "\", \""
                       << hosts_[1].pub->endpoint() << "\", \"" << bad_endpoint_ << "\"]\n"
                       << "[publish]\nendpoint = \"tcp://127.0.0.1:*\"\n"
                       << "[control]\nendpoint = \"tcp://127.0.0.1:*\"\n"
                       << "[log]\ndecisions = \"" << log_ << "\"\n"
                       << "[model]\nsmoothing = 0.5\nmin_stale_after = 0.5\n"
                       << "[balance]\nhot_sustain = 1.0\ncold_sustain = 1.0\n";
    ctl_.emplace(std::vector<std::string>{std::string(VMTIDE_BINARY_DIR) + "/bin/vmtide-controller", "-c", cfg});
    auto m = ctl_->wait_for(std::regex("decisions on (tcp://[0-9.]+:[0-9]+).*control (tcp://[0-9.]+:[0-9]+)"));
    ASSERT_TRUE(m) << "the controller did not start; its log:\n" << ctl_->log;
    decisions_endpoint_ = (*m)[1];
    control_endpoint_ = (*m)[2];
    sub_.emplace(ctx_, zmq::socket_type::sub);
    sub_->set(zmq::sockopt::subscribe, "vmtide.v1.");
    sub_->connect(decisions_endpoint_);
  }

  void TearDown() override {
    ctl_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // Publishes a tick on every fake host, then reads the decision stream for
  // up to one tick; returns what arrived.
  std::vector<wire::Message> step() {
    for (auto& h : hosts_) h.tick();
    std::vector<wire::Message> got;
    const auto until = Clock::now() + std::chrono::nanoseconds{kTick};
    while (Clock::now() < until) {
      zmq::pollitem_t item{sub_->handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, 20ms);
      if (!(item.revents & ZMQ_POLLIN)) continue;
      auto r = wire::recv_message(*sub_, zmq::recv_flags::dontwait);
      if (r && *r) got.push_back(std::move(**r));
    }
    return got;
  }

  // Runs a shell command; its exit status and combined output.
  static std::pair<int, std::string> run(const std::string& cmd) {
    FILE* p = popen((cmd + " 2>&1").c_str(), "r");
    if (p == nullptr) return {-1, "popen failed"};
    std::string out;
    char buf[4096];
    while (std::size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
    const int st = pclose(p);
    return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
  }

  // Keeps the fake agents publishing while it lives: a host silent for
  // min_stale_after (0.5 s) turns stale and its VMs expire, and the checks
  // after a decision (five CLI runs) take seconds under a sanitizer or on a
  // loaded machine. The test must not touch hosts_ meanwhile.
  class KeepTicking {
   public:
    explicit KeepTicking(std::vector<FakeHost>& hosts)
        : thread_([&hosts, this] {
            while (!stop_.load()) {
              for (auto& h : hosts) h.tick();
              std::this_thread::sleep_for(std::chrono::nanoseconds{kTick});  // the agents' pace
            }
          }) {}
    ~KeepTicking() {
      stop_.store(true);
      thread_.join();
    }
    KeepTicking(const KeepTicking&) = delete;
    KeepTicking& operator=(const KeepTicking&) = delete;

   private:
    std::atomic<bool> stop_{false};
    std::thread thread_;
  };

  std::string ask(const std::string& request) {
    return testsupport::ask_controller(ctx_, control_endpoint_, request);
  }

  zmq::context_t ctx_;
  std::filesystem::path dir_;
  std::vector<FakeHost> hosts_;
  std::optional<zmq::socket_t> bad_;
  std::string bad_endpoint_;
  std::string log_;
  std::optional<AgentProcess> ctl_;
  std::string decisions_endpoint_, control_endpoint_;
  std::optional<zmq::socket_t> sub_;
};

TEST_F(ControllerStream, RecommendsTheExpectedMoveAndLogsIt) {
  std::optional<wire::Decision> decision;
  const auto deadline = Clock::now() + 30s;
  while (!decision && Clock::now() < deadline) {
    for (auto& m : step()) {
      if (auto* d = std::get_if<wire::Decision>(&m.body); d && d->outcome == wire::Outcome::kRecommended) {
        decision = *d;
        EXPECT_EQ(m.env.host, "ctl");
      }
    }
  }
  ASSERT_TRUE(decision) << "no decision within 30 s; controller log:\n" << ctl_->log;
  const KeepTicking agents(hosts_);
  EXPECT_EQ(decision->mode, wire::Mode::kRecommend);
  EXPECT_EQ(decision->src, "kvm1");
  EXPECT_EQ(decision->dst, "kvm2");
  // Equal cost for every VM (same RAM and dirty rate): the biggest demand
  // balances best, 0.95 - 3/8 vs 0.10 + 3/8.
  EXPECT_EQ(decision->vm, "big");
  ASSERT_TRUE(decision->predict);
  EXPECT_TRUE(decision->predict->converges);
  EXPECT_FALSE(decision->candidates.empty());

  // The same record, as one JSON line, in the log.
  std::ifstream in(log_);
  std::string line, found;
  while (std::getline(in, line)) {
    if (line.find("\"id\":\"" + decision->id + "\"") != std::string::npos) found = line;
  }
  ASSERT_FALSE(found.empty()) << "decision " << decision->id << " not in " << log_;
  EXPECT_NE(found.find("\"kind\":\"decision\""), std::string::npos);
  EXPECT_NE(found.find("\"vm\":\"big\""), std::string::npos);

  // vmtide plan's query: the next round would do the same.
  const std::string plan = ask("plan.json");
  EXPECT_NE(plan.find("\"vm\":\"big\""), std::string::npos) << plan;
  const std::string health = ask("health.json");
  EXPECT_NE(health.find("\"name\":\"kvm1\",\"stale\":false"), std::string::npos) << health;
  EXPECT_NE(health.find("\"name\":\"kvm2\",\"stale\":false"), std::string::npos) << health;

  // The operator's view of the same: `vmtide explain` on the logged
  // decision, `vmtide plan` and `vmtide predict --vm` live.
  const std::string cli = std::string(VMTIDE_BINARY_DIR) + "/bin/vmtide";
  const auto [ex_rc, ex_out] = run(cli + " explain " + decision->id + " --log " + log_);
  EXPECT_EQ(ex_rc, 0) << ex_out;
  EXPECT_NE(ex_out.find(decision->id), std::string::npos) << ex_out;
  EXPECT_NE(ex_out.find("vm-big"), std::string::npos) << ex_out;
  EXPECT_NE(ex_out.find("from kvm1 to kvm2"), std::string::npos) << ex_out;
  const auto [plan_rc, plan_out] = run(cli + " plan --controller " + control_endpoint_);
  EXPECT_EQ(plan_rc, 0) << plan_out;
  EXPECT_NE(plan_out.find("move vm-big (big) from kvm1 to kvm2"), std::string::npos) << plan_out;
  EXPECT_NE(plan_out.find("predicted"), std::string::npos) << plan_out;
  const auto [pred_rc, pred_out] = run(cli + " predict --vm vm-big --controller " + control_endpoint_);
  EXPECT_EQ(pred_rc, 0) << pred_out;
  EXPECT_NE(pred_out.find("pre-copy model  converges"), std::string::npos) << pred_out;
  const auto [bad_rc, bad_out] = run(cli + " predict --vm nosuch --controller " + control_endpoint_);
  EXPECT_EQ(bad_rc, 1) << bad_out;
  EXPECT_NE(bad_out.find("no VM named"), std::string::npos) << bad_out;
  const auto [down_rc, down_out] = run(cli + " plan --timeout 1 --controller tcp://127.0.0.1:1");
  EXPECT_EQ(down_rc, 2) << down_out;
  EXPECT_NE(down_out.find("is vmtide-controller running?"), std::string::npos) << down_out;
}

TEST_F(ControllerStream, MalformedMessagesAreCountedAndChangeNothing) {
  // Let the controller's SUB connect to the bad publisher: wait for the
  // first heartbeat of the decision stream.
  std::optional<wire::Heartbeat> hb;
  for (int i = 0; i < 100 && !hb; ++i) {
    for (auto& m : step()) {
      if (auto* h = std::get_if<wire::Heartbeat>(&m.body)) hb = *h;
    }
  }
  ASSERT_TRUE(hb) << ctl_->log;
  const std::uint64_t before = hb->errors;
  // Garbage under valid topics: not msgpack, wrong kind, three frames.
  const auto deadline = Clock::now() + 20s;
  std::uint64_t errors = before;
  while (errors < before + 3 && Clock::now() < deadline) {
    bad_->send(zmq::str_buffer("vmtide.v1.vm.evil"), zmq::send_flags::sndmore);
    bad_->send(zmq::str_buffer("\xc1garbage"));
    bad_->send(zmq::str_buffer("vmtide.v1.host.evil"), zmq::send_flags::sndmore);
    bad_->send(zmq::str_buffer("x"), zmq::send_flags::sndmore);
    bad_->send(zmq::str_buffer("y"));
    for (auto& m : step()) {
      if (auto* h = std::get_if<wire::Heartbeat>(&m.body)) errors = h->errors;
    }
  }
  EXPECT_GE(errors, before + 3) << "the controller did not count malformed input; its log:\n" << ctl_->log;
  EXPECT_EQ(kill(ctl_->pid, 0), 0) << "the controller died";
  // The evil host never entered the model.
  const std::string health = ask("health.json");
  EXPECT_EQ(health.find("evil"), std::string::npos) << health;
  EXPECT_NE(health.find("kvm1"), std::string::npos) << health;
}

TEST_F(ControllerStream, ASilentHostTurnsStale) {
  for (int i = 0; i < 20; ++i) step();
  ASSERT_NE(ask("health.json").find("\"name\":\"kvm2\",\"stale\":false"), std::string::npos);
  hosts_[1].alive = false;
  std::string health;
  const auto deadline = Clock::now() + 10s;
  while (Clock::now() < deadline) {
    step();
    health = ask("health.json");
    if (health.find("\"name\":\"kvm2\",\"stale\":true") != std::string::npos) break;
  }
  EXPECT_NE(health.find("\"name\":\"kvm2\",\"stale\":true,\"stale_reason\":\"silent for"), std::string::npos)
      << health;
  // Nothing is ever planned onto it.
  EXPECT_EQ(ask("plan.json").find("\"dst\":\"kvm2\""), std::string::npos);
}

}  // namespace
}  // namespace vmtide
