// SPDX-License-Identifier: Apache-2.0
// vmtide-agent: samples the VMs on this host every tick and publishes the
// samples over ZeroMQ (docs/wire-protocol.md). VMs come from libvirt (with
// lifecycle events) or /proc; the BPF collectors count context switches,
// block I/O and soft-dirty windows. Prometheus, the config file and the BPF
// steal collector arrive with later work.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <zmq.hpp>

#include "exporter.h"
#include "publisher.h"
#include "sampler.h"
#include "vmtide/version.h"

namespace {

std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop.store(true); }

}  // namespace

int main(int argc, char** argv) {
  using namespace vmtide;
  CLI::App app{"vmtide-agent: per-VM telemetry streamed over ZeroMQ"};
  agent::PublisherOptions pub_opts;
  agent::SamplerOptions samp_opts;
  double interval_s = 1.0;
  std::uint64_t ticks = 0;
  std::string log_level = "info";
  bool no_bpf = false;
  app.add_option("--endpoint", pub_opts.endpoint, "ZeroMQ endpoint to bind the publisher to")
      ->capture_default_str();
  app.add_option("--host", pub_opts.host, "host name in topics and envelopes (default: hostname)");
  app.add_option("--interval", interval_s, "seconds between samples")->capture_default_str()->check(
      CLI::Range(0.05, 3600.0));
  app.add_option("--ticks", ticks, "stop after this many samples (0: run until SIGINT/SIGTERM)")
      ->capture_default_str();
  std::vector<std::uint32_t> extra_pids;
  std::string discovery_mode = "auto";
  std::string libvirt_uri = "qemu:///system";
  app.add_option("--discovery", discovery_mode, "where VMs come from: auto (libvirt if it answers, else /proc), libvirt, procfs")
      ->capture_default_str()->check(CLI::IsMember({"auto", "libvirt", "procfs"}));
  app.add_option("--libvirt-uri", libvirt_uri, "libvirt connection for discovery")->capture_default_str();
  app.add_option("--pid", extra_pids, "also treat this process as a VM (procfs discovery; repeatable)");
  app.add_flag("--no-bpf", no_bpf, "do not load the BPF programs");
  double wait_subscriber_s = 0;
  app.add_option("--wait-subscriber", wait_subscriber_s,
                 "before the first message, wait up to this many seconds for a subscriber to join")
      ->check(CLI::Range(0.0, 3600.0));
  std::string metrics_bind = "0.0.0.0:9470";
  app.add_option("--metrics", metrics_bind, "serve Prometheus /metrics on ADDRESS:PORT ('off' to disable)")
      ->capture_default_str();
  app.add_option("--sndhwm", pub_opts.sndhwm, "messages queued per subscriber before it loses some")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")->capture_default_str();
  app.set_version_flag("--version", std::string("vmtide-agent ") + VMTIDE_VERSION + " (" + VMTIDE_GIT + ")");
  CLI11_PARSE(app, argc, argv);
  samp_opts.bpf = !no_bpf;
  // Logs go to stderr (journald captures it under systemd); stdout stays free.
  spdlog::set_default_logger(spdlog::stderr_color_mt("vmtide-agent"));
  spdlog::set_level(spdlog::level::from_str(log_level));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");

  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  zmq::context_t ctx;
  auto pub = agent::Publisher::create(ctx, pub_opts);
  if (!pub) {
    std::fprintf(stderr, "vmtide-agent: %s\n", pub.error().message().c_str());
    return 1;
  }
  std::unique_ptr<discovery::VmSource> source;
  if (discovery_mode != "procfs") {
    auto lv = discovery::LibvirtSource::open(libvirt_uri);
    if (lv) {
      source = std::move(lv).value();
    } else if (discovery_mode == "libvirt") {
      std::fprintf(stderr, "vmtide-agent: %s\n", lv.error().message().c_str());
      return 1;
    } else {
      spdlog::info("libvirt not reachable ({}); discovering VMs through /proc", lv.error().message());
    }
  }
  if (!source) source = std::make_unique<discovery::ProcfsSource>(extra_pids);
  if (!extra_pids.empty() && std::string_view(source->name()) != "procfs") {
    spdlog::warn("--pid applies to procfs discovery only; ignored with libvirt");
  }
  spdlog::info("discovery: {}", source->name());
  agent::Sampler sampler(samp_opts, std::move(source));
  if (!sampler.bpf_disabled_reason().empty()) {
    spdlog::warn("BPF collectors off: {}", sampler.bpf_disabled_reason());
  }
  if (!sampler.dirty_disabled_reason().empty()) {
    spdlog::warn("dirty-page curve off: {}", sampler.dirty_disabled_reason());
  }
  std::unique_ptr<metrics::MetricsExporter> exporter;
  if (metrics_bind != "off") {
    char hostname[256] = {};
    gethostname(hostname, sizeof hostname - 1);
    auto ex = metrics::MetricsExporter::create(
        metrics_bind, hostname,
        {{"version", VMTIDE_VERSION},
         {"bpf", sampler.bpf_disabled_reason().empty() ? "on" : "off"},
         {"dirty_source", sampler.dirty_disabled_reason().empty() ? "softdirty" : "none"}});
    if (!ex) {
      std::fprintf(stderr, "vmtide-agent: %s\n", ex.error().message().c_str());
      return 1;
    }
    exporter = std::move(ex).value();
    spdlog::info("metrics on http://{}:{}/metrics", metrics_bind.substr(0, metrics_bind.rfind(':')),
                 exporter->port());
  }
  spdlog::info("vmtide-agent {} publishing on {} every {:.3g} s (epoch {})", VMTIDE_VERSION, (*pub)->endpoint(),
               interval_s, (*pub)->epoch());

  if (wait_subscriber_s > 0) {
    // PUB/SUB drops what is published before a subscription arrives (the
    // "slow joiner"); the XPUB socket tells us when one has.
    const auto deadline = agent::mono_now_ns() + static_cast<std::uint64_t>(wait_subscriber_s * 1e9);
    while (!g_stop.load() && (*pub)->subscribers_joined() == 0 && agent::mono_now_ns() < deadline) {
      (*pub)->wait_until(std::min<std::uint64_t>(deadline, agent::mono_now_ns() + 100'000'000ULL), g_stop);
    }
    if ((*pub)->subscribers_joined() == 0) spdlog::warn("no subscriber after {:.3g} s; publishing anyway", wait_subscriber_s);
  }
  {
    wire::Event ev;
    ev.type = "agent_started";
    ev.detail = std::string("vmtide-agent ") + VMTIDE_VERSION;
    ev.fields["bpf"] = sampler.bpf_disabled_reason().empty() ? "on" : "off: " + sampler.bpf_disabled_reason();
    ev.fields["dirty"] =
        sampler.dirty_disabled_reason().empty() ? "softdirty" : "off: " + sampler.dirty_disabled_reason();
    (*pub)->publish(std::move(ev), 0);
  }

  const auto interval_ns = static_cast<std::uint64_t>(std::llround(interval_s * 1e9));
  std::uint64_t next = agent::mono_now_ns();
  std::uint64_t done = 0;
  while (!g_stop.load()) {
    const std::uint64_t t0 = agent::mono_now_ns();
    const agent::Tick tick = sampler.sample(t0);
    const double tick_seconds = static_cast<double>(agent::mono_now_ns() - t0) / 1e9;
    for (const auto& body : tick.bodies) {
      (*pub)->publish(body, tick.interval_ns);
      if (exporter) exporter->observe(body, tick.interval_ns);
    }
    wire::Heartbeat hb;
    hb.vms = static_cast<std::uint32_t>(sampler.vm_count());
    hb.uptime_ns = (*pub)->uptime_ns();
    hb.dropped = (*pub)->dropped();
    hb.errors = sampler.errors() + (*pub)->errors();
    (*pub)->publish(hb, 0);
    if (exporter) {
      exporter->set_health({.ticks = done + 1, .last_tick_seconds = tick_seconds, .published = (*pub)->published(),
                            .dropped = (*pub)->dropped(), .errors = hb.errors, .tracked_vms = hb.vms});
    }
    for (const auto& vm : tick.vms) {
      if (vm.ctxsw) {
        spdlog::info("{} (pid {}): cpu {:.1f}% steal {:.1f}% ctxsw out {} ({} voluntary, {} preempted)", vm.name,
                     vm.pid, vm.cpu_pct, vm.steal_pct, vm.ctxsw->out_total(), vm.ctxsw->out_voluntary,
                     vm.ctxsw->out_involuntary);
      } else {
        spdlog::info("{} (pid {}): cpu {:.1f}% steal {:.1f}%", vm.name, vm.pid, vm.cpu_pct, vm.steal_pct);
      }
    }
    spdlog::debug("tick: {} VMs, {} messages published, {} dropped", sampler.vm_count(), (*pub)->published(),
                  (*pub)->dropped());
    if (ticks != 0 && ++done >= ticks) break;

    // Wait for the next tick on the socket, so subscriptions are read as
    // they arrive; a signal ends the wait early.
    next += interval_ns;
    (*pub)->wait_until(next, g_stop);
    if (agent::mono_now_ns() > next + interval_ns) {
      spdlog::warn("tick overran by more than one interval; skipping ahead");
      next = agent::mono_now_ns();
    }
  }
  spdlog::info("stopping: {} messages published, {} dropped", (*pub)->published(), (*pub)->dropped());
  return 0;
}
