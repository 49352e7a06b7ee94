// SPDX-License-Identifier: Apache-2.0
// Loads bpf/ctxsw.bpf.c into the kernel, drives known activity in child
// processes and checks the counts against the kernel's own per-task
// counters (nvcsw/nivcsw, shown in /proc/<pid>/status).
#include <dirent.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>

#include "bpf_support.h"
#include "ctxsw.h"

namespace vmtide::collectors {
namespace {

struct KernelCounts {
  std::uint64_t voluntary = 0;
  std::uint64_t involuntary = 0;
};

// Ground truth: the kernel increments these per thread in __schedule(),
// right where sched_switch fires; the BPF program counts per process, so
// sum over every thread (a sanitizer runtime may add one to a child).
KernelCounts kernel_counts(pid_t pid) {
  KernelCounts k;
  const std::string task_dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = opendir(task_dir.c_str());
  if (d == nullptr) return k;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream in(task_dir + "/" + e->d_name + "/status");
    std::string key;
    std::uint64_t v = 0;
    while (in >> key) {
      if (key == "voluntary_ctxt_switches:" && in >> v) k.voluntary += v;
      else if (key == "nonvoluntary_ctxt_switches:" && in >> v) k.involuntary += v;
    }
  }
  closedir(d);
  return k;
}

void pin_to_cpu0(pid_t pid) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(0, &set);
  ASSERT_EQ(sched_setaffinity(pid, sizeof set, &set), 0);
}

// A child process that answers each byte on `in` with one byte on `out`,
// optionally spinning `spin_iters` first; it exits on 'q' or EOF.
class Child {
 public:
  explicit Child(long spin_iters = 0) {
    int p2c[2], c2p[2];
    if (pipe(p2c) != 0 || pipe(c2p) != 0) std::abort();
    pid_ = fork();
    if (pid_ == 0) {
      close(p2c[1]);
      close(c2p[0]);
      char b;
      while (read(p2c[0], &b, 1) == 1 && b != 'q') {
        // The empty asm is a side effect the compiler must keep: the loop spins.
        for (long i = 0; i < spin_iters; ++i) asm volatile("" ::: "memory");
        if (write(c2p[1], &b, 1) != 1) _exit(2);
      }
      _exit(0);
    }
    close(p2c[0]);
    close(c2p[1]);
    to_ = p2c[1];
    from_ = c2p[0];
  }
  ~Child() {
    char q = 'q';
    (void)!write(to_, &q, 1);
    close(to_);
    close(from_);
    int status;
    waitpid(pid_, &status, 0);
  }
  pid_t pid() const { return pid_; }
  void send() const { ASSERT_EQ(write(to_, "x", 1), 1); }
  void recv() const {
    char b;
    ASSERT_EQ(read(from_, &b, 1), 1);
  }
  void ping_pong() const {
    send();
    recv();
  }

 private:
  pid_t pid_ = -1;
  int to_ = -1;
  int from_ = -1;
};

// The test process and its children all run on CPU 0. While the test
// runs, no child is running, and every switch a child made has completed:
// the kernel bumps nvcsw/nivcsw and fires sched_switch in the same
// __schedule() call on that CPU. So two equal kernel reads around a BPF read
// make a consistent snapshot, and any disagreement inside one is real.
class CtxswTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (Status st = bpf::preflight(); !st) GTEST_SKIP() << "cannot load BPF here: " << st.error().message();
    auto c = CtxswCounter::create();
    ASSERT_TRUE(c) << c.error().message();
    counter_ = std::move(c).value();
    ASSERT_EQ(sched_getaffinity(0, sizeof saved_, &saved_), 0);
    pin_to_cpu0(0);
  }
  void TearDown() override { sched_setaffinity(0, sizeof saved_, &saved_); }

  // Starts tracking `pid` and returns the kernel's counts at that instant.
  KernelCounts track(pid_t pid) {
    for (int attempt = 0; attempt < 1000; ++attempt) {
      const KernelCounts k1 = kernel_counts(pid);
      EXPECT_TRUE(counter_->track(static_cast<std::uint32_t>(pid)));
      const KernelCounts k2 = kernel_counts(pid);
      if (k1.voluntary == k2.voluntary && k1.involuntary == k2.involuntary) return k1;
      EXPECT_TRUE(counter_->untrack(static_cast<std::uint32_t>(pid)));  // the child ran meanwhile: retry
      EXPECT_TRUE(counter_->read_all());  // the slot is reusable after the next read
    }
    ADD_FAILURE() << "could not take a consistent baseline for pid " << pid;
    return {};
  }

  // BPF counts since track(), checked against the kernel's delta.
  CtxswCounts expect_matches_kernel(pid_t pid, KernelCounts before) {
    for (int attempt = 0; attempt < 1000; ++attempt) {
      const KernelCounts k1 = kernel_counts(pid);
      auto r = counter_->read(static_cast<std::uint32_t>(pid));
      const KernelCounts k2 = kernel_counts(pid);
      if (!r) {
        ADD_FAILURE() << r.error().message();
        return {};
      }
      if (k1.voluntary != k2.voluntary || k1.involuntary != k2.involuntary) continue;  // the child ran: retry
      const CtxswCounts b = *r;
      const std::uint64_t kv = k1.voluntary - before.voluntary, ki = k1.involuntary - before.involuntary;
      if (counter_->exact_voluntary_split()) {
        EXPECT_EQ(b.out_voluntary, kv) << "pid " << pid;
        EXPECT_EQ(b.out_involuntary, ki) << "pid " << pid;
      } else {
        EXPECT_EQ(b.out_total(), kv + ki) << "pid " << pid;
      }
      return b;
    }
    ADD_FAILURE() << "no consistent snapshot of pid " << pid;
    return {};
  }

  std::unique_ptr<CtxswCounter> counter_;
  cpu_set_t saved_{};
};

