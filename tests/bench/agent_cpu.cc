// SPDX-License-Identifier: Apache-2.0
// scripts/bench agent-cpu: what the agent costs a host running many VMs.
// 200 synthetic VMs (processes named qemu-system-x86, each with four threads
// named "CPU n/KVM"; a quarter of them dirty memory, the rest mostly sleep)
// are tracked by the real agent at 1 Hz for 60 s while a subscriber counts
// the samples. Measured: the agent's CPU time as a share of one core (from
// /proc/<pid>/stat), its peak RSS (VmHWM) and the samples delivered per
// second. VMTIDE_BENCH_SECONDS and VMTIDE_BENCH_VMS shorten it for a try.
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <dirent.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <zmq.hpp>

#include "bench_util.h"
#include "vmtide/wire/zmq_io.h"

namespace vmtide::bench {
namespace {

using Clock = std::chrono::steady_clock;

// One synthetic VM: renames itself like QEMU and its threads like vCPUs.
[[noreturn]] void fake_vm(int index, bool dirty) {
  prctl(PR_SET_NAME, "qemu-system-x86");
  prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the benchmark
  std::vector<std::thread> vcpus;
  for (int v = 0; v < 4; ++v) {
    vcpus.emplace_back([v, dirty, index] {
      char name[16];
      std::snprintf(name, sizeof name, "CPU %d/KVM", v);
      pthread_setname_np(pthread_self(), name);
      if (dirty && v == 0) {
        // ~500 pages/s over 16 MiB: a guest with a moderate write load.
        const std::size_t pages = 4096;
        auto* mem = static_cast<char*>(mmap(nullptr, pages * 4096, PROT_READ | PROT_WRITE,
                                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
        for (std::size_t i = 0;; ++i) {
          mem[((i * 2654435761u + static_cast<std::size_t>(index)) % pages) * 4096]++;
          if (i % 50 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
      }
      for (;;) pause();
    });
  }
  for (auto& t : vcpus) t.join();
  _exit(0);
}

using bench::proc_cpu_seconds;

double peak_rss_mib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string key;
  double kib = 0;
  while (in >> key) {
    if (key == "VmHWM:") in >> kib;
  }
  return kib / 1024.0;
}

// The baseline, measured in the same run: what a plain /proc poller pays
// for the same VMs once a second (each VM's /proc/<pid>/stat for CPU and
// RSS, and each of its threads' schedstat for run-queue wait: tier 1's
// information without BPF, with open/read/close and no caching). Returns
// its CPU time as a share of one core (thread CPU time over wall time).
std::string slurp(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  return out;
}

double procfs_poll_cpu_pct(const std::vector<pid_t>& vms, int seconds) {
  auto thread_cpu = [] {
    timespec t{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
  };
  const double c0 = thread_cpu();
  const auto t0 = Clock::now();
  std::size_t bytes = 0;
  for (int tick = 0; tick < seconds; ++tick) {
    for (pid_t p : vms) {
      const std::string dir = "/proc/" + std::to_string(p);
      bytes += slurp(dir + "/stat").size();
      if (DIR* d = opendir((dir + "/task").c_str())) {
        while (dirent* e = readdir(d)) {
          if (e->d_name[0] != '.') bytes += slurp(dir + "/task/" + e->d_name + "/schedstat").size();
        }
        closedir(d);
      }
    }
    std::this_thread::sleep_until(t0 + std::chrono::seconds(tick + 1));
  }
  const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
  if (bytes == 0) return 0;
  return 100.0 * (thread_cpu() - c0) / wall;
}

int run() {
  const int seconds = std::getenv("VMTIDE_BENCH_SECONDS") ? std::atoi(std::getenv("VMTIDE_BENCH_SECONDS")) : 60;
  const int nvms = std::getenv("VMTIDE_BENCH_VMS") ? std::atoi(std::getenv("VMTIDE_BENCH_VMS")) : 200;
  Report report("agent-cpu");
  std::vector<pid_t> vms;
  for (int i = 0; i < nvms; ++i) {
    pid_t p = fork();
    if (p == 0) fake_vm(i, i % 4 == 0);
    vms.push_back(p);
  }
  progress("agent-cpu: %d synthetic VMs (4 vCPU threads each, a quarter dirtying)", nvms);

  int fds[2];
  if (pipe(fds) != 0) return 1;
  pid_t agent = fork();
  if (agent == 0) {
    dup2(fds[1], 2);
    close(fds[0]);
    execl(VMTIDE_BINARY_DIR "/bin/vmtide-agent", "vmtide-agent", "--endpoint", "tcp://127.0.0.1:*", "--discovery",
          "procfs", "--metrics", "off", "--interval", "1", "--wait-subscriber", "30", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  FILE* log = fdopen(fds[0], "r");
  std::string ep;
  char line[4096];
  static const std::regex re("publishing on (tcp://[0-9.]+:[0-9]+)");
  while (ep.empty() && fgets(line, sizeof line, log) != nullptr) {
    std::cmatch m;
    if (std::regex_search(line, m, re)) ep = m[1].str();
  }
  // Keep draining the agent's log so it never blocks on a full pipe.
  std::thread drain([log] {
    char buf[4096];
    while (fgets(buf, sizeof buf, log) != nullptr) {
    }
  });
  auto cleanup = [&] {
    kill(agent, SIGTERM);
    waitpid(agent, nullptr, 0);
    drain.join();
    fclose(log);
    for (pid_t p : vms) kill(p, SIGKILL);
    for (pid_t p : vms) waitpid(p, nullptr, 0);
  };
  if (ep.empty()) {
    progress("agent-cpu: the agent did not start");
    cleanup();
    return 1;
  }

  zmq::context_t ctx;
  zmq::socket_t sub(ctx, zmq::socket_type::sub);
  sub.set(zmq::sockopt::subscribe, "vmtide.v1.vm.");
  sub.set(zmq::sockopt::rcvhwm, 1000000);
  sub.connect(ep);
  // Warm-up: until a tick carries every VM (discovery of all 200 done).
  std::size_t samples = 0;
  const auto warm_deadline = Clock::now() + std::chrono::seconds(60);
  std::uint64_t last_mono = 0;
  std::size_t in_tick = 0;
  while (Clock::now() < warm_deadline) {
    auto m = wire::recv_message(sub);
    if (!m || !m->has_value()) continue;
    if ((*m)->env.mono_ns - last_mono > 500'000'000ULL) in_tick = 0;  // a new tick
    last_mono = (*m)->env.mono_ns;
    if (++in_tick >= static_cast<std::size_t>(nvms)) break;
  }
  const double cpu0 = proc_cpu_seconds(agent);
  const auto t0 = Clock::now();
  const auto end = t0 + std::chrono::seconds(seconds);
  while (Clock::now() < end) {
    zmq::pollitem_t item{sub.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, std::chrono::milliseconds(200)) == 0) continue;
    while (true) {
      auto m = wire::recv_message(sub, zmq::recv_flags::dontwait);
      if (!m || !m->has_value()) break;
      ++samples;
    }
  }
  const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
  const double cpu = proc_cpu_seconds(agent) - cpu0;
  const double rss = peak_rss_mib(agent);
  // The baseline, with the agent stopped so the two do not share the CPUs.
  kill(agent, SIGSTOP);
  const int base_seconds = std::min(seconds, 20);
  progress("agent-cpu: baseline, a plain /proc poller over the same VMs for %d s", base_seconds);
  const double base = procfs_poll_cpu_pct(vms, base_seconds);
  kill(agent, SIGCONT);
  cleanup();
  report.metric("procfs_poll_cpu_pct", base);
  if (base > 0) report.metric("ratio_to_procfs_poll", (100.0 * cpu / wall) / base);
  report.note("baseline", "procfs_poll_cpu_pct: the same VMs polled once a second through /proc/<pid>/stat and "
                          "every thread's schedstat, in this process, for up to 20 s after the agent's window");

  report.metric("agent_cpu_pct_of_core", 100.0 * cpu / wall);
  report.metric("agent_peak_rss_mib", rss);
  report.metric("samples_per_s", static_cast<double>(samples) / wall);
  report.metric("vms", nvms);
  report.metric("seconds", wall);
  progress("agent-cpu: %.3f %% of a core, peak RSS %.1f MiB, %.0f samples/s over %.0f s", 100.0 * cpu / wall, rss,
           static_cast<double>(samples) / wall, wall);
  report.print();
  return 0;
}

}  // namespace
}  // namespace vmtide::bench

int main() { return vmtide::bench::run(); }
