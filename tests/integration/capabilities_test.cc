// SPDX-License-Identifier: Apache-2.0
// Least privilege, checked on the real daemons started as root: once up,
// every thread of vmtide-agent holds only the capabilities docs/security.md
// lists for its configuration (none, or CAP_DAC_OVERRIDE and CAP_SYS_PTRACE
// when it must reset and read another user's soft-dirty bits or QMP
// socket) in its effective, permitted and bounding sets, nothing
// inheritable or ambient — and it still samples: another user's process
// is reported tick after tick, with the BPF I/O block when the probes
// loaded, and no errors. vmtide-controller keeps nothing at all.
#include <gtest/gtest.h>
#include <grp.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "agent_process.h"
#include "bpf_support.h"
#include "capabilities.h"
#include "stream_checks.h"

namespace vmtide {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testsupport::AgentProcess;

// A process of user nobody that spins until killed: a "VM" the agent can
// read only through world-readable /proc files unless it keeps more.
pid_t spawn_nobody_spinner() {
  const pid_t pid = fork();
  if (pid < 0) std::abort();
  if (pid == 0) {
    if (setgroups(0, nullptr) != 0 || setresgid(65534, 65534, 65534) != 0 || setresuid(65534, 65534, 65534) != 0) {
      _exit(1);
    }
    for (;;) asm volatile("" ::: "memory");
  }
  return pid;
}

// Every thread of `pid` holds exactly `want` (effective, permitted and
// bounding), nothing inheritable or ambient.
void expect_every_thread_holds(pid_t pid, std::uint64_t want) {
  int threads = 0;
  for (const auto& t : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task")) {
    const pid_t tid = std::stoi(t.path().filename().string());
    auto s = caps::read(tid);
    ASSERT_TRUE(s) << s.error().message();
    ++threads;
    EXPECT_EQ(s->effective, want) << "thread " << tid << " CapEff: " << caps::names(s->effective);
    EXPECT_EQ(s->permitted, want) << "thread " << tid << " CapPrm: " << caps::names(s->permitted);
    EXPECT_EQ(s->bounding, want) << "thread " << tid << " CapBnd: " << caps::names(s->bounding);
    EXPECT_EQ(s->inheritable, 0u) << "thread " << tid;
    EXPECT_EQ(s->ambient, 0u) << "thread " << tid;
  }
  // The main thread, ZeroMQ's I/O and reaper threads, the metrics server's.
  EXPECT_GE(threads, 3) << "started before its threads, checked after";
}

class LeastPrivilege : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "dropping capabilities is shown by starting the daemons as root";
    dir_ = std::filesystem::temp_directory_path() / ("vmtide-caps-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    if (vm_ > 0) testsupport::kill_and_reap(vm_);
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // Starts the agent with `toml` as its configuration, tracking a process
  // of user nobody; checks it samples it, then the capabilities it holds.
  void agent_keeps(const std::string& toml, std::uint64_t want) {
    vm_ = spawn_nobody_spinner();
    const std::string cfg = (dir_ / "agent.toml").string();
    std::ofstream(cfg) << toml;
    AgentProcess agent({std::string(VMTIDE_BINARY_DIR) + "/bin/vmtide-agent", "-c", cfg, "--endpoint",
                        "tcp://127.0.0.1:*", "--discovery", "procfs", "--pid", std::to_string(vm_), "--interval",
                        "0.2", "--metrics", "127.0.0.1:0"});
    auto ep = agent.endpoint();
    ASSERT_TRUE(ep) << "the agent did not start:\n" << agent.log;
    std::smatch m;
    ASSERT_TRUE(std::regex_search(agent.log, m, std::regex("capabilities after start-up: ([a-z_,]+)")))
        << agent.log;
    EXPECT_EQ(m[1].str(), caps::names(want)) << "what the agent says it kept";
    const bool bpf = agent.log.find("BPF collectors off") == std::string::npos;
    if (static_cast<bool>(bpf::preflight())) {
      EXPECT_TRUE(bpf) << "root can load the probes, so the agent should have:\n" << agent.log;
    }

    testsupport::StreamReader s;
    ASSERT_TRUE(s.limits_ok());
    s.connect(*ep);
    int samples = 0, heartbeats = 0;
    std::uint64_t cpu_ns = 0;
    for (const auto until = Clock::now() + 30s; Clock::now() < until && (samples < 5 || heartbeats < 5);) {
      auto msg = s.next(1000ms);
      if (!msg) continue;
      if (const auto* v = std::get_if<wire::VmSample>(&msg->body); v && v->pid == static_cast<std::uint32_t>(vm_)) {
        ++samples;
        cpu_ns += v->cpu_ns;
        if (bpf) {
          EXPECT_TRUE(v->io) << "the BPF I/O block is missing: are the maps still readable?";
        }
      }
      if (const auto* hb = std::get_if<wire::Heartbeat>(&msg->body); hb && samples > 0) {
        ++heartbeats;
        EXPECT_EQ(hb->errors, 0u) << "sampling failed after the drop; log:\n" << agent.log;
      }
    }
    EXPECT_GE(samples, 5) << "the agent stopped sampling another user's process; log:\n" << agent.log;
    EXPECT_GE(heartbeats, 5);
    EXPECT_GT(cpu_ns, 0u) << "a spinner uses CPU, read from its /proc files";
    expect_every_thread_holds(agent.pid, want);
    EXPECT_EQ(kill(agent.pid, 0), 0) << "the agent died";
  }

  std::filesystem::path dir_;
  pid_t vm_ = -1;
};

TEST_F(LeastPrivilege, AgentWithoutSoftDirtyKeepsNothing) {
  agent_keeps("[collectors]\ndirty = false\n", 0);
}

TEST_F(LeastPrivilege, AgentTalkingToQmpKeepsDacOverrideAndPtrace) {
  agent_keeps("[discovery]\nqmp_sockets = true\n", caps::bit(caps::kDacOverride) | caps::bit(caps::kSysPtrace));
}

TEST_F(LeastPrivilege, ControllerKeepsNothing) {
  const std::string cfg = (dir_ / "controller.toml").string();
  std::ofstream(cfg) << "[controller]\nround_interval = 0.2\nname = \"ctl\"\n"
                     << "[agents]\nendpoints = [\"tcp://127.0.0.1:9\"]\n"
                     << "[publish]\nendpoint = \"tcp://127.0.0.1:*\"\n"
                     << "[control]\nendpoint = \"tcp://127.0.0.1:*\"\n"
                     << "[log]\ndecisions = \"" << (dir_ / "decisions.jsonl").string() << "\"\n";
  AgentProcess ctl({std::string(VMTIDE_BINARY_DIR) + "/bin/vmtide-controller", "-c", cfg});
  auto m = ctl.wait_for(std::regex("decisions on (tcp://[0-9.]+:[0-9]+)"));
  ASSERT_TRUE(m) << "the controller did not start:\n" << ctl.log;
  EXPECT_NE(ctl.log.find("capabilities after start-up: none (bounding set: none)"), std::string::npos) << ctl.log;
  // It still works without them: its decision stream publishes heartbeats.
  testsupport::StreamReader s;
  s.connect((*m)[1]);
  bool hb = false;
  for (const auto until = Clock::now() + 10s; Clock::now() < until && !hb;) {
    auto msg = s.next(500ms);
    hb = msg && std::holds_alternative<wire::Heartbeat>(msg->body);
  }
  EXPECT_TRUE(hb) << ctl.log;
  expect_every_thread_holds(ctl.pid, 0);
}

}  // namespace
}  // namespace vmtide
