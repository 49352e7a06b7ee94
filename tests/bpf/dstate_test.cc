// SPDX-License-Identifier: Apache-2.0
// D-state time per VM (StealCollector detail mode, bpf/steal.bpf.c) against
// sleeps whose length the sleeper measures itself. vfork() parks the parent
// in TASK_KILLABLE until the child exits (kernel/fork.c,
// wait_for_vfork_done()): a child that sleeps 300 ms and then _exits puts
// the tracked thread in D state for those 300 ms. The kernel's own
// sum_block_runtime (/proc/<pid>/task/<tid>/sched, with schedstats on) is
// the second witness. Also: S-state sleeps and busy threads add nothing, an
// untracked process in D adds nothing, and untracking mid-sleep leaks
// nothing.
#include <gtest/gtest.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <new>
#include <optional>
#include <string>
#include <thread>

#include "bpf_support.h"
#include "child_workload.h"
#include "procfs_stats.h"
#include "steal.h"

namespace vmtide::collectors {
namespace {

using testsupport::ChildWorkload;

constexpr int kSleeps = 5;
constexpr long kSleepNs = 300'000'000;

std::uint64_t mono_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<std::uint64_t>(ts.tv_nsec);
}

// What the test and its forked children share: mapped MAP_SHARED before the
// fork, so the children's writes are seen here.
struct Shared {
  std::uint64_t waited_ns = 0;  // the workload's own timing of its sleeps
  std::uint32_t helper_tid = 0;
};

class SharedPage {
 public:
  SharedPage() {
    void* p = mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p != MAP_FAILED) s_ = new (p) Shared{};
  }
  ~SharedPage() {
    if (s_ != nullptr) munmap(s_, sizeof(Shared));
  }
  SharedPage(const SharedPage&) = delete;
  SharedPage& operator=(const SharedPage&) = delete;
  Shared* get() const { return s_; }

 private:
  Shared* s_ = nullptr;
};

// The vfork child, in a frame of its own below the parent's (it borrows the
// parent's stack until _exit): sleeps in S state, then exits.
[[noreturn]] __attribute__((noinline)) void vfork_child(long sleep_ns) {
  const timespec ts{0, sleep_ns};
  nanosleep(&ts, nullptr);
  _exit(0);
}

// Blocks the calling thread in D state while a vfork child sleeps
// `sleep_ns`. Returns the wait as the caller measured it.
__attribute__((noinline)) std::uint64_t vfork_wait(long sleep_ns) {
  const std::uint64_t t0 = mono_ns();
  const pid_t pid = vfork();
  if (pid == 0) vfork_child(sleep_ns);
  const std::uint64_t t1 = mono_ns();
  if (pid < 0) _exit(6);
  waitpid(pid, nullptr, 0);
  return t1 - t0;
}

void* idle_thread(void*) {
  for (;;) pause();  // S state
  return nullptr;
}

void* busy_thread(void*) {
  for (;;) asm volatile("" ::: "memory");
  return nullptr;
}

// Starts a second thread in the child (the "vCPU") and records its tid in
// `shared`; runs in the child's prepare step.
void* start_helper(Shared* shared, void* (*fn)(void*)) {
  int p[2];
  if (pipe(p) != 0) _exit(7);
  struct Arg {
    int fd;
    void* (*fn)(void*);
  };
  static Arg arg;  // the child's own copy of this process image
  arg = {p[1], fn};
  pthread_t t;
  auto entry = [](void* a) -> void* {
    auto* x = static_cast<Arg*>(a);
    const auto tid = static_cast<std::uint32_t>(syscall(SYS_gettid));
    if (write(x->fd, &tid, sizeof tid) != sizeof tid) _exit(8);
    return x->fn(nullptr);
  };
  if (pthread_create(&t, nullptr, entry, &arg) != 0) _exit(9);
  std::uint32_t tid = 0;
  if (read(p[0], &tid, sizeof tid) != sizeof tid) _exit(10);
  shared->helper_tid = tid;
  return shared;
}

