// SPDX-License-Identifier: Apache-2.0
// scripts/bench load: one real vmtide-controller process subscribed to 1 000
// simulated agents (one process here, one XPUB socket and the agents' own
// Publisher per agent) each publishing, at 1 Hz, a host sample, 20 VM
// samples and a heartbeat, for 60 s (VMTIDE_LOAD_SECONDS for shorter local
// runs; VMTIDE_LOAD_AGENTS and VMTIDE_LOAD_VMS change the shape).
//
// Measured on the controller: CPU as % of one core over the window (utime +
// stime from /proc/PID/stat), peak RSS (VmHWM), RSS 20 s into the window,
// halfway and at its end (memory must stay bounded), and the messages it lost: seq gaps
// as its model counts them (health.json on its control socket, "lost") and,
// as a cross-check that also sees a lost tail, published minus accepted.
//
// Baseline, in the same run and at the same rate: a bare ZeroMQ SUB
// process (this binary with --drain) that receives the same stream and
// throws it away: what the transport alone costs. `ctrl_cpu_ratio` is the
// controller's CPU over the drain's.
//
// Metric keys (contract): lost_msgs, peak_rss_mib, ctrl_cpu_pct.
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>
#include <zmq.hpp>

#include "bench_util.h"
#include "publisher.h"
#include "vmtide/wire/messages.h"

namespace {

using namespace vmtide;
namespace fs = std::filesystem;

constexpr std::uint64_t kSecond = 1'000'000'000ULL;

int env_int(const char* name, int def) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return def;
  return std::atoi(v);
}

void sleep_until_mono(std::uint64_t t_ns) {
  timespec ts{static_cast<time_t>(t_ns / kSecond), static_cast<long>(t_ns % kSecond)};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
  }
}

using bench::proc_cpu_seconds;
using bench::proc_status_mib;

