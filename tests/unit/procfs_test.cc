// SPDX-License-Identifier: Apache-2.0
// procfs parsers on fixture text, and discovery of a real process.
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "procfs.h"
#include "procfs_stats.h"

namespace vmtide {
namespace {

using namespace std::string_literals;

TEST(QemuCmdline, NameUuidMemAndDebugThreads) {
  const std::string argv =
      "/usr/bin/qemu-system-x86_64\0-name\0guest=web1,debug-threads=on\0-uuid\0"
      "6b1d0c4e-3f7a-4d8e-9a1b-2c3d4e5f6a7b\0-m\0size=2G,slots=4,maxmem=8G\0-accel\0tcg\0"s;
  auto c = discovery::parse_qemu_cmdline(argv);
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->name, "web1");
  EXPECT_EQ(c->uuid, "6b1d0c4e-3f7a-4d8e-9a1b-2c3d4e5f6a7b");
  EXPECT_EQ(c->ram_bytes, 2ULL << 30);
  EXPECT_TRUE(c->debug_threads);
}

TEST(QemuCmdline, DefaultsAndShortForms) {
  auto c = discovery::parse_qemu_cmdline("qemu-system-x86_64\0-name\0plain\0-nographic\0"s);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->name, "plain");
  EXPECT_EQ(c->ram_bytes, 128ULL << 20);  // QEMU's default
  EXPECT_FALSE(c->debug_threads);
  EXPECT_FALSE(discovery::parse_qemu_cmdline("qemu\0-m\0lots\0"s));
}

TEST(QemuMem, Units) {
  EXPECT_EQ(*discovery::parse_qemu_mem("512"), 512ULL << 20);
  EXPECT_EQ(*discovery::parse_qemu_mem("512M"), 512ULL << 20);
  EXPECT_EQ(*discovery::parse_qemu_mem("1G"), 1ULL << 30);
  EXPECT_EQ(*discovery::parse_qemu_mem("524036k"), 524036ULL * 1024);
  EXPECT_EQ(*discovery::parse_qemu_mem("size=256M,slots=2"), 256ULL << 20);
  EXPECT_FALSE(discovery::parse_qemu_mem("12Q"));
  EXPECT_FALSE(discovery::parse_qemu_mem("99999999999999999999T"));
}

TEST(VcpuComm, Names) {
  EXPECT_EQ(discovery::vcpu_index_from_comm("CPU 0/TCG\n"), 0u);
  EXPECT_EQ(discovery::vcpu_index_from_comm("CPU 12/KVM"), 12u);
  EXPECT_FALSE(discovery::vcpu_index_from_comm("CPU x/KVM"));
  EXPECT_FALSE(discovery::vcpu_index_from_comm("CPU 3"));
  EXPECT_FALSE(discovery::vcpu_index_from_comm("qemu-system-x86"));
}

TEST(ProcStat, CpuLine) {
  auto t = collectors::parse_proc_stat(
      "cpu  100 5 50 1000 20 3 2 7 0 0\ncpu0 50 2 25 500 10 1 1 3 0 0\ncpu1 50 3 25 500 10 2 1 4 0 0\nintr 1\n");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->busy, 100u + 5 + 50 + 3 + 2);
  EXPECT_EQ(t->idle, 1020u);
  EXPECT_EQ(t->steal, 7u);
  EXPECT_EQ(t->cpus, 2u);
  EXPECT_FALSE(collectors::parse_proc_stat("intr 1\n"));
  EXPECT_FALSE(collectors::parse_proc_stat("cpu 1 2\n"));
}

TEST(ProcStat, MeminfoLoadavgPressureSchedstat) {
  auto m = collectors::parse_meminfo("MemTotal:       16384 kB\nMemFree: 1 kB\nMemAvailable:    8192 kB\n");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->total_bytes, 16384u * 1024);
  EXPECT_EQ(m->available_bytes, 8192u * 1024);
  EXPECT_FALSE(collectors::parse_meminfo("MemTotal: 1 kB\n"));

  auto l = collectors::parse_loadavg("0.50 1.25 2.00 1/123 4567\n");
  ASSERT_TRUE(l);
  EXPECT_DOUBLE_EQ(l->load5, 1.25);

  auto p = collectors::parse_pressure("some avg10=0.00 avg60=0.10 avg300=0.00 total=12345\n"
                                      "full avg10=0.00 avg60=0.00 avg300=0.00 total=678\n");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->some_us, 12345u);
  EXPECT_EQ(p->full_us, 678u);
  auto cpu_only = collectors::parse_pressure("some avg10=0.00 avg60=0.00 avg300=0.00 total=5\n");
  ASSERT_TRUE(cpu_only);
  EXPECT_FALSE(cpu_only->full_us);

  auto s = collectors::parse_schedstat("123456 7890 42\n");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->wait_ns, 7890u);
  EXPECT_FALSE(collectors::parse_schedstat("1 2\n"));
}

TEST(ProcStat, OwnProcessIsReadable) {
  auto s = collectors::process_schedstat_split(static_cast<std::uint32_t>(getpid()), {});
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_GT(s->first.run_ns, 0u);
  EXPECT_EQ(s->second.run_ns, s->first.run_ns) << "an empty subset means every thread";
  auto rss = collectors::process_rss_bytes(static_cast<std::uint32_t>(getpid()));
  ASSERT_TRUE(rss);
  EXPECT_GT(*rss, 0u);
  // A pid that cannot exist (above pid_max's hard limit of 2^22).
  EXPECT_EQ(collectors::process_schedstat_split(1u << 23, {}).error().code, Errc::kNotFound);
}

TEST(Discovery, ExtraPidIsFound) {
  const auto self = static_cast<std::uint32_t>(getpid());
  auto found = discovery::scan_qemu_processes("/proc", {self});
  bool seen = false;
  for (const auto& p : found) {
    if (p.pid == self) {
      seen = true;
      EXPECT_EQ(p.id, "proc:" + std::to_string(self));
      EXPECT_TRUE(p.vcpu_tids.empty());
    }
  }
  EXPECT_TRUE(seen);
}

}  // namespace
}  // namespace vmtide