// Turns schedstats on for the test's lifetime and restores the previous
// setting. Kernels built without CONFIG_SCHEDSTATS have no sysctl.
class SchedstatsOn {
 public:
  SchedstatsOn() {
    auto old = read_text_file(kPath);
    if (!old) {
      why_ = "no " + std::string(kPath) + " (kernel built without CONFIG_SCHEDSTATS)";
      return;
    }
    old_ = old->substr(0, old->find('\n'));
    if (!write_value("1")) {
      why_ = std::string("cannot write ") + kPath;
      return;
    }
    on_ = true;
  }
  ~SchedstatsOn() {
    if (on_) (void)write_value(old_);
  }
  bool on() const { return on_; }
  const std::string& why() const { return why_; }

 private:
  static constexpr const char* kPath = "/proc/sys/kernel/sched_schedstats";
  static bool write_value(const std::string& v) {
    FILE* f = std::fopen(kPath, "w");
    if (f == nullptr) return false;
    const bool ok = std::fputs(v.c_str(), f) >= 0;
    return std::fclose(f) == 0 && ok;
  }
  bool on_ = false;
  std::string old_, why_;
};

// sum_block_runtime of one thread in ns: "sum_block_runtime  :  1500.123456" (ms).
std::optional<std::uint64_t> block_runtime_ns(std::uint32_t pid, std::uint32_t tid) {
  auto text = read_text_file("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/sched");
  if (!text) return std::nullopt;
  const auto at = text->find("sum_block_runtime");
  if (at == std::string::npos) return std::nullopt;
  const auto colon = text->find(':', at);
  unsigned long long ms = 0, frac = 0;
  if (colon == std::string::npos || std::sscanf(text->c_str() + colon + 1, " %llu.%6llu", &ms, &frac) != 2) {
    return std::nullopt;
  }
  return ms * 1'000'000ull + frac;
}

char thread_state(std::uint32_t pid, std::uint32_t tid) {
  auto text = read_text_file("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/stat");
  if (!text) return '?';
  const auto rp = text->rfind(')');
  return rp == std::string::npos || rp + 2 >= text->size() ? '?' : (*text)[rp + 2];
}

class DstateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (Status st = bpf::preflight(); !st) GTEST_SKIP() << "cannot load BPF here: " << st.error().message();
    auto c = StealCollector::create({.allow_procfs_fallback = false});
    ASSERT_TRUE(c) << c.error().message();
    collector_ = std::move(c).value();
    ASSERT_TRUE(collector_->detail_enabled()) << collector_->probe_result().missing;
  }

  void expect_no_entries() {
    auto m = collector_->map_stats();
    ASSERT_TRUE(m) << m.error().message();
    EXPECT_EQ(m->task_entries, 0u);
    EXPECT_EQ(m->tid_bits_set, 0u);
    EXPECT_EQ(m->tgid_bits_set, 0u);
    EXPECT_EQ(m->proc_entries, 0u);
    EXPECT_EQ(m->dsleep_entries, 0u);
  }

  std::unique_ptr<StealCollector> collector_;
};

