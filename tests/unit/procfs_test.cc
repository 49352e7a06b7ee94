// SPDX-License-Identifier: Apache-2.0
// procfs parsers on fixture text, and discovery of a real process.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
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

TEST(ProcStat, StatFieldsAfterAnAwkwardName) {
  // comm may hold spaces and parentheses; the fields after the last ')' count.
  const std::string text =
      "42 (qemu (x) 1) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 5 0 1234 1000000 2048 "
      "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
  auto p = collectors::parse_process_stat(text);
  ASSERT_TRUE(p) << p.error().message();
  EXPECT_EQ(p->cpu_ns, 300u * (1'000'000'000ULL / static_cast<std::uint64_t>(sysconf(_SC_CLK_TCK))));
  EXPECT_EQ(p->rss_bytes, 2048u * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE)));
  EXPECT_EQ(collectors::parse_process_stat("42 (q) Z 1 2").error().code, Errc::kNotFound);
  EXPECT_FALSE(collectors::parse_process_stat("42 (q) S 1 2 3"));
  EXPECT_FALSE(collectors::parse_process_stat("garbage"));
}

TEST(ProcStat, OwnProcessIsReadable) {
  auto s = collectors::process_schedstat_split(static_cast<std::uint32_t>(getpid()), {});
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_GT(s->first.run_ns, 0u);
  EXPECT_EQ(s->second.run_ns, s->first.run_ns) << "an empty subset means every thread";
  auto ps = collectors::process_stat(static_cast<std::uint32_t>(getpid()));
  ASSERT_TRUE(ps) << ps.error().message();
  // The kept-open form reads the same process again and again.
  collectors::ProcessStatFile f(static_cast<std::uint32_t>(getpid()));
  auto a = f.read();
  ASSERT_TRUE(a) << a.error().message();
  for (int i = 0; i < 50'000'000; ++i) asm volatile("" ::: "memory");
  auto b = f.read();
  ASSERT_TRUE(b);
  EXPECT_GE(b->cpu_ns, a->cpu_ns);
  EXPECT_FALSE(collectors::ProcessStatFile(1u << 23).read()) << "a pid that cannot exist";
  EXPECT_GT(ps->rss_bytes, 0u);
  // The same resident set statm reports (field 2, pages), within what the
  // two reads in a row can change.
  std::ifstream statm("/proc/self/statm");
  std::uint64_t size = 0, resident = 0;
  statm >> size >> resident;
  const double statm_bytes = static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE));
  EXPECT_NEAR(static_cast<double>(ps->rss_bytes), statm_bytes, 0.05 * statm_bytes);
  // A pid that cannot exist (above pid_max's hard limit of 2^22).
  EXPECT_EQ(collectors::process_schedstat_split(1u << 23, {}).error().code, Errc::kNotFound);
}

TEST(ProcStat, KeptOpenFileRereadsTheWholeFileEachTime) {
  const std::string path = ::testing::TempDir() + "/procfile.txt";
  std::filesystem::remove(path);
  collectors::ProcFile f(path);
  EXPECT_FALSE(f.read()) << "absent: an error, tried again next time";
  const std::string big(10'000, 'x');  // beyond the first 4 KiB buffer
  std::ofstream(path) << big;
  auto a = f.read();
  ASSERT_TRUE(a) << a.error().message();
  EXPECT_EQ(*a, big);
  {
    // Rewritten in place (the same inode, as /proc files change under an
    // open descriptor): the next read sees the new text, and only it.
    std::fstream out(path, std::ios::in | std::ios::out);
    out << "short";
  }
  auto b = f.read();
  ASSERT_TRUE(b);
  EXPECT_EQ(b->substr(0, 6), "shortx");
  EXPECT_EQ(b->size(), big.size());
  // A real /proc file read twice: the same parser accepts both reads.
  collectors::ProcFile stat("/proc/stat");
  for (int i = 0; i < 2; ++i) {
    auto t = stat.read();
    ASSERT_TRUE(t) << t.error().message();
    auto cpu = collectors::parse_proc_stat(*t);
    ASSERT_TRUE(cpu) << cpu.error().message();
    EXPECT_GT(cpu->cpus, 0u);
  }
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

// A /proc of our own making: what a rescan reads again and what it keeps.
class FakeProc {
 public:
  FakeProc() : root_(std::filesystem::temp_directory_path() / ("vmtide-proc-" + std::to_string(getpid()))) {
    std::filesystem::remove_all(root_);
  }
  ~FakeProc() { std::filesystem::remove_all(root_); }
  void process(std::uint32_t pid, const std::string& name) {
    const auto dir = root_ / std::to_string(pid);
    std::filesystem::create_directories(dir / "task");
    std::ofstream(dir / "comm") << "qemu-system-x86\n";
    const std::string cl = std::string("qemu-system-x86_64\0-name\0", 25) + name + std::string("\0-m\0", 4) + "512" +
                           std::string("\0", 1);
    std::ofstream(dir / "cmdline", std::ios::binary) << cl;
  }
  void thread(std::uint32_t pid, std::uint32_t tid, const std::string& comm) {
    const auto dir = root_ / std::to_string(pid) / "task" / std::to_string(tid);
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "comm") << comm << "\n";
  }
  void remove_thread(std::uint32_t pid, std::uint32_t tid) {
    std::filesystem::remove_all(root_ / std::to_string(pid) / "task" / std::to_string(tid));
  }
  std::string root() const { return root_.string(); }

 private:
  std::filesystem::path root_;
};

TEST(Discovery, RescanReadsOnlyWhatChanged) {
  FakeProc proc;
  proc.process(100, "vm1");
  proc.thread(100, 100, "qemu-system-x86");
  proc.thread(100, 101, "CPU 0/TCG");
  discovery::ScanCache cache;
  auto found = discovery::scan_qemu_processes(proc.root(), {}, &cache);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].name, "vm1");
  EXPECT_EQ(found[0].ram_bytes, 512ULL << 20);
  EXPECT_EQ(found[0].vcpu_tids, std::vector<std::uint32_t>{101});

  // Same process: its command line is not read again (we change it to
  // prove it), a new vCPU thread is named.
  proc.process(100, "renamed");
  proc.thread(100, 102, "CPU 1/TCG");
  found = discovery::scan_qemu_processes(proc.root(), {}, &cache);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].name, "vm1");
  EXPECT_EQ(found[0].vcpu_tids, (std::vector<std::uint32_t>{101, 102}));

  // A vCPU exits: dropped.
  proc.remove_thread(100, 101);
  found = discovery::scan_qemu_processes(proc.root(), {}, &cache);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].vcpu_tids, std::vector<std::uint32_t>{102});

  // Every thread new: a reused pid, read from scratch.
  proc.remove_thread(100, 100);
  proc.remove_thread(100, 102);
  proc.thread(100, 200, "qemu-system-x86");
  proc.thread(100, 201, "CPU 0/TCG");
  found = discovery::scan_qemu_processes(proc.root(), {}, &cache);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].name, "renamed");
  EXPECT_EQ(found[0].vcpu_tids, std::vector<std::uint32_t>{201});

  // Gone: forgotten.
  std::filesystem::remove_all(proc.root() + "/100");
  EXPECT_TRUE(discovery::scan_qemu_processes(proc.root(), {}, &cache).empty());
  EXPECT_TRUE(cache.by_pid.empty());
}

