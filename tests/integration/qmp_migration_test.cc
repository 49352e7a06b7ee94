// SPDX-License-Identifier: Apache-2.0
// One real live migration through the QMP executor: the lab guest (Debian's
// kernel, a dirtier writing a 16 MiB set at random at 2 000 pages/s) boots
// in qemu-system-x86_64 -accel tcg with a QMP socket, an incoming QEMU
// waits on 127.0.0.1, and the executor migrates it at 64 MiB/s. The
// migration must succeed with sane figures, and the guest must go on
// running on the destination: QMP says "running" and the dirtier's
// heartbeat keeps coming on the destination's console, with no panic.
// Skips, saying why, without root, QEMU or the lab guest's ingredients.
#include <gtest/gtest.h>

#include <thread>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>

#include "lab_qemu.h"
#include "qmp_executor.h"

namespace vmtide {
namespace {

using namespace std::chrono_literals;
using lab::Clock;

class QmpMigration : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (QEMU's guest RAM and sockets under /tmp)";
    if (access("/usr/bin/qemu-system-x86_64", X_OK) != 0)
      GTEST_SKIP() << "qemu-system-x86_64 not installed (scripts/deps)";
    char tmpl[] = "/tmp/vmtide-qmpmig.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    const std::string build =
        std::string(VMTIDE_SOURCE_DIR) + "/lab/build-guest '" + dir_ + "' > '" + dir_ + "/build-guest.log' 2>&1";
    if (std::system(build.c_str()) != 0) {
      GTEST_SKIP() << "cannot build the lab guest: " << lab::read_file(dir_ + "/build-guest.log");
    }
  }
  void TearDown() override {
    if (HasFailure() && !dir_.empty()) {
      for (const char* f : {"/src.console", "/dst.console", "/src.log", "/dst.log"}) {
        const std::string s = lab::read_file(dir_ + f);
        std::printf("%s (last 1500 bytes):\n%s\n", f, s.substr(s.size() > 1500 ? s.size() - 1500 : 0).c_str());
      }
    }
    if (!dir_.empty()) std::system(("rm -rf '" + dir_ + "'").c_str());
  }
  std::string dir_;
};

TEST_F(QmpMigration, MigratesAndTheGuestRunsOnTheDestination) {
  lab::GuestSpec g;
  g.kernel = dir_ + "/guest-vmlinuz";
  g.initrd = dir_ + "/guest-initrd.gz";
  g.mem_mib = 256;
  g.ws_mib = 16;
  g.rate = 2000;
  g.fill_mib = 64;
  auto src = lab::Qemu::start(g, dir_, "src", false);
  ASSERT_TRUE(src) << src.error().message();
  auto dst = lab::Qemu::start(g, dir_, "dst", true);
  ASSERT_TRUE(dst) << dst.error().message();
  // The guest's dirtier running (past its fill): its heartbeat, awaited.
  auto beats = lab::await_console(src->console_path(), "dirtier: t=", 2, Clock::now() + 180s, &*src);
  ASSERT_TRUE(beats && *beats >= 2) << "the guest never reached its workload";
  auto uri = dst->listen_incoming(Clock::now() + 30s);
  ASSERT_TRUE(uri) << uri.error().message();

  executor::QmpExecutorOptions o;
  const std::string src_qmp = src->qmp_path(), dst_uri = *uri;
  o.qmp_socket = [src_qmp](const std::string& host, const std::string&) -> Result<std::string> {
    if (host != "a") return make_error(Errc::kInvalidArgument, "unknown host " + host);
    return src_qmp;
  };
  o.incoming_uri = [dst_uri](const std::string& host, const std::string&) -> Result<std::string> {
    if (host != "b") return make_error(Errc::kInvalidArgument, "unknown host " + host);
    return dst_uri;
  };
  executor::QmpExecutor ex(o);
  executor::MigrationRequest req;
  req.vm_id = "lab";
  req.src = "a";
  req.dst = "b";
  req.max_bandwidth_bytes_per_s = 64.0 * 1024 * 1024;
  req.downtime_limit_ms = 300;
  req.timeout = 120s;
  auto h = ex.start(req);
  ASSERT_TRUE(h) << h.error().message();
  auto r = ex.running();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->size(), 1u);
  // Awaits QEMU's MIGRATION event; polls only to follow the passes.
  auto p = ex.wait(*h, Clock::now() + 150s);
  ASSERT_TRUE(p) << p.error().message();
  ASSERT_EQ(p->state, executor::State::kSucceeded) << p->error;
  EXPECT_GT(p->total_ms, 0);
  EXPECT_LT(p->downtime_ms, 1000);
  EXPECT_GT(p->bytes, 64ull << 20) << "at least the filled memory crossed";
  EXPECT_GE(p->passes, 3u) << "setup sync, a pass, the final sync";
  ex.forget(*h);

  // The source stays paused after handing over; the destination runs it.
  // QEMU reports the migration completed while the source is still in
  // finish-migrate; its migration thread moves it to postmigrate just after.
  auto s = src->run_state(Clock::now() + 10s);
  for (const auto until = Clock::now() + 10s; s && *s == "finish-migrate" && Clock::now() < until;) {
    std::this_thread::sleep_for(20ms);
    s = src->run_state(Clock::now() + 10s);
  }
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_EQ(*s, "postmigrate");
  auto d = dst->run_state(Clock::now() + 10s);
  ASSERT_TRUE(d) << d.error().message();
  EXPECT_EQ(*d, "running");
  auto after = lab::await_console(dst->console_path(), "dirtier: t=", 3, Clock::now() + 60s, &*dst);
  ASSERT_TRUE(after);
  EXPECT_GE(*after, 3) << "the dirtier stopped on the destination";
  const std::string console = lab::read_file(dst->console_path());
  EXPECT_EQ(console.find("Kernel panic"), std::string::npos);
  EXPECT_EQ(console.find("BUG:"), std::string::npos);
  // The Qemu objects kill exactly the two QEMUs this test started.
}

}  // namespace
}  // namespace vmtide