// The vforking thread is the main thread, not the tracked vCPU: D state
// counts every thread of the process.
TEST_F(DstateTest, VforkWaitIsCountedAsDState) {
  SchedstatsOn schedstats;
  SharedPage page;
  ASSERT_NE(page.get(), nullptr);
  ChildWorkload vm([&] { return start_helper(page.get(), idle_thread); },
                   [](void* p) {
                     std::uint64_t sum = 0;
                     for (int i = 0; i < kSleeps; ++i) sum += vfork_wait(kSleepNs);
                     static_cast<Shared*>(p)->waited_ns = sum;
                   });
  ASSERT_TRUE(vm.ready());
  const std::uint32_t helper = page.get()->helper_tid;
  ASSERT_NE(helper, 0u);
  const auto block_before = schedstats.on() ? block_runtime_ns(vm.pid(), vm.pid()) : std::nullopt;
  ASSERT_TRUE(collector_->track("vm-d", vm.pid(), {helper}));
  ASSERT_TRUE(vm.run());
  auto r = collector_->read();
  ASSERT_TRUE(r) << r.error().message();
  const auto block_after = schedstats.on() ? block_runtime_ns(vm.pid(), vm.pid()) : std::nullopt;
  ASSERT_EQ(r->vms.size(), 1u);
  ASSERT_TRUE(r->vms[0].dstate_ns.has_value());
  EXPECT_EQ(r->dsleep_map_full, 0u);

  const double dstate = static_cast<double>(*r->vms[0].dstate_ns);
  const double waited = static_cast<double>(page.get()->waited_ns);
  EXPECT_GE(waited, kSleeps * static_cast<double>(kSleepNs));
  // Each sleep lies inside its timed vfork() call, which also spends time
  // in clone() before the parent blocks: milliseconds under emulation (the
  // vmtest; tens of ms on an overloaded machine), 0.05 % on the build
  // machine. The parent is blocked at least while its child sleeps, so the
  // children's sleeps are the lower bound.
  const double slept = kSleeps * static_cast<double>(kSleepNs);
  EXPECT_LE(dstate, waited + 1e6) << "D state " << dstate / 1e6 << " ms vs " << waited / 1e6 << " ms waited";
  EXPECT_GE(dstate, 0.99 * slept) << "D state " << dstate / 1e6 << " ms vs the children's sleeps " << slept / 1e6
                                  << " ms";
  std::printf("[ measured ] D state %.3f ms, vfork() waits %.3f ms (%+.2f %%)\n", dstate / 1e6, waited / 1e6,
              100.0 * (dstate / waited - 1.0));
  if (block_before && block_after) {
    const double block = static_cast<double>(*block_after - *block_before);
    // The scheduler's clock (rq_clock) and BPF's (ktime) agree to 0.1 % on
    // real hardware but drift by a few % under TCG on a loaded machine.
    EXPECT_LE(std::abs(dstate - block), 0.05 * block + 2e6)
        << "D state " << dstate / 1e6 << " ms vs sum_block_runtime " << block / 1e6 << " ms";
    std::printf("[ measured ] schedstat sum_block_runtime %.3f ms (%+.2f %%)\n", block / 1e6,
                100.0 * (dstate / block - 1.0));
  } else {
    std::printf("[ skipped  ] sum_block_runtime comparison: %s\n",
                schedstats.on() ? "no sum_block_runtime in /proc/<pid>/task/<tid>/sched" : schedstats.why().c_str());
  }

  // A delta: nothing new since.
  auto again = collector_->read();
  ASSERT_TRUE(again) << again.error().message();
  ASSERT_EQ(again->vms.size(), 1u);
  ASSERT_TRUE(again->vms[0].dstate_ns.has_value());
  EXPECT_EQ(*again->vms[0].dstate_ns, 0u);
  ASSERT_TRUE(collector_->untrack("vm-d"));
  expect_no_entries();
}

// A busy vCPU and an S-sleeping main thread accrue no D state, while an
// untracked process sleeps in D as long as the first test's VM did.
TEST_F(DstateTest, SleepAndSpinAndUntrackedDStateAddNothing) {
  SharedPage vm_page, other_page;
  ASSERT_NE(vm_page.get(), nullptr);
  ASSERT_NE(other_page.get(), nullptr);
  ChildWorkload vm([&] { return start_helper(vm_page.get(), busy_thread); },
                   [](void* p) {
                     std::uint64_t sum = 0;
                     for (int i = 0; i < kSleeps; ++i) {
                       const std::uint64_t t0 = mono_ns();
                       const timespec ts{0, kSleepNs};
                       nanosleep(&ts, nullptr);  // TASK_INTERRUPTIBLE
                       sum += mono_ns() - t0;
                     }
                     static_cast<Shared*>(p)->waited_ns = sum;
                   });
  ChildWorkload other([&] { return static_cast<void*>(other_page.get()); },
                      [](void* p) {
                        std::uint64_t sum = 0;
                        for (int i = 0; i < kSleeps; ++i) sum += vfork_wait(kSleepNs);
                        static_cast<Shared*>(p)->waited_ns = sum;
                      });
  ASSERT_TRUE(vm.ready());
  ASSERT_TRUE(other.ready());
  ASSERT_TRUE(collector_->track("vm-s", vm.pid(), {vm_page.get()->helper_tid}));
  bool other_ok = false;
  std::thread t([&] { other_ok = other.run(); });
  const bool vm_ok = vm.run();
  t.join();
  ASSERT_TRUE(vm_ok);
  ASSERT_TRUE(other_ok);
  auto r = collector_->read();
  ASSERT_TRUE(r) << r.error().message();
  ASSERT_EQ(r->vms.size(), 1u);
  ASSERT_TRUE(r->vms[0].dstate_ns.has_value());
  EXPECT_GE(vm_page.get()->waited_ns, kSleeps * static_cast<std::uint64_t>(kSleepNs));
  EXPECT_GE(other_page.get()->waited_ns, kSleeps * static_cast<std::uint64_t>(kSleepNs));
  // Page faults and the like may block the VM's threads in D for a few
  // microseconds; the untracked process's 1.5 s must not show up.
  EXPECT_LT(*r->vms[0].dstate_ns, 5'000'000u);
  std::printf("[ measured ] tracked S-sleeps %.3f ms -> D state %.3f ms; untracked vfork() waits %.3f ms\n",
              vm_page.get()->waited_ns / 1e6, *r->vms[0].dstate_ns / 1e6, other_page.get()->waited_ns / 1e6);
  ASSERT_TRUE(collector_->untrack("vm-s"));
  expect_no_entries();
}

