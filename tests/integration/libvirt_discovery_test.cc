// SPDX-License-Identifier: Apache-2.0
// libvirt discovery against a real libvirtd (started here, private to the
// test) running a real QEMU TCG domain: the domain is listed with its QEMU
// process and vCPU thread, lifecycle events arrive, and discovery survives
// a daemon restart. Skips, printing why, only if the daemon cannot start.
#include <gtest/gtest.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <poll.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>

#include "libvirt.h"
#include "libvirtd_fixture.h"

namespace vmtide::discovery {
namespace {

using testsupport::Libvirtd;
using namespace std::chrono_literals;

class LibvirtDiscoveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    virSetErrorFunc(nullptr, [](void*, virErrorPtr) {});  // readiness probes fail on purpose
    if (geteuid() != 0) GTEST_SKIP() << "a private libvirtd needs root (mount namespace)";
    if (access("/usr/sbin/libvirtd", X_OK) != 0) GTEST_SKIP() << "libvirtd not installed (scripts/deps)";
    char tmpl[] = "/tmp/vmtide-libvirt.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    daemon_ = std::make_unique<Libvirtd>(dir_);
    if (!daemon_->start()) GTEST_SKIP() << "libvirtd did not start; its log:\n" << daemon_->log_tail();
    // A boot sector that spins ("jmp $"): a busy guest without a kernel.
    std::ofstream img(dir_ + "/spin.img", std::ios::binary);
    std::string sector(512, '\0');
    sector[0] = '\xeb';
    sector[1] = '\xfe';
    sector[510] = '\x55';
    sector[511] = '\xaa';
    img << sector;
  }
  void TearDown() override {
    if (conn_ != nullptr) virConnectClose(conn_);
    daemon_.reset();
    if (!dir_.empty()) std::system(("rm -rf '" + dir_ + "'").c_str());
  }

  // Each test its own domain: parallel tests run their own daemons, and
  // discovery matches QEMU processes by UUID.
  virDomainPtr start_domain() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    uuid_ = std::string(info->name()).find("Restart") != std::string::npos ? kUuidB : kUuidA;
    conn_ = conn_ != nullptr ? conn_ : virConnectOpen(daemon_->uri().c_str());
    EXPECT_NE(conn_, nullptr);
    const std::string xml =
        "<domain type='qemu'><name>vt-disc</name><uuid>" + uuid_ +
        "</uuid><memory unit='MiB'>96</memory><vcpu>1</vcpu>"
        "<os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os><devices>"
        "<emulator>/usr/bin/qemu-system-x86_64</emulator>"
        "<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='" +
        dir_ + "/spin.img'/><target dev='hda' bus='ide'/></disk></devices></domain>";
    return conn_ != nullptr ? virDomainCreateXML(conn_, xml.c_str(), 0) : nullptr;
  }

  // The next event of `kind` for our domain, skipping others.
  std::optional<LifecycleEvent> await(LibvirtSource& src, Lifecycle kind) {
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < deadline) {
      auto ev = src.wait_event(500ms);
      if (ev && ev->uuid == uuid_ && ev->kind == kind) return ev;
    }
    return std::nullopt;
  }

  static constexpr const char* kUuidA = "5a2f9d4b-7c01-4c1f-8e6a-7d3c1a520b9e";
  static constexpr const char* kUuidB = "6b3f0e5c-8d12-4d2f-9f7b-8e4d2b631cae";
  std::string uuid_;
  std::string dir_;
  std::unique_ptr<Libvirtd> daemon_;
  virConnectPtr conn_ = nullptr;
};

TEST_F(LibvirtDiscoveryTest, DomainLifecycleAndProcessMatch) {
  auto src = LibvirtSource::open(daemon_->uri());
  ASSERT_TRUE(src) << src.error().message();
  auto none = (*src)->scan();
  ASSERT_TRUE(none) << none.error().message();
  EXPECT_TRUE(none->empty());

  virDomainPtr dom = start_domain();
  ASSERT_NE(dom, nullptr) << "libvirt refused the domain; daemon log:\n" << daemon_->log_tail();
  auto started = await(**src, Lifecycle::kStarted);
  ASSERT_TRUE(started) << "no started event";
  EXPECT_EQ(started->name, "vt-disc");

  auto vms = (*src)->scan();
  ASSERT_TRUE(vms) << vms.error().message();
  ASSERT_EQ(vms->size(), 1u);
  const QemuProcess& vm = vms->front();
  EXPECT_EQ(vm.id, uuid_);
  EXPECT_EQ(vm.name, "vt-disc");
  EXPECT_EQ(vm.ram_bytes, 96ull << 20);
  ASSERT_GT(vm.pid, 0u);
  ASSERT_EQ(vm.vcpu_tids.size(), 1u) << "libvirt names vCPU threads (debug-threads=on)";
  std::ifstream comm("/proc/" + std::to_string(vm.pid) + "/task/" + std::to_string(vm.vcpu_tids[0]) + "/comm");
  std::string name;
  std::getline(comm, name);
  EXPECT_EQ(name, "CPU 0/TCG");

  ASSERT_EQ(virDomainSuspend(dom), 0);
  EXPECT_TRUE(await(**src, Lifecycle::kSuspended));
  ASSERT_EQ(virDomainResume(dom), 0);
  EXPECT_TRUE(await(**src, Lifecycle::kResumed));
  ASSERT_EQ(virDomainDestroy(dom), 0);
  virDomainFree(dom);
  EXPECT_TRUE(await(**src, Lifecycle::kStopped));
  auto after = (*src)->scan();
  ASSERT_TRUE(after);
  EXPECT_TRUE(after->empty());
}

TEST_F(LibvirtDiscoveryTest, SurvivesDaemonRestart) {
  auto src = LibvirtSource::open(daemon_->uri());
  ASSERT_TRUE(src) << src.error().message();
  daemon_->stop();
  // While the daemon is down, scanning fails with a clear error...
  auto down = (*src)->scan();
  EXPECT_FALSE(down);
  EXPECT_FALSE((*src)->connected());
  // ...and once it is back, discovery reconnects by itself.
  ASSERT_TRUE(daemon_->start()) << daemon_->log_tail();
  auto up = (*src)->scan();
  ASSERT_TRUE(up) << up.error().message();
  EXPECT_TRUE((*src)->connected());
  EXPECT_GE((*src)->reconnects(), 1u);
  // Events flow on the new connection.
  virDomainPtr dom = start_domain();
  ASSERT_NE(dom, nullptr) << daemon_->log_tail();
  EXPECT_TRUE(await(**src, Lifecycle::kStarted));
  virDomainDestroy(dom);
  virDomainFree(dom);
}

TEST(LibvirtSourceErrors, UnreachableDaemonIsAClearError) {
  auto src = LibvirtSource::open("qemu+unix:///system?socket=/nonexistent/libvirt-sock");
  ASSERT_FALSE(src);
  EXPECT_EQ(src.error().code, Errc::kIo);
  EXPECT_NE(src.error().message().find("/nonexistent/libvirt-sock"), std::string::npos) << src.error().message();
}

}  // namespace
}  // namespace vmtide::discovery
