// SPDX-License-Identifier: Apache-2.0
// DirtyCollector against processes that write known page sets: distinct
// pages at a known rate, a hot set rewritten many times, a huge-page region,
// and a process that exits mid-window. Needs a kernel with soft-dirty
// (Debian's; this suite also runs under it through tests/vmtest).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>

#include "bpf_support.h"
#include "child_workload.h"
#include "dirty.h"

namespace vmtide::collectors {
namespace {

constexpr std::size_t kPage = 4096;

void* map_prefaulted(std::size_t bytes, bool huge) {
  const std::size_t align = 2u << 20;
  // Over-allocate to place the region on a 2 MiB boundary (for THP).
  auto* raw = static_cast<char*>(
      mmap(nullptr, bytes + align, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (raw == MAP_FAILED) _exit(2);
  char* p = reinterpret_cast<char*>((reinterpret_cast<std::uintptr_t>(raw) + align - 1) & ~(align - 1));
  // Explicit either way: Debian's kernel defaults to THP "always", and with
  // huge pages soft-dirty (and so the curve) has 2 MiB granularity.
  madvise(p, bytes, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
  for (std::size_t off = 0; off < bytes; off += kPage) p[off] = 1;  // resident before the window
  return p;
}

// Writes one byte to `n` distinct pages, `rate` pages per second, paced by
// absolute deadlines (the workload's own clock, not test synchronisation).
void write_paced(char* p, std::size_t n, double rate, std::size_t stride_pages = 1) {
  timespec next{};
  clock_gettime(CLOCK_MONOTONIC, &next);
  const std::size_t batch = 10;
  const long batch_ns = static_cast<long>(1e9 * batch / rate);
  for (std::size_t i = 0; i < n; i += batch) {
    for (std::size_t j = i; j < i + batch && j < n; ++j) p[j * stride_pages * kPage] = 2;
    next.tv_nsec += batch_ns;
    while (next.tv_nsec >= 1'000'000'000) {
      next.tv_nsec -= 1'000'000'000;
      ++next.tv_sec;
    }
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, nullptr);
  }
}

std::uint64_t anon_huge_kib(std::uint32_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/smaps_rollup");
  std::string key;
  std::uint64_t v = 0;
  while (in >> key) {
    if (key == "AnonHugePages:" && in >> v) return v;
  }
  return 0;
}

class DirtyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (Status st = probe_soft_dirty(); !st) {
      GTEST_SKIP() << st.error().message() << " (this suite runs under Debian's kernel in tests/vmtest)";
    }
    auto c = DirtyCollector::create({});
    ASSERT_TRUE(c) << c.error().message();
    dirty_ = std::move(c).value();
    bpf_ = dirty_->bpf_disabled_reason().empty();
    if (!bpf_) std::printf("note: no BPF (%s): checking pagemap counts only\n", dirty_->bpf_disabled_reason().c_str());
  }

  DirtyWindow measure(testsupport::ChildWorkload& w) {
    EXPECT_TRUE(w.ready());
    EXPECT_TRUE(dirty_->track("vm", w.pid()));
    EXPECT_TRUE(dirty_->begin_window("vm"));
    EXPECT_TRUE(w.run());
    auto r = dirty_->end_window("vm");
    EXPECT_TRUE(r) << r.error().message();
    EXPECT_TRUE(dirty_->untrack("vm"));
    return r ? *r : DirtyWindow{};
  }

  std::unique_ptr<DirtyCollector> dirty_;
  bool bpf_ = false;
};

TEST_F(DirtyTest, DistinctPagesAtKnownRate) {
  constexpr std::size_t kPages = 20'000;
  constexpr double kRate = 10'000;  // pages/s: a 2 s window
  testsupport::ChildWorkload w([] { return map_prefaulted(kPages * kPage, false); },
           [](void* p) { write_paced(static_cast<char*>(p), kPages, kRate); });
  const DirtyWindow d = measure(w);
  std::printf("window %.3f s: %llu distinct pages (want %zu), %llu write faults, %llu resident\n",
              static_cast<double>(d.window_ns) / 1e9, static_cast<unsigned long long>(d.pages), kPages,
              static_cast<unsigned long long>(d.write_faults), static_cast<unsigned long long>(d.resident_pages));
  for (const auto& pt : d.curve) {
    if (pt.tau_ns % 500'000'000 == 0) std::printf("  D(%.2f s) = %llu\n", static_cast<double>(pt.tau_ns) / 1e9,
                                                  static_cast<unsigned long long>(pt.pages));
  }
  // The child's stack and libc data add a few pages; 3 % is the contract.
  EXPECT_NEAR(static_cast<double>(d.pages), kPages, 0.03 * kPages);
  EXPECT_GE(d.resident_pages, kPages);
  if (bpf_) {
    EXPECT_NEAR(static_cast<double>(d.write_faults), kPages, 0.03 * kPages);
    ASSERT_FALSE(d.curve.empty());
    // The curve rises with time: about rate * tau while the writer runs.
    for (const auto& pt : d.curve) {
      const double expect = std::min<double>(kPages, kRate * static_cast<double>(pt.tau_ns) / 1e9);
      if (pt.tau_ns > 200'000'000 && pt.tau_ns < 1'800'000'000) {
        EXPECT_NEAR(static_cast<double>(pt.pages), expect, 0.15 * expect + 200) << "tau " << pt.tau_ns;
      }
    }
    EXPECT_EQ(d.curve.back().pages, d.pages);
  }
}

TEST_F(DirtyTest, HotSetCountsEachPageOnce) {
  constexpr std::size_t kPages = 1'000;
  testsupport::ChildWorkload w([] { return map_prefaulted(kPages * kPage, false); },
           [](void* m) {
             auto* p = static_cast<volatile char*>(m);
             for (int round = 0; round < 50; ++round) {
               for (std::size_t i = 0; i < kPages; ++i) p[i * kPage] = static_cast<char>(round);
             }
           });
  const DirtyWindow d = measure(w);
  EXPECT_NEAR(static_cast<double>(d.pages), kPages, 0.03 * kPages + 20) << "50 rewrites of 1 000 pages";
  if (bpf_) {
    EXPECT_LT(d.write_faults, 2 * kPages) << "only first writes fault";
  }
}

TEST_F(DirtyTest, HugePagesCountedInSmallPages) {
  constexpr std::size_t kBytes = 16u << 20;  // 8 huge pages, 4 096 small ones
  constexpr std::size_t kPages = kBytes / kPage;
  testsupport::ChildWorkload w([] { return map_prefaulted(kBytes, true); },
           [](void* m) {
             auto* p = static_cast<volatile char*>(m);
             for (std::size_t i = 0; i < kPages; ++i) p[i * kPage] = 3;
           });
  const bool thp = anon_huge_kib(w.pid()) > 0;
  const DirtyWindow d = measure(w);
  EXPECT_NEAR(static_cast<double>(d.pages), kPages, 0.03 * kPages);
  if (bpf_ && thp) {
    // One write fault per huge page: faults alone would undercount 512-fold.
    EXPECT_LT(d.write_faults, kPages / 8) << "THP backed the region, yet faults were per small page";
  }
  std::printf("huge pages: %s, %llu write faults for %llu pages\n", thp ? "yes" : "no",
              static_cast<unsigned long long>(d.write_faults), static_cast<unsigned long long>(d.pages));
}

TEST_F(DirtyTest, VanishedProcessIsDroppedWithoutLeak) {
  auto c = DirtyCollector::create({.window_ns = 1'000'000, .period_ns = 1'000'000});
  ASSERT_TRUE(c);
  auto& dirty = *c;
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    pause();
    _exit(0);
  }
  ASSERT_TRUE(dirty->track("gone", static_cast<std::uint32_t>(child)));
  auto opened = dirty->poll(monotonic_ns());  // opens the window
  EXPECT_TRUE(opened.empty());
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  auto closed = dirty->poll(monotonic_ns() + 2'000'000);
  ASSERT_EQ(closed.size(), 1u);
  EXPECT_FALSE(closed[0].second);
  EXPECT_EQ(closed[0].second.error().code, Errc::kNotFound);
  EXPECT_EQ(dirty->tracked_count(), 0u) << "a vanished VM must be untracked";
  auto n = dirty->kernel_entries();
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 0u) << "kernel map entries leaked";
}

TEST(SoftDirtyProbe, ExplainsAMissingKernelFeature) {
  Status st = probe_soft_dirty();
  if (st) GTEST_SKIP() << "this kernel has soft-dirty: nothing to explain";
  EXPECT_EQ(st.error().code, Errc::kUnsupported);
  EXPECT_NE(st.error().message().find("CONFIG_MEM_SOFT_DIRTY"), std::string::npos) << st.error().message();
  auto c = DirtyCollector::create({});
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, Errc::kUnsupported);
}

}  // namespace
}  // namespace vmtide::collectors
