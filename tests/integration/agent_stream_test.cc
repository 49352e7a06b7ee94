// SPDX-License-Identifier: Apache-2.0
// The real vmtide-agent binary, over a real ZeroMQ socket on 127.0.0.1: its
// stream is complete and in order, its numbers obey the physics of the
// scheduler, and a VM that vanishes mid-run is reported once while the
// agent keeps going.
#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "agent_process.h"
#include "bpf_support.h"
#include "metrics_scrape.h"
#include "vmtide/wire/zmq_io.h"

namespace vmtide {
namespace {

using Clock = std::chrono::steady_clock;

// A child that spins on CPU 0 until killed. The empty asm is a side effect:
// without it the compiler may delete the loop (C++ forward-progress rule).
pid_t spawn_spinner_on_cpu0() {
  pid_t pid = fork();
  if (pid < 0) std::abort();
  if (pid == 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(0, &set);
    sched_setaffinity(0, sizeof set, &set);
    for (;;) asm volatile("" ::: "memory");
    _exit(0);
  }
  return pid;
}

using testsupport::AgentProcess;
using testsupport::kill_and_reap;
using testsupport::metric_value;
using testsupport::scrape;


TEST(AgentProcessHelper, WaitForGivesUpAtItsDeadlineAndKeepsTheLog) {
  // The helper every daemon test waits with: a process that lives on but
  // never logs the awaited line must not hang the test.
  AgentProcess p({"/bin/sh", "-c", "echo started >&2; printf 'no newline' >&2; exec sleep 30"});
  const auto t0 = Clock::now();
  EXPECT_TRUE(p.wait_for(std::regex("started")));
  EXPECT_FALSE(p.wait_for(std::regex("never printed"), std::chrono::milliseconds{500}));
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds{10});
  EXPECT_NE(p.log.find("no matching line within"), std::string::npos) << p.log;
  // After the exit, a last line without its newline still counts.
  p.kill9();
  AgentProcess q({"/bin/sh", "-c", "printf 'last words' >&2"});
  EXPECT_TRUE(q.wait_for(std::regex("last words"), std::chrono::seconds{10}));
}

TEST(AgentStream, SamplesAreCompleteOrderedAndPhysical) {
  constexpr int kTicks = 8;
  constexpr double kInterval = 0.5;
  // The "VM" and a competitor spin on CPU 0: the VM always wants the CPU,
  // so each interval it either runs or waits (cpu + steal = interval), and
  // it waits about half the time.
  const pid_t vm = spawn_spinner_on_cpu0();
  const pid_t hog = spawn_spinner_on_cpu0();
  struct Reaper {
    pid_t p;
    ~Reaper() { kill_and_reap(p); }
  } reap_hog{hog};
  bool vm_killed = false;

  std::vector<std::string> args = {VMTIDE_BINARY_DIR "/bin/vmtide-agent", "--endpoint", "tcp://127.0.0.1:*",
                                   "--discovery", "procfs", "--pid", std::to_string(vm), "--ticks", std::to_string(kTicks),
                                   "--interval", std::to_string(kInterval), "--wait-subscriber", "20",
                                   "--metrics", "127.0.0.1:0"};
  const bool bpf = static_cast<bool>(bpf::preflight());
  if (!bpf) {
    std::printf("note: running the agent without BPF: %s\n", bpf::preflight().error().message().c_str());
    args.push_back("--no-bpf");
  }
  AgentProcess agent(args);
  auto ep = agent.endpoint();
  ASSERT_TRUE(ep) << "agent never reported its endpoint; log:\n" << agent.log;
  std::smatch pm;
  ASSERT_TRUE(std::regex_search(agent.log, pm, std::regex("metrics on http://127.0.0.1:([0-9]+)/metrics")))
      << agent.log;
  const int metrics_port = std::stoi(pm[1].str());
  const std::string vm_label = "vm_id=\"proc:" + std::to_string(vm) + "\"";
  double streamed_steal_s = 0;
  std::optional<double> scraped_steal_s;
  bool removal_checked = false;
  std::uint32_t vms_before_kill = 0;

  zmq::context_t ctx;
  zmq::socket_t sub(ctx, zmq::socket_type::sub);
  sub.set(zmq::sockopt::subscribe, "vmtide.v1.");
  ASSERT_TRUE(wire::apply_limits(sub));
  sub.connect(*ep);

  std::vector<wire::Message> got;
  int vm_samples = 0;
  int exit_status = -1;
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  while (Clock::now() < deadline) {
    zmq::pollitem_t item{sub.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, std::chrono::milliseconds(200)) == 0) {
      int status = 0;
      if (waitpid(agent.pid, &status, WNOHANG) == agent.pid) {  // exited: the stream is over
        agent.pid = -1;
        exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        break;
      }
      continue;
    }
    auto m = wire::recv_message(sub);
    ASSERT_TRUE(m) << m.error().message();
    ASSERT_TRUE(m->has_value());
    got.push_back(**m);
    const auto* s = std::get_if<wire::VmSample>(&got.back().body);
    if (s && s->pid == static_cast<std::uint32_t>(vm)) streamed_steal_s += static_cast<double>(s->steal_ns) / 1e9;
    // After three samples, /metrics shows what the stream said (the agent
    // updates the exporter as it publishes); then the VM vanishes and the
    // agent must report it once.
    if (const auto* hb = std::get_if<wire::Heartbeat>(&got.back().body); hb && !vm_killed) vms_before_kill = hb->vms;
    if (s && s->pid == static_cast<std::uint32_t>(vm) && ++vm_samples == 3) {
      const std::string text = scrape(metrics_port);
      scraped_steal_s = metric_value(text, "vmtide_vm_steal_seconds_total", vm_label);
      // The io block carries D-state time: a series per VM (a spinner's is 0).
      if (bpf) {
        EXPECT_TRUE(metric_value(text, "vmtide_vm_io_dstate_seconds_total", vm_label)) << "no D-state series";
      }
      kill_and_reap(vm);
      vm_killed = true;
    }
    // Other QEMU processes may run on this machine: look for one VM fewer.
    if (vm_killed && !removal_checked && std::holds_alternative<wire::Heartbeat>(got.back().body) &&
        std::get<wire::Heartbeat>(got.back().body).vms + 1 == vms_before_kill) {
      EXPECT_FALSE(metric_value(scrape(metrics_port), "vmtide_vm_steal_seconds_total", vm_label))
          << "series of a vanished VM stay in /metrics";
      removal_checked = true;
    }
  }
  if (!vm_killed) kill_and_reap(vm);
  // The agent stops by itself after kTicks, with status 0.
  if (agent.pid > 0) exit_status = agent.wait_exit();
  EXPECT_EQ(exit_status, 0) << agent.log;