pid_t spawn(const std::vector<std::string>& args, const std::string& log_path) {
  const pid_t pid = fork();
  if (pid < 0) {
    std::perror("fork");
    std::exit(1);
  }
  if (pid == 0) {
    const int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

// Never signals pid 0 or -1.
void stop(pid_t pid) {
  if (pid <= 0) return;
  kill(pid, SIGTERM);
  for (int i = 0; i < 50; ++i) {
    if (waitpid(pid, nullptr, WNOHANG) == pid) return;
    usleep(100'000);
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
}

bool alive(pid_t pid) { return waitpid(pid, nullptr, WNOHANG) == 0; }

// --drain FILE: the baseline subscriber. One SUB socket connected to every
// endpoint in FILE, receiving and discarding until SIGTERM.
std::atomic<bool> g_stop{false};
void on_term(int) { g_stop.store(true); }

int drain(const std::string& endpoints_file) {
  struct sigaction sa {};
  sa.sa_handler = on_term;
  sigaction(SIGTERM, &sa, nullptr);
  zmq::context_t ctx;
  zmq::socket_t sub(ctx, zmq::socket_type::sub);
  sub.set(zmq::sockopt::linger, 0);
  sub.set(zmq::sockopt::rcvhwm, 100000);  // as the controller's ingest
  sub.set(zmq::sockopt::subscribe, "");
  std::ifstream in(endpoints_file);
  for (std::string e; std::getline(in, e);) {
    if (!e.empty()) sub.connect(e);
  }
  zmq::message_t msg;
  zmq::pollitem_t item{sub.handle(), 0, ZMQ_POLLIN, 0};
  while (!g_stop.load()) {
    try {
      if (zmq::poll(&item, 1, std::chrono::milliseconds{200}) <= 0) continue;
      while (sub.recv(msg, zmq::recv_flags::dontwait)) {
      }
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) return 1;
    }
  }
  return 0;
}

// One simulated host: the agent's real Publisher and its VMs' loads.
struct Agent {
  std::unique_ptr<agent::Publisher> pub;
  double host_load = 0;
  std::vector<double> vm_load;
};

wire::HostSample host_sample(const Agent& a, std::uint64_t vms) {
  wire::HostSample hs;
  hs.cpus = 64;
  hs.cpu_busy_ns = static_cast<std::uint64_t>(a.host_load * 64e9);
  hs.mem_total_bytes = 512ULL << 30;
  hs.mem_avail_bytes = 256ULL << 30;
  hs.load1 = a.host_load * 64;
  hs.load5 = hs.load1;
  hs.load15 = hs.load1;
  hs.vms = static_cast<std::uint32_t>(vms);
  hs.link_bps = 10'000'000'000ULL;
  return hs;
}

wire::VmSample vm_sample(const Agent& a, int h, int v, std::uint64_t tick) {
  wire::VmSample s;
  char id[64];
  std::snprintf(id, sizeof id, "4f1c2d3e-%04x-4000-8000-%012d", h & 0xffff, v);
  s.id = id;
  s.name = "vm-" + std::to_string(h) + "-" + std::to_string(v);
  s.pid = 10000 + static_cast<std::uint32_t>(v);
  s.vcpus = 4;
  s.cpu_ns = static_cast<std::uint64_t>(a.vm_load[static_cast<std::size_t>(v)] * 4e9);
  s.steal_ns = 1'000'000;
  s.ram_bytes = 8ULL << 30;
  s.rss_bytes = 4ULL << 30;
  s.steal_hist = {0, 3, 10, 4, 1};
  s.io = wire::Io{1 << 20, 2 << 20, 10, 20, 0, {}};
  // A dirty measurement every 15 ticks per VM, as a duty-cycled collector.
  if (static_cast<std::uint64_t>(v) % 15 == tick % 15) {
    s.dirty = wire::Dirty{wire::DirtySource::kSoftDirty, 2'000'000'000ULL, 10000, 4096, {}};
  }
  return s;
}

// Reads subscription frames until every agent has seen `want` more joins
// than `base`, or the deadline; returns whether all did.
bool await_joined(std::vector<Agent>& agents, const std::vector<std::uint64_t>& base, std::uint64_t want,
                  std::uint64_t deadline, pid_t child) {
  for (;;) {
    std::size_t ready = 0;
    for (std::size_t i = 0; i < agents.size(); ++i) {
      agents[i].pub->poll_subscriptions();
      if (agents[i].pub->subscribers_joined() >= base[i] + want) ++ready;
    }
    if (ready == agents.size()) return true;
    if (agent::mono_now_ns() > deadline || !alive(child)) {
      bench::progress("only %zu of %zu agents have the subscriber", ready, agents.size());
      return false;
    }
    usleep(100'000);
  }
}

// Publishes tick after tick for `seconds`, each agent at its own offset in
// the second (as real hosts are not synchronised). `at_s` is called once
// per elapsed second with the second number. Returns messages published.
template <typename F>
std::uint64_t run_window(std::vector<Agent>& agents, int vms, int seconds, std::uint64_t& tick, F at_s,
                         std::uint64_t* max_late_ns) {
  const std::uint64_t start = agent::mono_now_ns();
  const std::size_t n = agents.size();
  std::uint64_t sent = 0;
  for (int s = 0; s < seconds; ++s, ++tick) {
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint64_t due = start + static_cast<std::uint64_t>(s) * kSecond + i * kSecond / n;
      const std::uint64_t now = agent::mono_now_ns();
      if (now < due) {
        sleep_until_mono(due);
      } else if (now - due > *max_late_ns) {
        *max_late_ns = now - due;
      }
      Agent& a = agents[i];
      a.pub->publish(host_sample(a, static_cast<std::uint64_t>(vms)), kSecond);
      for (int v = 0; v < vms; ++v) a.pub->publish(vm_sample(a, static_cast<int>(i), v, tick), kSecond);
      wire::Heartbeat hb;
      hb.vms = static_cast<std::uint32_t>(vms);
      hb.uptime_ns = a.pub->uptime_ns();
      hb.dropped = a.pub->dropped();
      a.pub->publish(hb, 0);
      sent += static_cast<std::uint64_t>(vms) + 2;
    }
    at_s(s + 1);
  }
  return sent;
}

// "key":NUMBER, the last occurrence in `json` (health.json's totals follow
// its per-host array).
std::optional<double> last_number(const std::string& json, const std::string& key) {
  const auto p = json.rfind("\"" + key + "\":");
  if (p == std::string::npos) return std::nullopt;
  return std::strtod(json.c_str() + p + key.size() + 3, nullptr);
}

std::optional<std::string> control_request(zmq::context_t& ctx, const std::string& endpoint, const std::string& req) {
  zmq::socket_t s(ctx, zmq::socket_type::req);
  s.set(zmq::sockopt::linger, 0);
  s.set(zmq::sockopt::rcvtimeo, 30000);
  s.connect(endpoint);
  s.send(zmq::buffer(req), zmq::send_flags::none);
  zmq::message_t rep;
  if (!s.recv(rep)) return std::nullopt;
  return rep.to_string();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::string(argv[1]) == "--drain") return drain(argv[2]);

  spdlog::set_level(spdlog::level::warn);  // not 3 000 "subscriber joined" lines
  const int n_agents = env_int("VMTIDE_LOAD_AGENTS", 1000);
  const int vms = env_int("VMTIDE_LOAD_VMS", 20);
  const int seconds = env_int("VMTIDE_LOAD_SECONDS", 60);
  const int base_seconds = std::max(5, seconds / 4);
  bench::Report rep("load");
  const std::string controller = std::string(VMTIDE_BINARY_DIR) + "/bin/vmtide-controller";
  if (access(controller.c_str(), X_OK) != 0) {
    bench::progress("no %s: build it first", controller.c_str());
    return 1;
  }

  // Three descriptors per agent here (listener, connection, socket
  // mailbox), one per agent in the controller (inherited limit).
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  const rlim_t need = static_cast<rlim_t>(n_agents) * 4 + 256;
  if (rl.rlim_cur < need) {
    rl.rlim_cur = std::min(rl.rlim_max, need);
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (rl.rlim_cur < need) {
    bench::progress("need %llu file descriptors, the hard limit is %llu", static_cast<unsigned long long>(need),
                    static_cast<unsigned long long>(rl.rlim_max));
    return 1;
  }

  char tmpl[] = "/tmp/vmtide-bench-load-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    std::perror("mkdtemp");
    return 1;
  }
  const std::string dir = tmpl;

  zmq::context_t ctx;
  ctx.set(zmq::ctxopt::max_sockets, n_agents + 64);
  std::vector<Agent> agents(static_cast<std::size_t>(n_agents));
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> load(0.05, 0.95);
  std::string endpoints;
  std::string toml_endpoints;
  for (int i = 0; i < n_agents; ++i) {
    char host[32];
    std::snprintf(host, sizeof host, "load%04d", i);
    auto p = agent::Publisher::create(ctx, {.endpoint = "tcp://127.0.0.1:*", .host = host});
    if (!p) {
      bench::progress("agent %d: %s", i, p.error().message().c_str());
      return 1;
    }
    Agent& a = agents[static_cast<std::size_t>(i)];
    a.pub = std::move(p).value();
    a.host_load = load(rng);
    for (int v = 0; v < vms; ++v) a.vm_load.push_back(load(rng) * 0.5);
    endpoints += a.pub->endpoint() + "\n";
    toml_endpoints += (i == 0 ? "  \"" : ",\n  \"") + a.pub->endpoint() + "\"";
  }
  const std::string endpoints_file = dir + "/endpoints";
  std::ofstream(endpoints_file) << endpoints;
  const std::string control = "ipc://" + dir + "/control";
  const std::string config = dir + "/controller.toml";
  // The controller as an operator would run it: recommend mode, a round
  // every 10 s, the decision log on.
  std::ofstream(config) << "[controller]\nname = \"loadctl\"\nmode = \"recommend\"\nround_interval = 10\n"
                        << "log_level = \"warn\"\n\n[agents]\nendpoints = [\n"
                        << toml_endpoints << "\n]\n\n[publish]\nendpoint = \"ipc://" << dir
                        << "/decisions\"\n\n[control]\nendpoint = \"" << control << "\"\n\n[log]\ndecisions = \"" << dir
                        << "/decisions.jsonl\"\n";
  bench::progress("%d agents x %d VMs at 1 Hz (%d msg/s); baseline %d s, controller %d s", n_agents, vms,
                  n_agents * (vms + 2), base_seconds, seconds);

  std::vector<std::uint64_t> joined(agents.size());
  auto snapshot_joined = [&] {
    for (std::size_t i = 0; i < agents.size(); ++i) {
      agents[i].pub->poll_subscriptions();
      joined[i] = agents[i].pub->subscribers_joined();
    }
  };
  std::uint64_t tick = 1;
  std::uint64_t late_ns = 0;
  int rc = 0;

  // Baseline: a bare SUB receives the same stream.
  snapshot_joined();
  std::string self(4096, '\0');
  self.resize(static_cast<std::size_t>(std::max<ssize_t>(0, readlink("/proc/self/exe", self.data(), self.size()))));
  const pid_t drain_pid = spawn({self, "--drain", endpoints_file}, dir + "/drain.log");
  double base_cpu_pct = NAN;
  if (await_joined(agents, joined, 1, agent::mono_now_ns() + 60 * kSecond, drain_pid)) {
    const double c0 = proc_cpu_seconds(drain_pid);
    const auto t0 = agent::mono_now_ns();
    run_window(
        agents, vms, base_seconds, tick, [](int) {}, &late_ns);
    base_cpu_pct = (proc_cpu_seconds(drain_pid) - c0) / (static_cast<double>(agent::mono_now_ns() - t0) / 1e9) * 100;
    bench::progress("baseline: bare SUB %.2f %% of a core", base_cpu_pct);
  } else {
    rc = 1;
  }
  stop(drain_pid);

  // The controller.
  snapshot_joined();
  const pid_t ctl = spawn({controller, "--config", config}, dir + "/controller.log");
  bool ok = rc == 0;
  // Its ingest subscribes to three kinds: three joins per agent.
  if (ok && !await_joined(agents, joined, 3, agent::mono_now_ns() + 120 * kSecond, ctl)) ok = false;
  if (ok) {
    bench::progress("controller %d subscribed to all %d agents", ctl, n_agents);
    const double c0 = proc_cpu_seconds(ctl);
    const auto t0 = agent::mono_now_ns();
    double rss_20 = NAN;
    double rss_half = NAN;
    double cpu_20 = NAN;
    late_ns = 0;
    const std::uint64_t sent = run_window(
        agents, vms, seconds, tick,
        [&](int s) {
          if (s == seconds / 2) rss_half = proc_status_mib(ctl, "VmRSS");
          if (s == std::min(20, seconds)) {
            rss_20 = proc_status_mib(ctl, "VmRSS");
            cpu_20 = proc_cpu_seconds(ctl);
          }
          if (s % 10 == 0) {
            bench::progress("  %3d s: controller RSS %.1f MiB, CPU %.1f s", s, proc_status_mib(ctl, "VmRSS"),
                            proc_cpu_seconds(ctl) - c0);
          }
        },
        &late_ns);
    const double wall = static_cast<double>(agent::mono_now_ns() - t0) / 1e9;
    const double c1 = proc_cpu_seconds(ctl);
    const double rss_end = proc_status_mib(ctl, "VmRSS");
    const double hwm = proc_status_mib(ctl, "VmHWM");
    // Let the controller drain what is in flight, then ask it.
    usleep(2'000'000);
    auto health = alive(ctl) ? control_request(ctx, control, "health.json") : std::nullopt;
    const double ctrl_cpu_pct = (c1 - c0) / wall * 100;
    rep.metric("ctrl_cpu_pct", ctrl_cpu_pct);
    rep.metric("peak_rss_mib", hwm);
    rep.metric("rss_mib_at_20s", rss_20);
    rep.metric("rss_mib_at_end", rss_end);
    // The first decision rounds grow the heap to its working size; after
    // that it must not grow: the second half of the window shows it.
    rep.metric("rss_mib_growth_second_half", rss_end - rss_half);
    if (seconds > 20) rep.metric("ctrl_cpu_pct_after_20s", (c1 - cpu_20) / (wall - 20) * 100);
    rep.metric("msgs_per_s", static_cast<double>(sent) / wall);
    rep.metric("agents", n_agents);
    rep.metric("vms", static_cast<double>(n_agents) * vms);
    rep.metric("window_s", wall);
    rep.metric("publisher_max_late_ms", static_cast<double>(late_ns) / 1e6);
    rep.metric("baseline_sub_cpu_pct", base_cpu_pct);
    rep.metric("ctrl_cpu_ratio", ctrl_cpu_pct / base_cpu_pct);
    if (health) {
      const auto lost = last_number(*health, "lost");
      const auto accepted = last_number(*health, "accepted");
      if (lost && accepted) {
        rep.metric("lost_msgs", *lost);
        // Accepted counts from the controller's first message; sent from
        // the window's start, which follows the subscriptions: nothing
        // was published to it before.
        rep.metric("unreceived_msgs", static_cast<double>(sent) - *accepted);
        rep.metric("lost_frac", *lost / static_cast<double>(sent));
        bench::progress(
            "controller: %.1f %% of a core (bare SUB %.1f %%), peak RSS %.1f MiB (%.1f at 20 s, %.1f at "
            "end), %.0f lost by seq gaps, %.0f of %llu not accepted",
            ctrl_cpu_pct, base_cpu_pct, hwm, rss_20, rss_end, *lost, static_cast<double>(sent) - *accepted,
            static_cast<unsigned long long>(sent));
      } else {
        rep.note("lost_msgs", "health.json had no lost/accepted totals");
        rc = 1;
      }
    } else {
      rep.note("lost_msgs", "the controller did not answer health.json (see " + dir + "/controller.log)");
      rc = 1;
    }
  } else {
    rep.note("ctrl_cpu_pct", "the controller did not subscribe to every agent");
    rc = 1;
  }
  if (!alive(ctl)) {
    bench::progress("the controller exited; its log:");
    std::ifstream lg(dir + "/controller.log");
    std::string line;
    while (std::getline(lg, line)) bench::progress("  %s", line.c_str());
    rc = 1;
  }
  stop(ctl);
  agents.clear();
  rep.print();
  if (rc == 0) fs::remove_all(dir);
  return rc;
}