// Untracked while a thread sleeps in D: its entry goes with the VM, and the
// wakeup (no longer tracked) brings nothing back.
TEST_F(DstateTest, UntrackMidSleepLeavesNothing) {
  SharedPage page;
  ASSERT_NE(page.get(), nullptr);
  ChildWorkload vm([&] { return start_helper(page.get(), idle_thread); },
                   [](void* p) { static_cast<Shared*>(p)->waited_ns = vfork_wait(2 * kSleepNs); });
  ASSERT_TRUE(vm.ready());
  ASSERT_TRUE(collector_->track("vm-u", vm.pid(), {page.get()->helper_tid}));
  auto m = collector_->map_stats();
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_EQ(m->tgid_bits_set, 1u);
  EXPECT_EQ(m->proc_entries, 1u);
  bool ok = false;
  std::thread t([&] { ok = vm.run(); });
  // Await the main thread's D-state entry (the sleep lasts 600 ms). /proc
  // shows 'D' from set_current_state() on, a little before the thread
  // leaves the CPU and the entry exists: await both. map_stats() is slow
  // (it reads the bitmaps word by word): only once the thread shows 'D'.
  char state = '?';
  std::size_t entries = 0;
  for (int i = 0; i < 5000 && entries != 1; ++i) {
    state = thread_state(vm.pid(), vm.pid());
    if (state == 'D') {
      m = collector_->map_stats();
      ASSERT_TRUE(m) << m.error().message();
      entries = m->dsleep_entries;
    }
    if (entries != 1) std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  EXPECT_EQ(state, 'D');
  EXPECT_EQ(entries, 1u) << "no D-state entry for a thread in vfork()";
  ASSERT_TRUE(collector_->untrack("vm-u"));
  expect_no_entries();
  t.join();
  EXPECT_TRUE(ok);
  expect_no_entries();
}

TEST(DstateDetailOff, NotMeasuredSaysSo) {
  if (Status st = bpf::preflight(); !st) GTEST_SKIP() << "cannot load BPF here: " << st.error().message();
  auto c = StealCollector::create({.detail = false, .allow_procfs_fallback = false});
  ASSERT_TRUE(c) << c.error().message();
  SharedPage page;
  ASSERT_NE(page.get(), nullptr);
  ChildWorkload vm([&] { return start_helper(page.get(), idle_thread); },
                   [](void* p) { static_cast<Shared*>(p)->waited_ns = vfork_wait(kSleepNs / 3); });
  ASSERT_TRUE(vm.ready());
  ASSERT_TRUE((*c)->track("vm-o", vm.pid(), {page.get()->helper_tid}));
  ASSERT_TRUE(vm.run());
  auto r = (*c)->read();
  ASSERT_TRUE(r) << r.error().message();
  ASSERT_EQ(r->vms.size(), 1u);
  EXPECT_FALSE(r->vms[0].has_detail);
  EXPECT_FALSE(r->vms[0].dstate_ns.has_value()) << "D state reported without the sched tracepoints";
}

}  // namespace
}  // namespace vmtide::collectors
