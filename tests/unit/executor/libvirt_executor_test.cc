// SPDX-License-Identifier: Apache-2.0
// The libvirt executor without a daemon: the flags every migration uses,
// bandwidth rounding, job statistics to Progress, and the errors a caller
// gets before any hypervisor is asked (unknown hosts, unreachable host).
// tests/integration/executor_lab_test.cc migrates real guests.
#include <gtest/gtest.h>
#include <libvirt/libvirt.h>

#include "libvirt_executor.h"

namespace vmtide::executor {
namespace {

TEST(LibvirtExecutorFlags, PreCopyPeerToPeerDefinitionMoves) {
  MigrationRequest req;
  const unsigned long f = migration_flags(req);
  EXPECT_TRUE(f & VIR_MIGRATE_LIVE);
  EXPECT_TRUE(f & VIR_MIGRATE_PEER2PEER);
  EXPECT_TRUE(f & VIR_MIGRATE_PERSIST_DEST);
  EXPECT_TRUE(f & VIR_MIGRATE_UNDEFINE_SOURCE);
  EXPECT_TRUE(f & VIR_MIGRATE_ABORT_ON_ERROR);
  // A failed post-copy loses the VM; an offline or paused one is not live.
  EXPECT_FALSE(f & VIR_MIGRATE_POSTCOPY);
  EXPECT_FALSE(f & VIR_MIGRATE_OFFLINE);
  EXPECT_FALSE(f & VIR_MIGRATE_PAUSED);
  EXPECT_FALSE(f & VIR_MIGRATE_AUTO_CONVERGE);
  req.auto_converge = true;
  EXPECT_TRUE(migration_flags(req) & VIR_MIGRATE_AUTO_CONVERGE);
}

TEST(LibvirtExecutorFlags, BandwidthRoundsUpToMiB) {
  EXPECT_EQ(bandwidth_mib_per_s(0), 0u);
  EXPECT_EQ(bandwidth_mib_per_s(-5), 0u);
  EXPECT_EQ(bandwidth_mib_per_s(1), 1u);
  EXPECT_EQ(bandwidth_mib_per_s(64.0 * 1024 * 1024), 64u);
  EXPECT_EQ(bandwidth_mib_per_s(64.0 * 1024 * 1024 + 1), 65u);
}

TEST(LibvirtExecutorStats, JobStatsBecomeProgress) {
  ASSERT_EQ(virInitialize(), 0);  // the typed-parameter helpers need it
  virTypedParameterPtr params = nullptr;
  int n = 0, max = 0;
  ASSERT_EQ(virTypedParamsAddULLong(&params, &n, &max, VIR_DOMAIN_JOB_TIME_ELAPSED, 8004), 0);
  ASSERT_EQ(virTypedParamsAddULLong(&params, &n, &max, VIR_DOMAIN_JOB_MEMORY_PROCESSED, 148'050'000), 0);
  ASSERT_EQ(virTypedParamsAddULLong(&params, &n, &max, VIR_DOMAIN_JOB_MEMORY_REMAINING, 4096), 0);
  ASSERT_EQ(virTypedParamsAddULLong(&params, &n, &max, VIR_DOMAIN_JOB_MEMORY_ITERATION, 3), 0);
  ASSERT_EQ(virTypedParamsAddULLong(&params, &n, &max, VIR_DOMAIN_JOB_MEMORY_DIRTY_RATE, 2990), 0);
  ASSERT_EQ(virTypedParamsAddULLong(&params, &n, &max, VIR_DOMAIN_JOB_MEMORY_BPS, 59'530'000), 0);
  ASSERT_EQ(virTypedParamsAddULLong(&params, &n, &max, VIR_DOMAIN_JOB_DOWNTIME, 118), 0);
  ASSERT_EQ(virTypedParamsAddULLong(&params, &n, &max, VIR_DOMAIN_JOB_SETUP_TIME, 12), 0);
  ASSERT_EQ(virTypedParamsAddInt(&params, &n, &max, VIR_DOMAIN_JOB_OPERATION, VIR_DOMAIN_JOB_OPERATION_MIGRATION_IN),
            0);

  const Progress live = progress_from_job_stats(params, n, false);
  EXPECT_DOUBLE_EQ(live.elapsed_s, 8.004);
  EXPECT_EQ(live.bytes, 148'050'000u);
  EXPECT_EQ(live.remaining_bytes, 4096u);
  EXPECT_EQ(live.passes, 3u);
  EXPECT_DOUBLE_EQ(live.dirty_pages_per_s, 2990);
  EXPECT_DOUBLE_EQ(live.bandwidth_bytes_per_s, 59'530'000);
  EXPECT_EQ(live.downtime_ms, 0) << "downtime is final only";
  EXPECT_EQ(live.total_ms, 0);

  const Progress done = progress_from_job_stats(params, n, true);
  EXPECT_DOUBLE_EQ(done.downtime_ms, 118);
  EXPECT_DOUBLE_EQ(done.total_ms, 8004);
  EXPECT_DOUBLE_EQ(done.setup_ms, 12);
  virTypedParamsFree(params, n);

  const Progress empty = progress_from_job_stats(nullptr, 0, true);
  EXPECT_EQ(empty.bytes, 0u);
}

MigrationRequest request(std::string src, std::string dst) {
  MigrationRequest r;
  r.vm_id = "5a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
  r.src = std::move(src);
  r.dst = std::move(dst);
  return r;
}

std::map<std::string, LibvirtHost> unreachable_hosts() {
  return {{"kvm1", {"qemu+unix:///system?socket=/nonexistent/vmtide/kvm1-sock", "", ""}},
          {"kvm2", {"qemu+unix:///system?socket=/nonexistent/vmtide/kvm2-sock", "", ""}}};
}

TEST(LibvirtExecutorErrors, RefusedBeforeAskingAHypervisor) {
  LibvirtExecutor ex(unreachable_hosts());
  EXPECT_STREQ(ex.name(), "libvirt");
  auto unknown_src = ex.start(request("kvm9", "kvm2"));
  ASSERT_FALSE(unknown_src);
  EXPECT_EQ(unknown_src.error().code, Errc::kInvalidArgument);
  EXPECT_NE(unknown_src.error().context.find("kvm9"), std::string::npos);
  auto unknown_dst = ex.start(request("kvm1", "kvm9"));
  ASSERT_FALSE(unknown_dst);
  EXPECT_EQ(unknown_dst.error().code, Errc::kInvalidArgument);
  auto same = ex.start(request("kvm1", "kvm1"));
  ASSERT_FALSE(same);
  EXPECT_EQ(same.error().code, Errc::kInvalidArgument);
  auto no_timeout = request("kvm1", "kvm2");
  no_timeout.timeout = std::chrono::nanoseconds::zero();
  EXPECT_FALSE(ex.start(no_timeout));

  auto p = ex.poll("libvirt-1-nothing");
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().code, Errc::kNotFound);
  auto a = ex.abort("libvirt-1-nothing");
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error().code, Errc::kNotFound);
  ex.forget("libvirt-1-nothing");  // no-op
}

TEST(LibvirtExecutorErrors, UnreachableHostIsAnErrorWithLibvirtsMessage) {
  LibvirtExecutor ex(unreachable_hosts());
  auto s = ex.start(request("kvm1", "kvm2"));
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, Errc::kIo);
  EXPECT_NE(s.error().context.find("kvm1"), std::string::npos) << s.error().message();
  EXPECT_NE(s.error().context.find("/nonexistent/vmtide/kvm1-sock"), std::string::npos) << s.error().message();
  // An in-flight list with a host missing would be a guess: an error.
  auto r = ex.running();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kIo);
}

}  // namespace
}  // namespace vmtide::executor
