// SPDX-License-Identifier: Apache-2.0
// The controller killed with -9 in the middle of a migration it decided,
// on the lab (lab/hosts up 2: two libvirtd "hosts" in namespaces). The real
// vmtide-controller in enforce mode with the libvirt executor, fed by two
// fake agent processes that report lab1 hot with the lab guest on it and
// lab2 cool, decides to move the guest and starts a real, bandwidth-capped
// live migration; the test kills the controller as soon as that decision
// is published, while libvirt's job runs, and starts it again. The new
// controller must adopt the running migration (from libvirt's job state)
// before it decides anything, and never start a second one for the guest:
// the migration completes once, the guest ends running on lab2 only (and
// alive), and the decision log holds exactly one "started" for it, from
// the first controller, and one "succeeded", from the second. Skips,
// printing why, without root, libvirtd, QEMU or the guest's kernel.
#include <gtest/gtest.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "agent_process.h"
#include "decision_log.h"
#include "lab_guest.h"
#include "libvirtd_fixture.h"
#include "stream_checks.h"

namespace vmtide {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testsupport::AgentProcess;

constexpr const char* kName = "vt-ctl";
constexpr const char* kUuid = "7a2b3c4d-5e6f-4a1b-9c2d-3e4f5a6b7c8d";
// Slow enough that the controller's restart falls inside it: about 90 MiB
// to send (64 MiB filled, a 16 MiB working set rewritten at 500 pages/s,
// which the fake agent reports: 1 000 pages per 2 s window)
// at 8 MiB/s, some 12 s.
constexpr double kBandwidthBytesPerS = 8.0 * 1024 * 1024;

int lab_id() {
  const char* e = std::getenv("VMTIDE_TEST_CTL_LAB_ID");
  return e != nullptr ? std::atoi(e) : 78;  // not ExecutorOnLab's 77
}

class ControllerOnLab : public ::testing::Test {
 protected:
  void SetUp() override {
    virSetErrorFunc(nullptr, [](void*, virErrorPtr) {});  // lookups fail on purpose
    if (geteuid() != 0) GTEST_SKIP() << "the lab needs root (namespaces, bridge, cgroups)";
    for (const char* tool : {"/usr/sbin/libvirtd", "/usr/bin/qemu-system-x86_64", "/usr/bin/virsh"}) {
      if (access(tool, X_OK) != 0) GTEST_SKIP() << tool << " not installed (scripts/deps)";
    }
    char tmpl[] = "/tmp/vmtide-ctllab.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    const std::string build =
        std::string(VMTIDE_SOURCE_DIR) + "/lab/build-guest '" + dir_ + "' > '" + dir_ + "/build-guest.log' 2>&1";
    if (std::system(build.c_str()) != 0) {
      GTEST_SKIP() << "cannot build the lab guest: " << testsupport::read_all(dir_ + "/build-guest.log");
    }
    lab_ = std::make_unique<testsupport::LabHosts>(lab_id(), dir_ + "/lab.log");
    const auto t0 = Clock::now();
    if (!lab_->up(2)) GTEST_SKIP() << "lab/hosts up 2 failed:\n" << lab_->log_tail();
    std::printf("lab/hosts up 2: %.1f s\n", std::chrono::duration<double>(Clock::now() - t0).count());
    for (int i : {1, 2}) {
      conn_[i] = virConnectOpen(lab_->uri(i).c_str());
      ASSERT_NE(conn_[i], nullptr) << lab_->uri(i) << ": " << virGetLastErrorMessage();
    }
    // The guest on lab1, its dirtier past the start-up fill.
    const std::string xml = testsupport::lab_guest_xml(
        kName, kUuid, 256, dir_, console(), "vmtide.ws_mib=16 vmtide.rate=500 vmtide.pattern=random vmtide.fill_mib=64");
    virDomainPtr d = virDomainDefineXML(conn_[1], xml.c_str());
    ASSERT_NE(d, nullptr) << virGetLastErrorMessage();
    const int rc = virDomainCreate(d);
    virDomainFree(d);
    ASSERT_EQ(rc, 0) << virGetLastErrorMessage();
    ASSERT_TRUE(await_heartbeat(2, 120s)) << "the guest's dirtier never reached its steady state";
  }
  void TearDown() override {
    if (HasFailure() && !dir_.empty()) {
      const std::string c = testsupport::read_all(console());
      std::printf("guest console (last 1500 bytes):\n%s\n", c.substr(c.size() > 1500 ? c.size() - 1500 : 0).c_str());
      if (lab_) std::printf("lab log:\n%s\n", lab_->log_tail().c_str());
      for (auto* l : {&ctl1_log_, &ctl2_log_}) std::printf("controller log:\n%s\n", l->c_str());
    }
    ctl_.reset();
    lab1_.reset();
    lab2_.reset();
    for (virConnectPtr& c : conn_) {
      if (c != nullptr) virConnectClose(c);
      c = nullptr;
    }
    lab_.reset();  // lab/hosts down: every domain, daemon, namespace, cgroup
    if (!dir_.empty()) std::system(("rm -rf '" + dir_ + "'").c_str());
  }