TEST(Discovery, ASettledQemuIsNotListedAgainUntilTheFullScan) {
  FakeProc proc;
  proc.process(100, "vm1");
  proc.thread(100, 100, "qemu-system-x86");
  proc.thread(100, 101, "CPU 0/TCG");
  discovery::ScanCache cache;
  cache.full_every = 5;  // scans 0 and 5 are full
  auto scan = [&] { return discovery::scan_qemu_processes(proc.root(), {}, &cache); };
  for (int i = 0; i < 3; ++i) ASSERT_EQ(scan().size(), 1u);  // the same threads twice after the first: settled
  // A vCPU hot-plugged now is seen by the next full scan, not before.
  proc.thread(100, 102, "CPU 1/TCG");
  EXPECT_EQ(scan().at(0).vcpu_tids, std::vector<std::uint32_t>{101});
  EXPECT_EQ(scan().at(0).vcpu_tids, std::vector<std::uint32_t>{101});
  EXPECT_EQ(scan().at(0).vcpu_tids, (std::vector<std::uint32_t>{101, 102})) << "the full scan lists the threads";
  // Unsettled again (the threads changed): the next scans list them, and
  // the first vCPU's exit is seen at once.
  proc.remove_thread(100, 101);
  EXPECT_EQ(scan().at(0).vcpu_tids, std::vector<std::uint32_t>{102});
  // Settled, and then the looked-up vCPU exits: listed again at once.
  for (int i = 0; i < 2; ++i) scan();
  proc.remove_thread(100, 102);
  proc.thread(100, 103, "CPU 0/TCG");
  EXPECT_EQ(scan().at(0).vcpu_tids, std::vector<std::uint32_t>{103});
}

TEST(Discovery, OtherProcessesAreReadTwiceThenOnlyInFullScans) {
  FakeProc proc;
  // pid 300 is a fork that will exec QEMU: the first look sees its parent's name.
  const auto dir = std::filesystem::path(proc.root()) / "300";
  std::filesystem::create_directories(dir / "task" / "300");
  std::ofstream(dir / "comm") << "libvirtd\n";
  discovery::ScanCache cache;
  cache.full_every = 4;
  EXPECT_TRUE(discovery::scan_qemu_processes(proc.root(), {}, &cache).empty());  // scan 0 (full)
  proc.process(300, "late");                                                     // it exec'd QEMU
  auto found = discovery::scan_qemu_processes(proc.root(), {}, &cache);          // scan 1: looked again
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].name, "late");

  // pid 400 stays a shell: after two looks it is settled...
  std::filesystem::create_directories(std::filesystem::path(proc.root()) / "400" / "task" / "400");
  std::ofstream(std::filesystem::path(proc.root()) / "400" / "comm") << "bash\n";
  (void)discovery::scan_qemu_processes(proc.root(), {}, &cache);  // scan 2
  (void)discovery::scan_qemu_processes(proc.root(), {}, &cache);  // scan 3
  EXPECT_EQ(cache.not_qemu.at(400), 2);
  // ...so a later exec into QEMU waits for the next full scan (scan 4).
  proc.process(400, "later");
  found = discovery::scan_qemu_processes(proc.root(), {}, &cache);  // scan 4: full
  EXPECT_EQ(found.size(), 2u);
}

}  // namespace
}  // namespace vmtide
