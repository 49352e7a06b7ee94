// SPDX-License-Identifier: Apache-2.0
// scripts/bench probe-overhead: what vmtide's probes cost the host. The worst
// case for scheduler tracepoints is a context-switch storm: two threads
// pinned to one CPU ping-ponging a byte over pipes. Each configuration is
// measured in interleaved repetitions (A B C A B C ...) so drift and noise
// hit all alike; medians are compared with the detached baseline measured
// in the same run.
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <bpf/libbpf.h>

#include "bench_util.h"
#include "bpf_support.h"
#include "ctxsw.h"
#include "procfs_stats.h"
#include "steal.h"
#include "dirty.h"
#include "empty.skel.h"
#include "vmtide/bpf/skeleton.h"

namespace vmtide::bench {
namespace {

using Clock = std::chrono::steady_clock;

void pin_self(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

// ns per round trip of `rounds` ping-pongs between two threads on CPU 0.
// `on_start` receives the tids of both threads before the clock starts.
double ping_pong_ns(int rounds, const std::function<void(pid_t, pid_t)>& on_start) {
  int ab[2], ba[2];
  if (pipe(ab) != 0 || pipe(ba) != 0) std::abort();
  pid_t peer_tid = 0;
  int ready[2];
  if (pipe(ready) != 0) std::abort();
  std::thread peer([&] {
    pin_self(0);
    peer_tid = gettid();
    char b = 'r';
    if (write(ready[1], &b, 1) != 1) return;
    while (read(ab[0], &b, 1) == 1 && b != 'q') {
      if (write(ba[1], &b, 1) != 1) return;
    }
  });
  pin_self(0);
  char b;
  if (read(ready[0], &b, 1) != 1) std::abort();
  on_start(gettid(), peer_tid);
  for (int i = 0; i < 1000; ++i) {  // warm up caches and the scheduler
    if (write(ab[1], "x", 1) != 1 || read(ba[0], &b, 1) != 1) std::abort();
  }
  const auto t0 = Clock::now();
  for (int i = 0; i < rounds; ++i) {
    if (write(ab[1], "x", 1) != 1 || read(ba[0], &b, 1) != 1) std::abort();
  }
  const auto t1 = Clock::now();
  if (write(ab[1], "q", 1) != 1) std::abort();
  peer.join();
  for (int fd : {ab[0], ab[1], ba[0], ba[1], ready[0], ready[1]}) close(fd);
  return std::chrono::duration<double, std::nano>(t1 - t0).count() / rounds;
}

struct Config {
  std::string name;
  // Loads the probes; returns an owner whose destruction detaches them, or
  // an error. `track` later receives the benchmark's tids.
  std::function<Result<std::shared_ptr<void>>()> load;
  std::function<void(void*, pid_t, pid_t)> track;
};

// Per-page cost of the write fault soft-dirty tracking adds: write one
// byte to each resident page with the soft-dirty bits set (no fault) and
// after a reset (one fault each, and the dirty program counting it).
std::optional<double> dirty_fault_ns(std::string* why) {
  if (Status st = collectors::probe_soft_dirty(); !st) {
    *why = st.error().message();
    return std::nullopt;
  }
  auto dc = collectors::DirtyCollector::create({});
  if (!dc) {
    *why = dc.error().message();
    return std::nullopt;
  }
  constexpr std::size_t kPages = 16384;
  auto* p = static_cast<char*>(mmap(nullptr, kPages * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  madvise(p, kPages * 4096, MADV_NOHUGEPAGE);
  for (std::size_t i = 0; i < kPages; ++i) p[i * 4096] = 1;
  if (!(*dc)->track("self", static_cast<std::uint32_t>(getpid()))) return std::nullopt;
  auto touch = [&] {
    const auto t0 = Clock::now();
    for (std::size_t i = 0; i < kPages; ++i) p[i * 4096]++;
    return std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / kPages;
  };
  std::vector<double> deltas;
  for (int rep = 0; rep < 7; ++rep) {
    const double clean = touch();  // pages already writable and soft-dirty
    if (!(*dc)->begin_window("self")) break;
    const double faulting = touch();
    (void)(*dc)->end_window("self");
    deltas.push_back(faulting - clean);
  }
  munmap(p, kPages * 4096);
  return median(deltas);
}

// ns per thread to read 200 idle threads' counters: {iterator, files}.
std::optional<std::pair<double, double>> iter_vs_schedstat() {
  constexpr int kThreads = 200, kReps = 50;
  std::vector<std::thread> threads;
  std::vector<std::uint32_t> tids(kThreads);
  int stop[2];
  if (pipe(stop) != 0) return std::nullopt;
  std::atomic<int> started{0};
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      tids[static_cast<std::size_t>(i)] = static_cast<std::uint32_t>(gettid());
      started.fetch_add(1);
      char b;
      (void)!read(stop[0], &b, 1);  // blocks until the pipe closes
    });
  }
  while (started.load() < kThreads) std::this_thread::yield();
  collectors::StealCollector::Options o;
  o.detail = false;
  o.allow_procfs_fallback = false;
  auto c = collectors::StealCollector::create(o);
  std::optional<std::pair<double, double>> out;
  if (c && (*c)->track("bench", static_cast<std::uint32_t>(getpid()), tids)) {
    std::vector<double> iter, files;
    for (int rep = 0; rep < kReps; ++rep) {
      auto t0 = Clock::now();
      auto r = (*c)->read();
      auto t1 = Clock::now();
      if (!r) break;
      std::uint64_t sink = 0;
      for (std::uint32_t tid : tids) {
        auto text = collectors::read_text_file("/proc/self/task/" + std::to_string(tid) + "/schedstat");
        if (text) {
          if (auto st = collectors::parse_schedstat(*text)) sink += st->wait_ns;
        }
      }
      auto t2 = Clock::now();
      (void)sink;
      iter.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count() / kThreads);
      files.push_back(std::chrono::duration<double, std::nano>(t2 - t1).count() / kThreads);
    }
    if (!iter.empty()) out = std::make_pair(median(iter), median(files));
  }
  close(stop[1]);
  for (auto& t : threads) t.join();
  close(stop[0]);
  return out;
}

int run() {
  Report report("probe-overhead");
  if (Status st = bpf::preflight(); !st) {
    progress("probe-overhead: %s", st.error().message().c_str());
    report.note("skipped", st.error().message());
    report.print();
    return 0;
  }
  bpf::install_libbpf_logging();
  constexpr int kRounds = 100000;
  constexpr int kReps = 9;

  std::vector<Config> configs;
  configs.push_back({"detached", [] { return Result<std::shared_ptr<void>>(std::shared_ptr<void>()); },
                     [](void*, pid_t, pid_t) {}});
  configs.push_back({"empty",
                     []() -> Result<std::shared_ptr<void>> {
                       auto s = bpf::Skeleton<empty_bpf>::open_load_attach("empty");
                       if (!s) return std::move(s).error();
                       return std::shared_ptr<void>(std::make_shared<bpf::Skeleton<empty_bpf>>(std::move(s).value()));
                     },
                     [](void*, pid_t, pid_t) {}});
  auto ctxsw_load = []() -> Result<std::shared_ptr<void>> {
    auto c = collectors::CtxswCounter::create();
    if (!c) return std::move(c).error();
    return std::shared_ptr<void>(std::shared_ptr<collectors::CtxswCounter>(std::move(c).value()));
  };
  configs.push_back({"ctxsw_untracked", ctxsw_load, [](void*, pid_t, pid_t) {}});
  configs.push_back({"ctxsw_tracked", ctxsw_load, [](void* owner, pid_t, pid_t) {
                       (void)static_cast<collectors::CtxswCounter*>(owner)->track(static_cast<std::uint32_t>(getpid()));
                     }});

  // The steal collector in detail mode: what every other task pays
  // (untracked) and what a VM pays (its threads tracked).
  auto steal_load = []() -> Result<std::shared_ptr<void>> {
    collectors::StealCollector::Options o;
    o.detail = true;
    o.allow_procfs_fallback = false;
    auto c = collectors::StealCollector::create(o);
    if (!c) return std::move(c).error();
    return std::shared_ptr<void>(std::shared_ptr<collectors::StealCollector>(std::move(c).value()));
  };
  configs.push_back({"steal_untracked", steal_load, [](void*, pid_t, pid_t) {}});
  configs.push_back({"steal_tracked", steal_load, [](void* owner, pid_t a, pid_t b) {
                       auto* c = static_cast<collectors::StealCollector*>(owner);
                       (void)c->track("bench", static_cast<std::uint32_t>(getpid()),
                                      {static_cast<std::uint32_t>(a), static_cast<std::uint32_t>(b)});
                     }});

  std::map<std::string, std::vector<double>> samples;
  for (int rep = 0; rep < kReps; ++rep) {
    for (const auto& c : configs) {
      auto owner = c.load();
      if (!owner) {
        progress("  %s: cannot load: %s", c.name.c_str(), owner.error().message().c_str());
        report.note(c.name, owner.error().message());
        continue;
      }
      const double ns = ping_pong_ns(kRounds, [&](pid_t a, pid_t b) { c.track(owner->get(), a, b); });
      samples[c.name].push_back(ns);
    }
    progress("  repetition %d/%d: detached %.0f ns per round trip", rep + 1, kReps, samples["detached"].back());
  }
  const double base = median(samples["detached"]);
  report.metric("detached_round_trip_ns", base);
  auto pct = [&](const std::string& name) { return 100.0 * (median(samples[name]) / base - 1.0); };
  for (const auto& c : configs) {
    if (c.name == "detached" || samples[c.name].empty()) continue;
    report.metric(c.name + "_round_trip_ns", median(samples[c.name]));
    report.metric(c.name + "_slowdown_pct", pct(c.name));
    progress("  %-16s median %.0f ns per round trip (%+.1f %%)", c.name.c_str(), median(samples[c.name]),
             pct(c.name));
  }
  if (!samples["empty"].empty()) report.metric("floor_pct", pct("empty"));
  if (!samples["steal_untracked"].empty()) report.metric("slowdown_pct", pct("steal_untracked"));
  if (!samples["steal_tracked"].empty()) report.metric("tracked_slowdown_pct", pct("steal_tracked"));

  // Tier 1: reading run_delay of N vCPU-like threads through the task
  // iterator, against opening their schedstat files, side by side.
  if (auto it = iter_vs_schedstat()) {
    report.metric("iter_ns_per_thread", it->first);
    report.metric("schedstat_poll_ns_per_thread", it->second);
    report.metric("iter_speedup", it->second / it->first);
    progress("  tier 1: iterator %.0f ns per thread, schedstat files %.0f ns per thread (%.1fx)", it->first,
             it->second, it->second / it->first);
  }

  std::string why;
  if (auto f = dirty_fault_ns(&why)) {
    report.metric("dirty_tracking_fault_ns", *f);
    progress("  dirty tracking: %.0f ns per first write", *f);
  } else {
    report.note("dirty_tracking_fault_ns", why);
    progress("  dirty tracking: not measured here: %s", why.c_str());
  }
  report.print();
  return 0;
}

}  // namespace
}  // namespace vmtide::bench

int main() { return vmtide::bench::run(); }