  std::string console() const { return dir_ + "/console.log"; }
  bool await_heartbeat(int t, std::chrono::seconds timeout) const {
    for (auto until = Clock::now() + timeout; Clock::now() < until; std::this_thread::sleep_for(200ms)) {
      if (testsupport::last_heartbeat(testsupport::read_all(console())) >= t) return true;
    }
    return false;
  }
  // The guest's libvirt state on host i: -1 when not defined there.
  int state_on(int i) { return testsupport::domain_state(conn_[i], kUuid); }
  // Bytes lab1's migration job for the guest has sent; nullopt when there
  // is no such job.
  std::optional<unsigned long long> migrating_out() {
    virDomainPtr d = virDomainLookupByUUIDString(conn_[1], kUuid);
    if (d == nullptr) return std::nullopt;
    virDomainJobInfo info{};
    const bool active = virDomainGetJobInfo(d, &info) == 0 && info.type != VIR_DOMAIN_JOB_NONE;
    virDomainFree(d);
    if (!active) return std::nullopt;
    return info.dataProcessed;
  }

  void start_controller() {
    ctl_.emplace(std::vector<std::string>{std::string(VMTIDE_BINARY_DIR) + "/bin/vmtide-controller", "-c", cfg_});
  }

  std::string dir_;
  std::unique_ptr<testsupport::LabHosts> lab_;
  virConnectPtr conn_[3] = {nullptr, nullptr, nullptr};
  std::optional<AgentProcess> lab1_, lab2_, ctl_;
  std::string cfg_, ctl1_log_, ctl2_log_;
};

TEST_F(ControllerOnLab, KilledMidMigrationAdoptsItAndNeverMigratesTwice) {
  // Fake agents: lab1 at 95 % with the guest using 3 of its 8 cores, lab2
  // at 10 %, so moving the guest balances them. 256 MiB of RAM, as defined.
  const std::string fake = std::string(VMTIDE_BINARY_DIR) + "/tests/integration/fake_agent";
  lab1_.emplace(std::vector<std::string>{fake, "tcp://127.0.0.1:*", "lab1", "0.95", "200",
                                         std::string(kUuid) + ":3:256:1000"});
  lab2_.emplace(std::vector<std::string>{fake, "tcp://127.0.0.1:*", "lab2", "0.10", "200"});
  const auto ep1 = lab1_->endpoint(), ep2 = lab2_->endpoint();
  ASSERT_TRUE(ep1 && ep2) << lab1_->log << lab2_->log;

  const std::string log = dir_ + "/decisions.jsonl";
  cfg_ = dir_ + "/controller.toml";
  std::ofstream(cfg_) << "[controller]\nmode = \"enforce\"\nround_interval = 0.5\nname = \"ctl\"\n"
                      << "[agents]\nendpoints = [\"" << *ep1 << "\", \"" << *ep2 << "\"]\n"
                      << "[publish]\nendpoint = \"tcp://127.0.0.1:*\"\n"
                      << "[control]\nendpoint = \"off\"\n"
                      << "[log]\ndecisions = \"" << log << "\"\n"
                      << "[model]\nsmoothing = 0.5\nmin_stale_after = 1.0\n"
                      << "[balance]\nhot_sustain = 1.0\ncold_sustain = 1.0\n"
                      << "[predictor]\nmax_bandwidth = " << kBandwidthBytesPerS << "\n"
                      << "[executor]\nbackend = \"libvirt\"\n"
                      << "[[host]]\nname = \"lab1\"\nlibvirt_uri = \"" << lab_->uri(1) << "\"\n"
                      << "[[host]]\nname = \"lab2\"\nlibvirt_uri = \"" << lab_->uri(2) << "\"\n";

  // The first controller decides the move and starts it.
  start_controller();
  auto m = ctl_->wait_for(std::regex("decisions on (tcp://[0-9.]+:[0-9]+)"));
  ASSERT_TRUE(m) << "the controller did not start:\n" << ctl_->log;
  testsupport::StreamReader stream;
  stream.connect((*m)[1]);
  std::optional<wire::Decision> started;
  for (const auto until = Clock::now() + 60s; Clock::now() < until && !started;) {
    auto msg = stream.next(500ms);
    if (!msg) continue;
    if (const auto* d = std::get_if<wire::Decision>(&msg->body); d && d->vm == kUuid) {
      ASSERT_EQ(d->outcome, wire::Outcome::kStarted) << d->detail.value_or("") << "\n" << ctl_->log;
      started = *d;
    }
  }
  ASSERT_TRUE(started) << "no migration started within 60 s; controller log:\n" << ctl_->log;
  EXPECT_EQ(started->src, "lab1");
  EXPECT_EQ(started->dst, "lab2");

  // Killed mid-migration, once libvirt's job is sending: the job goes on
  // without it (peer to peer, the source libvirtd drives it).
  std::optional<unsigned long long> sent;
  for (const auto until = Clock::now() + 30s; Clock::now() < until && !(sent && *sent > 0);
       std::this_thread::sleep_for(50ms)) {
    sent = migrating_out();
  }
  ASSERT_TRUE(sent && *sent > 0) << "no migration job sending on lab1 within 30 s of the decision";
  ctl_->kill9();
  ctl1_log_ = ctl_->log;
  std::printf("controller killed with -9 after %.1f MiB of the migration\n", static_cast<double>(*sent) / 1048576.0);
  ASSERT_TRUE(migrating_out()) << "the migration died with the controller";

  // The second controller adopts it before deciding anything.
  start_controller();
  auto adopted = ctl_->wait_for(std::regex("enforce: ([0-9]+) migration\\(s\\) already running adopted"));
  ASSERT_TRUE(adopted) << "the restarted controller never recovered its in-flight state:\n" << ctl_->log;
  EXPECT_EQ((*adopted)[1], "1") << ctl_->log;
  auto done = ctl_->wait_for(std::regex(std::string("decision [^ ]+: (succeeded|failed) (vm-)?") + kUuid));
  ctl2_log_ = ctl_->log;
  ASSERT_TRUE(done) << "the adopted migration never ended:\n" << ctl_->log;
  EXPECT_EQ((*done)[1], "succeeded") << ctl_->log;
  // A few more rounds: the cooldown holds, nothing else starts.
  for (const auto until = Clock::now() + 3s; Clock::now() < until;) (void)stream.next(200ms);
  ctl_.reset();

  // The guest: on lab2 only, running, alive.
  EXPECT_EQ(state_on(2), VIR_DOMAIN_RUNNING);
  EXPECT_EQ(state_on(1), -1) << "the guest is still defined on lab1";
  const int t = testsupport::last_heartbeat(testsupport::read_all(console()));
  EXPECT_TRUE(await_heartbeat(t + 3, 60s)) << "the guest's console stopped at t=" << t;
  EXPECT_EQ(testsupport::read_all(console()).find("Kernel panic"), std::string::npos);

  // The decision log: one start (the first controller's), one success (the
  // second's, for the adopted migration), no other move of the guest.
  auto records = decision_log::last(log, 10000);
  ASSERT_TRUE(records) << records.error().message();
  int starts = 0, successes = 0, failures = 0;
  for (const auto& r : records->records) {
    const auto& d = std::get<wire::Decision>(r.message.body);
    if (d.vm != kUuid) continue;
    std::printf("log line %zu: %s %s %s -> %s (%s)\n", r.line, d.id.c_str(), std::string(wire::outcome_name(d.outcome)).c_str(),
                d.src.c_str(), d.dst.c_str(), d.strategy.c_str());
    starts += d.outcome == wire::Outcome::kStarted ? 1 : 0;
    successes += d.outcome == wire::Outcome::kSucceeded ? 1 : 0;
    failures += d.outcome == wire::Outcome::kFailed ? 1 : 0;
  }
  EXPECT_EQ(starts, 1) << "a second migration of the guest was started";
  EXPECT_EQ(successes, 1);
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(ctl2_log_.find(": started vm-"), std::string::npos) << "the second controller started a move";
}

}  // namespace
}  // namespace vmtide
