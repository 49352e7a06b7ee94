// SPDX-License-Identifier: Apache-2.0
// The agent on a real guest without libvirt: the lab guest (Debian's kernel,
// a dirtier writing a 32 MiB working set at random at 5 000 pages/s) runs in
// qemu-system-x86_64 -accel tcg started by this test with a QMP socket; the
// real agent finds it in /proc (--discovery procfs, qmp_sockets = true) and,
// as this kernel has no soft-dirty, measures its dirty rate with QEMU's
// calc-dirty-rate over that socket. Samples arrive every tick with CPU > 0
// and a dirty rate named "qemu" near the known one; a guest that quits
// leaves the stream; an agent killed with -9 comes back with a new epoch.
// CTest runs it in a PID namespace of its own (in_pid_namespace.sh), so the
// agent sees, and asks, no other QEMU on the machine. Skips, printing why,
// without root, QEMU or the Debian kernel.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "agent_process.h"
#include "qmp.h"
#include "stream_checks.h"
#include "vmtide/wire/zmq_io.h"

namespace vmtide {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr const char* kQemu = "/usr/bin/qemu-system-x86_64";
constexpr const char* kUuid = "3f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0";
constexpr int kWsMib = 32;
constexpr double kRate = 5000;  // pages/s

using testsupport::AgentProcess;

std::string read_all(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

class AgentOnQmp : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (the agent reads other processes' /proc entries)";
    if (access(kQemu, X_OK) != 0) GTEST_SKIP() << kQemu << " not installed (scripts/deps)";
    char tmpl[] = "/tmp/vmtide-agentqmp.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    const std::string build =
        std::string(VMTIDE_SOURCE_DIR) + "/lab/build-guest '" + dir_ + "' > '" + dir_ + "/build-guest.log' 2>&1";
    if (std::system(build.c_str()) != 0) {
      GTEST_SKIP() << "cannot build the lab guest: " << read_all(dir_ + "/build-guest.log");
    }
    if (getpid() != 1) {
      std::printf("note: not in a PID namespace of its own; the agent also sees this host's other QEMUs\n");
    }
  }
  void TearDown() override {
    if (HasFailure() && !dir_.empty()) {
      const std::string console = read_all(dir_ + "/console.log");
      std::printf("guest console (last 1500 bytes):\n%s\nqemu log:\n%s\n",
                  console.substr(console.size() > 1500 ? console.size() - 1500 : 0).c_str(),
                  read_all(dir_ + "/qemu.log").c_str());
    }
    stop_qemu();
    if (!dir_.empty()) std::system(("rm -rf '" + dir_ + "'").c_str());
  }

  // Starts QEMU as a child of this test, its output in qemu.log.
  void start_qemu() {
    // clang-format off: one option and its value per pair
    const std::vector<std::string> args = {kQemu,
                                           "-accel",
                                           "tcg",
                                           "-m",
                                           "256",
                                           "-smp",
                                           "1",
                                           "-nodefaults",
                                           "-display",
                                           "none",
                                           "-no-reboot",
                                           "-name",
                                           "vt-qmp,debug-threads=on",
                                           "-uuid",
                                           kUuid,
                                           "-kernel",
                                           dir_ + "/guest-vmlinuz",
                                           "-initrd",
                                           dir_ + "/guest-initrd.gz",
                                           "-append",
                                           "console=ttyS0 quiet vmtide.ws_mib=" + std::to_string(kWsMib) +
                                               " vmtide.rate=" + std::to_string(static_cast<int>(kRate)) +
                                               " vmtide.fill_mib=64",
                                           "-serial",
                                           "file:" + dir_ + "/console.log",
                                           "-qmp",
                                           "unix:" + qmp_path() + ",server=on,wait=off"};
    // clang-format on
    qemu_ = fork();
    ASSERT_GE(qemu_, 0);
    if (qemu_ == 0) {
      const int log = open((dir_ + "/qemu.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (log >= 0) {
        dup2(log, 1);
        dup2(log, 2);
      }
      std::vector<char*> argv;
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
  }
  // The QEMU this test started, and only it.
  void stop_qemu() {
    if (qemu_ > 0) testsupport::kill_and_reap(qemu_);
    qemu_ = -1;
  }
  std::string qmp_path() const { return dir_ + "/qmp.sock"; }

  // Asks the guest to quit over QMP, retrying while the agent holds the
  // monitor; true once QEMU has exited.
  bool quit_over_qmp() {
    for (auto until = Clock::now() + 20s; Clock::now() < until;) {
      auto c = discovery::QmpClient::connect(qmp_path(), discovery::QmpClock::now() + 2s);
      if (c && c->execute("quit", "", discovery::QmpClock::now() + 2s)) break;
      std::this_thread::sleep_for(100ms);
    }
    for (auto until = Clock::now() + 20s; Clock::now() < until; std::this_thread::sleep_for(50ms)) {
      if (waitpid(qemu_, nullptr, WNOHANG) == qemu_) {
        qemu_ = -1;
        return true;
      }
    }
    return false;
  }

  std::vector<std::string> agent_args() const {
    // --no-bpf: BPF programs see the host's pids, and this test may run in
    // a PID namespace; CPU comes from /proc, the dirty rate from QMP.
    // clang-format off
    return {VMTIDE_BINARY_DIR "/bin/vmtide-agent", "--config", dir_ + "/agent.toml", "--endpoint", "tcp://127.0.0.1:*",
            "--discovery", "procfs", "--interval", "0.5", "--wait-subscriber", "30", "--no-bpf"};
    // clang-format on
  }

  std::string dir_;
  pid_t qemu_ = -1;
};

TEST_F(AgentOnQmp, SamplesQemuDirtyRateStopAndRestart) {
  {
    std::ofstream cfg(dir_ + "/agent.toml");
    cfg << "[discovery]\nqmp_sockets = true\n[collectors]\ndirty_window = 2.0\ndirty_period = 3.0\n"
           "[metrics]\nlisten = \"off\"\n";
  }
  start_qemu();
  // Measure the steady state: the dirtier past its start-up fill (which
  // dirties 64 MiB once).
  bool steady = false;
  for (auto until = Clock::now() + 120s; Clock::now() < until && !steady; std::this_thread::sleep_for(200ms)) {
    steady = read_all(dir_ + "/console.log").find("dirtier: t=2 ") != std::string::npos;
    if (waitpid(qemu_, nullptr, WNOHANG) == qemu_) {
      qemu_ = -1;
      FAIL() << "QEMU exited: " << read_all(dir_ + "/qemu.log");
    }
  }
  ASSERT_TRUE(steady) << "the guest's dirtier never reached its steady state";
  AgentProcess agent(agent_args());
  auto ep = agent.endpoint();
  ASSERT_TRUE(ep) << agent.log;

  testsupport::StreamReader stream;
  ASSERT_TRUE(stream.limits_ok());
  stream.connect(*ep);

  // Samples of the guest every tick (one per heartbeat once it is known),
  // and three dirty measurements.
  int samples = 0, heartbeats = 0, dirty_source_wrong = 0;
  std::vector<wire::Dirty> dirty;
  std::uint64_t epoch = 0;
  auto deadline = Clock::now() + 120s;
  while (Clock::now() < deadline && (samples < 6 || dirty.size() < 3)) {
    auto m = stream.next(1000ms);
    if (!m) continue;
    epoch = m->env.epoch;
    if (std::holds_alternative<wire::Heartbeat>(m->body) && samples > 0) ++heartbeats;
    const auto* v = std::get_if<wire::VmSample>(&m->body);
    if (v == nullptr || v->id != kUuid) continue;
    ++samples;
    EXPECT_EQ(v->name, "vt-qmp");
    EXPECT_EQ(v->ram_bytes, 256ull << 20);
    EXPECT_EQ(v->vcpus, 1u) << "debug-threads=on names the vCPU thread";
    EXPECT_GT(v->cpu_ns, 0u) << "a guest running a dirtier uses CPU every tick";
    if (v->dirty) {
      if (v->dirty->src != wire::DirtySource::kQemu) ++dirty_source_wrong;
      dirty.push_back(*v->dirty);
    }
  }
  ASSERT_GE(samples, 6) << agent.log;
  // A heartbeat closes every tick; each tick since the first sample had one.
  EXPECT_GE(samples, heartbeats) << "a tick without a sample of the guest";
  ASSERT_FALSE(dirty.empty()) << "no dirty-rate measurement within the deadline\n" << agent.log;
  EXPECT_EQ(dirty_source_wrong, 0) << "every hypervisor measurement here is QEMU's";

  // Distinct pages of a uniformly random writer over W pages within tau:
  // W (1 - e^(-r tau / W)), for the nominal rate and for the rate the guest
  // last reported on its console (a loaded TCG guest may fall behind pace).
  const double w = kWsMib * 256.0;
  double actual_rate = kRate;
  {
    static const std::regex re("dirtier: t=[0-9]+ pages=[0-9]+ rate=([0-9]+)");
    const std::string console = read_all(dir_ + "/console.log");
    for (std::sregex_iterator it(console.begin(), console.end(), re), end; it != end; ++it) {
      actual_rate = std::stod((*it)[1].str());
    }
  }
  std::vector<double> pages;
  for (const auto& d : dirty) {
    const double tau = static_cast<double>(d.window_ns) / 1e9;
    const double ideal = w * (1 - std::exp(-kRate * tau / w));
    const double paced = w * (1 - std::exp(-actual_rate * tau / w));
    std::printf(
        "dirty: src=%s window=%.1f s pages=%llu (%.1f MiB/s); random writer ideal %.0f pages at %.0f pages/s, "
        "%.0f at the guest's reported %.0f pages/s\n",
        std::string(wire::dirty_source_name(d.src)).c_str(), tau, static_cast<unsigned long long>(d.pages),
        static_cast<double>(d.pages * d.page_bytes) / tau / (1 << 20), ideal, kRate, paced, actual_rate);
    EXPECT_EQ(d.window_ns, 2'000'000'000u) << "calc-time is the dirty window";
    EXPECT_EQ(d.page_bytes, 4096u);
    pages.push_back(static_cast<double>(d.pages));
  }
  std::sort(pages.begin(), pages.end());
  const double median = pages[pages.size() / 2];
  const double paced = w * (1 - std::exp(-actual_rate * 2.0 / w));
  // Page sampling with 4096 pages per GiB sees ~1 000 pages of this 256 MiB
  // guest and QEMU rounds down to whole MiB/s: a few tens of percent either way.
  EXPECT_GE(median, 0.5 * paced) << "median of " << pages.size() << " measurements";
  EXPECT_LE(median, 1.5 * paced) << "median of " << pages.size() << " measurements";

  // The guest quits: one vm_stopped, then no more samples of it.
  ASSERT_TRUE(quit_over_qmp()) << "QEMU did not quit";
  testsupport::expect_vm_leaves(stream, kUuid, getpid() == 1);

  // kill -9 and restart: the subscriber sees a new epoch, seq from 1.
  agent.kill9();
  AgentProcess again(agent_args());
  auto ep2 = again.endpoint();
  ASSERT_TRUE(ep2) << again.log;
  testsupport::expect_new_epoch(stream, *ep2, epoch);
}

}  // namespace
}  // namespace vmtide
