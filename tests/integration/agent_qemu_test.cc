// SPDX-License-Identifier: Apache-2.0
// The agent on a real guest: the lab guest (Debian's kernel, a dirtier
// writing a 32 MiB working set at random at 5 000 pages/s) runs under QEMU
// TCG in a private libvirtd; the real agent discovers it through libvirt
// and streams over TCP. Samples arrive with CPU > 0 and a plausible dirty
// rate (libvirt's estimate, as this kernel may lack soft-dirty); a stopped
// guest leaves the stream; an agent killed with -9 comes back with a new
// epoch. Skips, printing why, without root, the Debian kernel or libvirtd.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdlib>
#include <map>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <zmq.hpp>

#include "agent_process.h"
#include "bpf_support.h"
#include "libvirtd_fixture.h"
#include "stream_checks.h"
#include "vmtide/wire/zmq_io.h"

namespace vmtide {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr const char* kUuid = "9c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d";
constexpr int kWsMib = 32;
constexpr double kRate = 5000;  // pages/s

using testsupport::AgentProcess;

class AgentOnQemu : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "a private libvirtd needs root (mount namespace)";
    if (access("/usr/sbin/libvirtd", X_OK) != 0) GTEST_SKIP() << "libvirtd not installed (scripts/deps)";
    char tmpl[] = "/tmp/vmtide-agentqemu.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    const std::string build = std::string(VMTIDE_SOURCE_DIR) + "/lab/build-guest '" + dir_ + "' > '" + dir_ +
                              "/build-guest.log' 2>&1";
    if (std::system(build.c_str()) != 0) {
      std::ifstream log(dir_ + "/build-guest.log");
      std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
      GTEST_SKIP() << "cannot build the lab guest: " << text;
    }
    daemon_ = std::make_unique<testsupport::Libvirtd>(dir_);
    if (!daemon_->start()) GTEST_SKIP() << "libvirtd did not start; its log:\n" << daemon_->log_tail();
    conn_ = virConnectOpen(daemon_->uri().c_str());
    ASSERT_NE(conn_, nullptr);
  }
  void TearDown() override {
    if (HasFailure()) {
      std::ifstream console(dir_ + "/console.log");
      std::string text((std::istreambuf_iterator<char>(console)), std::istreambuf_iterator<char>());
      std::printf("guest console (last 1500 bytes):\n%s\n", text.substr(text.size() > 1500 ? text.size() - 1500 : 0).c_str());
    }
    if (dom_ != nullptr) {
      virDomainDestroy(dom_);
      virDomainFree(dom_);
    }
    if (conn_ != nullptr) virConnectClose(conn_);
    daemon_.reset();
    if (!dir_.empty()) std::system(("rm -rf '" + dir_ + "'").c_str());
  }

  bool start_guest() {
    const std::string xml =
        "<domain type='qemu'><name>vt-agent</name><uuid>" + std::string(kUuid) +
        "</uuid><memory unit='MiB'>256</memory><vcpu>1</vcpu>"
        "<os><type arch='x86_64' machine='pc'>hvm</type><kernel>" + dir_ + "/guest-vmlinuz</kernel><initrd>" +
        dir_ + "/guest-initrd.gz</initrd><cmdline>console=ttyS0 quiet vmtide.ws_mib=" + std::to_string(kWsMib) +
        " vmtide.rate=" + std::to_string(static_cast<int>(kRate)) + " vmtide.fill_mib=64</cmdline></os>"
        "<devices><emulator>/usr/bin/qemu-system-x86_64</emulator><serial type='file'><source path='" + dir_ +
        "/console.log'/></serial></devices></domain>";
    dom_ = virDomainCreateXML(conn_, xml.c_str(), 0);
    return dom_ != nullptr;
  }

  std::vector<std::string> agent_args() const {
    std::vector<std::string> a = {VMTIDE_BINARY_DIR "/bin/vmtide-agent", "--config", dir_ + "/agent.toml",
                                  "--endpoint", "tcp://127.0.0.1:*", "--discovery", "libvirt",
                                  "--libvirt-uri", daemon_->uri(), "--interval", "0.5", "--wait-subscriber", "30"};
    if (!bpf::preflight()) a.push_back("--no-bpf");
    return a;
  }

  std::string dir_;
  std::unique_ptr<testsupport::Libvirtd> daemon_;
  virConnectPtr conn_ = nullptr;
  virDomainPtr dom_ = nullptr;
};