  ASSERT_FALSE(got.empty());
  // Complete and ordered: one epoch, seq 1, 2, 3, ... without gaps.
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].env.seq, i + 1) << "gap or reorder at message " << i;
    EXPECT_EQ(got[i].env.epoch, got[0].env.epoch);
    EXPECT_EQ(got[i].env.host, got[0].env.host);
  }
  ASSERT_TRUE(std::holds_alternative<wire::Event>(got[0].body));
  EXPECT_EQ(std::get<wire::Event>(got[0].body).type, "agent_started");

  int started = 0, stopped = 0, hbs = 0, hosts = 0, samples = 0;
  for (const auto& m : got) {
    if (const auto* e = std::get_if<wire::Event>(&m.body)) {
      if (e->vm == "proc:" + std::to_string(vm)) {
        started += e->type == "vm_started";
        stopped += e->type == "vm_stopped";
      }
    } else if (std::holds_alternative<wire::Heartbeat>(m.body)) {
      ++hbs;
    } else if (const auto* h = std::get_if<wire::HostSample>(&m.body)) {
      ++hosts;
      EXPECT_EQ(h->cpus, static_cast<std::uint32_t>(sysconf(_SC_NPROCESSORS_ONLN)));
      EXPECT_GT(h->mem_total_bytes, h->mem_avail_bytes);
      // Two spinners keep at least one CPU busy.
      EXPECT_GT(h->cpu_busy_ns, m.env.interval_ns / 2);
    } else if (const auto* s = std::get_if<wire::VmSample>(&m.body)) {
      if (s->pid != static_cast<std::uint32_t>(vm)) continue;
      ++samples;
      const double iv = static_cast<double>(m.env.interval_ns);
      EXPECT_NEAR(iv, kInterval * 1e9, 0.2 * kInterval * 1e9);
      const double busy = static_cast<double>(s->cpu_ns + s->steal_ns);
      EXPECT_GT(busy, 0.85 * iv) << "an always-runnable task either runs or waits";
      EXPECT_LT(busy, 1.15 * iv);
      EXPECT_GT(static_cast<double>(s->steal_ns), 0.2 * iv) << "sharing a CPU with a spinner means waiting";
      EXPECT_GT(s->rss_bytes, 0u);
      // With BPF, every sample carries the I/O block (a spinner does none).
      if (bpf) {
        ASSERT_TRUE(s->io.has_value());
        EXPECT_EQ(s->io->wr_bytes, 0u);
      }
    }
  }
  ASSERT_TRUE(scraped_steal_s) << "no steal series for the VM in /metrics";
  EXPECT_TRUE(removal_checked) << "no heartbeat after the VM vanished";
  EXPECT_NEAR(*scraped_steal_s, streamed_steal_s, 1e-6) << "/metrics and the stream disagree";
  EXPECT_EQ(started, 1);
  EXPECT_EQ(stopped, 1) << "the vanished VM must be reported exactly once";
  EXPECT_EQ(samples, 3);
  EXPECT_EQ(hbs, kTicks);
  EXPECT_EQ(hosts, kTicks - 1);  // the first tick only takes baselines
}

}  // namespace
}  // namespace vmtide