TEST_F(CtxswTest, PingPongCountsMatchKernel) {
  constexpr int kRounds = 2000;
  Child child;
  pin_to_cpu0(child.pid());
  const KernelCounts before = track(child.pid());
  // Between answering request i and request i+1 the child must leave the
  // CPU for the parent, by blocking in read() (voluntary) or by being
  // preempted by the parent it just woke (involuntary), so every round
  // costs the child at least one switch-out.
  for (int i = 0; i < kRounds; ++i) child.ping_pong();
  const CtxswCounts c = expect_matches_kernel(child.pid(), before);
  EXPECT_GE(c.out_total(), static_cast<std::uint64_t>(kRounds));
  EXPECT_GT(c.out_voluntary, 0u);
  // Each switch-out is followed by a switch-in when the child runs again.
  EXPECT_LE(c.in, c.out_total() + 1);
  EXPECT_GE(c.in + 1, c.out_total());
}

TEST_F(CtxswTest, PreemptionCountsAsInvoluntary) {
  // Two CPU-bound children on one CPU preempt each other at every slice.
  Child a(400'000'000), b(400'000'000);
  pin_to_cpu0(a.pid());
  pin_to_cpu0(b.pid());
  const KernelCounts ka = track(a.pid()), kb = track(b.pid());
  a.send();
  b.send();
  a.recv();
  b.recv();
  const CtxswCounts ca = expect_matches_kernel(a.pid(), ka);
  const CtxswCounts cb = expect_matches_kernel(b.pid(), kb);
  EXPECT_GT(ca.out_involuntary + cb.out_involuntary, 0u) << "two spinners on one CPU were never preempted";
}

TEST_F(CtxswTest, UntrackedProcessIsNotCounted) {
  Child child;
  pin_to_cpu0(child.pid());
  EXPECT_FALSE(counter_->read(static_cast<std::uint32_t>(child.pid())));
  for (int i = 0; i < 100; ++i) child.ping_pong();
  // Tracking starts from zero, whatever ran before: none of the 100 rounds'
  // switches (at least 100) is counted. The child answered the last round
  // and is on its way back into read(): at most that one switch-out can
  // fall after tracking starts (it did under TCG in the vmtest), and the
  // kernel then counts it too (expect_matches_kernel).
  const KernelCounts before = track(child.pid());
  EXPECT_LE(expect_matches_kernel(child.pid(), before).out_total(), 1u);
  ASSERT_TRUE(counter_->untrack(static_cast<std::uint32_t>(child.pid())));
  EXPECT_FALSE(counter_->untrack(static_cast<std::uint32_t>(child.pid())));
}

TEST_F(CtxswTest, ReusedSlotStartsAtZero) {
  Child first, second;
  pin_to_cpu0(first.pid());
  pin_to_cpu0(second.pid());
  // A table of one slot: the second process must get the first one's slot.
  auto small = CtxswCounter::create({.max_tracked = 1});
  ASSERT_TRUE(small) << small.error().message();
  counter_ = std::move(small).value();
  track(first.pid());
  for (int i = 0; i < 50; ++i) first.ping_pong();
  EXPECT_FALSE(counter_->track(static_cast<std::uint32_t>(second.pid()))) << "table of 1 accepted a second pid";
  ASSERT_TRUE(counter_->untrack(static_cast<std::uint32_t>(first.pid())));
  // Held back until the next read (a program may still be writing it)...
  EXPECT_FALSE(counter_->track(static_cast<std::uint32_t>(second.pid()))) << "slot reused before a read";
  ASSERT_TRUE(counter_->read_all());
  // ...then reused, from zero.
  const KernelCounts before = track(second.pid());
  for (int i = 0; i < 50; ++i) second.ping_pong();
  const CtxswCounts c = expect_matches_kernel(second.pid(), before);
  EXPECT_GE(c.out_total(), 50u);
}

TEST(BpfSupport, TracepointArityFromKernelBtf) {
  if (Status st = bpf::preflight(); !st) GTEST_SKIP() << "cannot load BPF here: " << st.error().message();
  auto n = bpf::tracepoint_arity("sched_switch");
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_TRUE(*n == 3 || *n == 4) << *n;
  EXPECT_FALSE(bpf::tracepoint_arity("no_such_tracepoint_vmtide"));
}

}  // namespace
}  // namespace vmtide::collectors