TEST_F(AgentOnQemu, SamplesDirtyRateStopAndRestart) {
  {
    std::ofstream cfg(dir_ + "/agent.toml");
    cfg << "[collectors]\ndirty_window = 2.0\ndirty_period = 3.0\n[metrics]\nlisten = \"off\"\n";
  }
  ASSERT_TRUE(start_guest()) << "libvirt refused the guest:\n" << daemon_->log_tail();
  // Measure the steady state: wait until the guest's console shows the
  // dirtier past its start-up fill (which dirties 64 MiB once).
  bool steady = false;
  for (auto until = Clock::now() + 120s; Clock::now() < until && !steady; std::this_thread::sleep_for(200ms)) {
    std::ifstream console(dir_ + "/console.log");
    std::string text((std::istreambuf_iterator<char>(console)), std::istreambuf_iterator<char>());
    steady = text.find("dirtier: t=2 ") != std::string::npos;
  }
  ASSERT_TRUE(steady) << "the guest's dirtier never reached its steady state";
  AgentProcess agent(agent_args());
  auto ep = agent.endpoint();
  ASSERT_TRUE(ep) << agent.log;

  testsupport::StreamReader stream;
  ASSERT_TRUE(stream.limits_ok());
  stream.connect(*ep);

  // Samples for the guest: CPU every tick, and a dirty measurement.
  int samples = 0;
  std::optional<wire::Dirty> dirty;
  std::uint64_t epoch = 0;
  auto deadline = Clock::now() + 120s;
  while (Clock::now() < deadline && (samples < 6 || !dirty)) {
    auto m = stream.next(1000ms);
    if (!m) continue;
    epoch = m->env.epoch;
    const auto* v = std::get_if<wire::VmSample>(&m->body);
    if (v == nullptr || v->id != kUuid) continue;
    ++samples;
    EXPECT_EQ(v->name, "vt-agent");
    EXPECT_EQ(v->ram_bytes, 256ull << 20);
    EXPECT_EQ(v->vcpus, 1u);
    EXPECT_GT(v->cpu_ns, 0u) << "a guest running a dirtier uses CPU every tick";
    if (v->dirty && !dirty) dirty = v->dirty;
  }
  ASSERT_GE(samples, 6) << agent.log;
  ASSERT_TRUE(dirty) << "no dirty-rate measurement within the deadline";
  // Distinct pages of a uniformly random writer over W pages within tau:
  // W (1 - e^(-r tau / W)). Page sampling is noisy and a loaded TCG guest may
  // fall behind its pace, so: at least a fifth of that, at most the working
  // set plus the guest kernel's own writes.
  const double w = kWsMib * 256.0, tau = static_cast<double>(dirty->window_ns) / 1e9;
  const double expect = w * (1 - std::exp(-kRate * tau / w));
  std::printf("dirty: src=%s window=%.1f s pages=%llu (random writer ideal %.0f)\n",
              std::string(wire::dirty_source_name(dirty->src)).c_str(), tau,
              static_cast<unsigned long long>(dirty->pages), expect);
  EXPECT_GE(static_cast<double>(dirty->pages), 0.2 * expect);
  EXPECT_LE(static_cast<double>(dirty->pages), 1.5 * w);

  // The guest stops: one vm_stopped, then no more samples of it.
  ASSERT_EQ(virDomainDestroy(dom_), 0);
  virDomainFree(dom_);
  dom_ = nullptr;
  testsupport::expect_vm_leaves(stream, kUuid, true);

  // kill -9 and restart: the subscriber sees a new epoch, seq from 1.
  agent.kill9();
  AgentProcess again(agent_args());
  auto ep2 = again.endpoint();
  ASSERT_TRUE(ep2) << again.log;
  testsupport::expect_new_epoch(stream, *ep2, epoch);
}

}  // namespace
}  // namespace vmtide
