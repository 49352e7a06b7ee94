// SPDX-License-Identifier: Apache-2.0
// vmtide-agent: samples the VMs on this host every tick and publishes the
// samples over ZeroMQ (docs/wire-protocol.md) and Prometheus. VMs come from
// libvirt (with lifecycle events) or /proc; the BPF collectors count context
// switches, block I/O and soft-dirty windows. Settings come from
// /etc/vmtide/agent.toml (docs/configuration.md); flags override them.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <zmq.hpp>

#include "capabilities.h"
#include "config.h"
#include "exporter.h"
#include "publisher.h"
#include "sampler.h"
#include "vmtide/version.h"
#include "vmtide/wire/curve.h"
#include "vmtide/wire/zap.h"

namespace {

std::atomic<bool> g_stop{false};
std::atomic<bool> g_reload{false};
void on_stop(int) { g_stop.store(true); }
void on_hup(int) { g_reload.store(true); }

// Command-line values; each set one overrides the config file.
struct Flags {
  std::string config = vmtide::agent::kDefaultConfigPath;
  bool check_config = false;
  std::optional<std::string> endpoint, host, discovery, libvirt_uri, metrics, log_level, curve_secret_key;
  std::optional<double> interval;
  std::optional<int> sndhwm;
  std::vector<std::uint32_t> pids;
  std::vector<std::string> curve_allowed_clients;
  bool no_bpf = false;
  std::uint64_t ticks = 0;
  double wait_subscriber_s = 0;
};

void apply(const Flags& f, vmtide::agent::AgentConfig& c) {
  if (f.endpoint) c.endpoint = *f.endpoint;
  if (f.host) c.host = *f.host;
  if (f.discovery) c.discovery = *f.discovery;
  if (f.libvirt_uri) c.libvirt_uri = *f.libvirt_uri;
  if (f.metrics) c.metrics_listen = *f.metrics;
  if (f.log_level) c.log_level = *f.log_level;
  if (f.interval) c.interval_s = *f.interval;
  if (f.sndhwm) c.sndhwm = *f.sndhwm;
  if (!f.curve_allowed_clients.empty()) c.curve_allowed_clients = f.curve_allowed_clients;
  if (f.curve_secret_key) c.curve_secret_key = *f.curve_secret_key;
  if (!f.pids.empty()) c.extra_pids = f.pids;
  if (f.no_bpf) c.bpf = false;
}

// The config file, or the defaults when the default file does not exist;
// then the flags on top, then validation, which includes reading the CURVE
// secret key (into `*curve` when set) and the allowed client keys (into
// `*allowed`): a key the agent cannot use is a configuration error, found
// by --check-config too.
vmtide::Result<vmtide::agent::AgentConfig> effective_config(const Flags& f, bool explicit_path,
                                                            std::optional<vmtide::wire::curve::KeyPair>* curve,
                                                            std::optional<std::set<std::string>>* allowed = nullptr) {
  using namespace vmtide;
  agent::AgentConfig c;
  auto loaded = agent::load_config(f.config);
  if (loaded) {
    c = std::move(*loaded);
  } else if (loaded.error().code != Errc::kNotFound || explicit_path) {
    return loaded.error();
  }
  apply(f, c);
  if (Status st = agent::validate(c); !st) return st.error();
  if (!c.curve_secret_key.empty()) {
    auto keys = wire::curve::load_secret_key_file(c.curve_secret_key);
    if (!keys) return make_error(keys.error().code, "publish.curve_secret_key: " + keys.error().context);
    if (curve != nullptr) *curve = std::move(keys).value();
  }
  if (!c.curve_allowed_clients.empty()) {
    auto keys = wire::curve::load_allowed_clients(c.curve_allowed_clients);
    if (!keys) return make_error(keys.error().code, "publish.curve_allowed_clients: " + keys.error().context);
    if (allowed != nullptr) *allowed = std::move(keys).value();
  }
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace vmtide;
  CLI::App app{"vmtide-agent: per-VM telemetry streamed over ZeroMQ"};
  Flags f;
  auto* config_opt = app.add_option("-c,--config", f.config, "configuration file")->capture_default_str();
  app.add_flag("--check-config", f.check_config, "validate the configuration, print it as applied, and exit");
  app.add_option("--endpoint", f.endpoint, "ZeroMQ endpoint to bind the publisher to [publish.endpoint]");
  app.add_option("--host", f.host, "host name in topics and envelopes [agent.host]");
  app.add_option("--interval", f.interval, "seconds between samples [agent.interval]");
  app.add_option("--discovery", f.discovery, "auto, libvirt or procfs [discovery.source]");
  app.add_option("--libvirt-uri", f.libvirt_uri, "libvirt connection [discovery.libvirt_uri]");
  app.add_option("--pid", f.pids, "also treat this process as a VM, procfs only; repeatable [discovery.extra_pids]");
  app.add_flag("--no-bpf", f.no_bpf, "do not load the BPF programs [collectors.bpf = false]");
  app.add_option("--metrics", f.metrics, "serve /metrics on ADDRESS:PORT, or 'off' [metrics.listen]");
  app.add_option("--curve-secret-key", f.curve_secret_key,
                 "encrypt the stream with CURVE using this .key file from `vmtide keygen` [publish.curve_secret_key]");
  app.add_option("--curve-allow", f.curve_allowed_clients,
                 "with CURVE, admit only this client key (Z85, key file or directory of .pub files); repeatable "
                 "[publish.curve_allowed_clients]");
  app.add_option("--sndhwm", f.sndhwm, "messages queued per subscriber before it loses some [publish.sndhwm]");
  app.add_option("--log-level", f.log_level, "trace, debug, info, warn, error [agent.log_level]");
  app.add_option("--ticks", f.ticks, "stop after this many samples (0: until SIGINT/SIGTERM)");
  app.add_option("--wait-subscriber", f.wait_subscriber_s,
                 "before the first message, wait up to this many seconds for a subscriber to join")
      ->check(CLI::Range(0.0, 3600.0));
  app.set_version_flag("--version", std::string("vmtide-agent ") + VMTIDE_VERSION + " (" + VMTIDE_GIT + ")");
  CLI11_PARSE(app, argc, argv);
  const bool explicit_config = config_opt->count() > 0;

  std::optional<wire::curve::KeyPair> curve;
  std::optional<std::set<std::string>> allowed;
  auto cfg_r = effective_config(f, explicit_config, &curve, &allowed);
  if (f.check_config) {
    if (!cfg_r) {
      std::fprintf(stderr, "vmtide-agent: configuration error: %s\n", cfg_r.error().context.c_str());
      return 1;
    }
    std::fputs(agent::to_toml(*cfg_r).c_str(), stdout);
    std::fprintf(stderr, "vmtide-agent: configuration OK (%s%s)\n", f.config.c_str(),
                 access(f.config.c_str(), R_OK) == 0 ? "" : ", not found: defaults");
    if (curve) {
      std::fprintf(stderr, "vmtide-agent: CURVE on; subscribers need public key %s\n", curve->public_z85.c_str());
    }
    if (allowed) {
      std::fprintf(stderr, "vmtide-agent: %zu client key(s) allowed\n", allowed->size());
    }
    return 0;
  }
  if (!cfg_r) {
    std::fprintf(stderr, "vmtide-agent: configuration error: %s\n", cfg_r.error().context.c_str());
    return 1;
  }
  agent::AgentConfig cfg = std::move(*cfg_r);

  // Logs go to stderr (journald captures it under systemd); stdout stays free.
  spdlog::set_default_logger(spdlog::stderr_color_mt("vmtide-agent"));
  spdlog::set_level(spdlog::level::from_str(cfg.log_level));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");

  struct sigaction sa {};
  sa.sa_handler = on_stop;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  struct sigaction hup {};
  hup.sa_handler = on_hup;
  sigaction(SIGHUP, &hup, nullptr);

  agent::Sampler sampler({.bpf = cfg.bpf,
                          .dirty = cfg.dirty,
                          .dirty_window_ns = static_cast<std::uint64_t>(cfg.dirty_window_s * 1e9),
                          .dirty_period_ns = static_cast<std::uint64_t>(cfg.dirty_period_s * 1e9),
                          .rescan_ns = static_cast<std::uint64_t>(cfg.rescan_interval_s * 1e9)},
                         nullptr);  // the source comes after the drop below
  if (!sampler.bpf_disabled_reason().empty()) {
    spdlog::warn("BPF collectors off: {}", sampler.bpf_disabled_reason());
  }
  if (!sampler.dirty_disabled_reason().empty()) {
    spdlog::warn("dirty-page curve off: {}", sampler.dirty_disabled_reason());
  }

  // Least privilege (docs/security.md): the probes are loaded and
  // attached, so keep only what the sampling loop needs, before the first
  // thread starts (ZeroMQ's, the metrics server's): capabilities are per
  // thread. Reading and resetting soft-dirty bits of another user's QEMU
  // (/proc/<pid>/clear_refs, pagemap) and talking to its QMP socket need
  // CAP_DAC_OVERRIDE and CAP_SYS_PTRACE; CPU, steal and I/O need nothing
  // (world-readable /proc files, and maps and iterators of loaded programs).
  {
    const bool other_users_files = sampler.dirty_disabled_reason().empty() || cfg.qmp_sockets;
    const std::uint64_t keep = other_users_files ? caps::bit(caps::kDacOverride) | caps::bit(caps::kSysPtrace) : 0;
    auto kept = caps::keep_only(keep);
    if (!kept) {
      std::fprintf(stderr, "vmtide-agent: dropping capabilities: %s\n", kept.error().message().c_str());
      return 1;
    }
    spdlog::info("capabilities after start-up: {} (bounding set: {})", caps::names(kept->effective),
                 caps::names(kept->bounding));
  }

  std::unique_ptr<discovery::VmSource> source;
  if (cfg.discovery != "procfs") {
    auto lv = discovery::LibvirtSource::open(cfg.libvirt_uri);
    if (lv) {
      source = std::move(lv).value();
    } else if (cfg.discovery == "libvirt") {
      std::fprintf(stderr, "vmtide-agent: %s\n", lv.error().message().c_str());
      return 1;
    } else {
      spdlog::info("libvirt not reachable ({}); discovering VMs through /proc", lv.error().message());
    }
  }
  if (!source) {
    source = std::make_unique<discovery::ProcfsSource>(
        discovery::ProcfsOptions{.extra_pids = cfg.extra_pids, .qmp = cfg.qmp_sockets});
  }
  if (!cfg.extra_pids.empty() && std::string_view(source->name()) != "procfs") {
    spdlog::warn("extra pids apply to procfs discovery only; ignored with libvirt");
  }
  if (cfg.qmp_sockets && std::string_view(source->name()) != "procfs") {
    spdlog::warn("qmp_sockets applies to procfs discovery only; with libvirt, dirty rates come through libvirt");
  }
  spdlog::info("discovery: {}", source->name());
  sampler.set_source(std::move(source));
  if (!sampler.dirty_disabled_reason().empty()) spdlog::info("dirty rates from: {}", sampler.dirty_source());

  // ZeroMQ's threads (and the ZAP handler's) start here, after the
  // capability drop above, so none of them holds more.
  zmq::context_t ctx;
  // The allow-list's ZAP handler must answer before the socket it guards
  // accepts a connection; declared after the context, so destroyed first.
  std::unique_ptr<wire::curve::ZapHandler> zap;
  if (allowed) {
    auto z = wire::curve::ZapHandler::start(ctx, std::move(*allowed));
    if (!z) {
      std::fprintf(stderr, "vmtide-agent: %s\n", z.error().message().c_str());
      return 1;
    }
    zap = std::move(z).value();
  }
  const std::string curve_public = curve ? curve->public_z85 : "";
  auto pub = agent::Publisher::create(
      ctx, {.endpoint = cfg.endpoint, .host = cfg.host, .sndhwm = cfg.sndhwm, .curve = std::move(curve)});
  if (!pub) {
    std::fprintf(stderr, "vmtide-agent: %s\n", pub.error().message().c_str());
    return 1;
  }

  std::unique_ptr<metrics::MetricsExporter> exporter;
  if (cfg.metrics_listen != "off") {
    char hostname[256] = {};
    gethostname(hostname, sizeof hostname - 1);
    auto ex = metrics::MetricsExporter::create(
        cfg.metrics_listen, cfg.host.empty() ? hostname : cfg.host,
        {{"version", VMTIDE_VERSION},
         {"bpf", sampler.bpf_disabled_reason().empty() ? "on" : "off"},
         {"dirty_source", sampler.dirty_source()}});
    if (!ex) {
      std::fprintf(stderr, "vmtide-agent: %s\n", ex.error().message().c_str());
      return 1;
    }
    exporter = std::move(ex).value();
    spdlog::info("metrics on http://{}:{}/metrics", cfg.metrics_listen.substr(0, cfg.metrics_listen.rfind(':')),
                 exporter->port());
  }
  spdlog::info("vmtide-agent {} publishing on {} every {:.3g} s (epoch {})", VMTIDE_VERSION, (*pub)->endpoint(),
               cfg.interval_s, (*pub)->epoch());
  if (cfg.curve_secret_key.empty()) {
    spdlog::info("stream not encrypted: anyone who reaches {} can read it (docs/security.md)", (*pub)->endpoint());
  } else {
    spdlog::info("CURVE on ({}): subscribers need the public key {}", cfg.curve_secret_key, curve_public);
    if (zap) {
      spdlog::info("CURVE clients allowed: {} key(s) from publish.curve_allowed_clients; others are refused",
                   zap->size());
    } else {
      spdlog::info("CURVE clients allowed: any that holds the public key (no publish.curve_allowed_clients)");
    }
  }

  if (f.wait_subscriber_s > 0) {
    // PUB/SUB drops what is published before a subscription arrives (the
    // "slow joiner"); the XPUB socket tells us when one has.
    const auto deadline = agent::mono_now_ns() + static_cast<std::uint64_t>(f.wait_subscriber_s * 1e9);
    while (!g_stop.load() && (*pub)->subscribers_joined() == 0 && agent::mono_now_ns() < deadline) {
      (*pub)->wait_until(std::min<std::uint64_t>(deadline, agent::mono_now_ns() + 100'000'000ULL), g_stop);
    }
    if ((*pub)->subscribers_joined() == 0) {
      spdlog::warn("no subscriber after {:.3g} s; publishing anyway", f.wait_subscriber_s);
    }
  }
  {
    wire::Event ev;
    ev.type = "agent_started";
    ev.detail = std::string("vmtide-agent ") + VMTIDE_VERSION;
    ev.fields["bpf"] = sampler.bpf_disabled_reason().empty() ? "on" : "off: " + sampler.bpf_disabled_reason();
    ev.fields["dirty"] = sampler.dirty_source();
    (*pub)->publish(std::move(ev), 0);
  }

  auto interval_ns = static_cast<std::uint64_t>(std::llround(cfg.interval_s * 1e9));
  std::uint64_t next = agent::mono_now_ns();
  std::uint64_t done = 0;
  std::uint64_t zap_refused_logged = 0;  // refusals already in the log
  while (!g_stop.load()) {
    if (g_reload.exchange(false)) {
      // SIGHUP: re-read the file (flags still win). Interval and log level
      // apply now; the rest needs a restart, and the log says which.
      std::optional<wire::curve::KeyPair> unused;  // the socket keeps the key it started with
      auto fresh = effective_config(f, explicit_config, &unused);
      if (!fresh) {
        spdlog::error("reload: keeping the running configuration: {}", fresh.error().context);
      } else {
        agent::AgentConfig want = *fresh;
        if (want.log_level != cfg.log_level) spdlog::set_level(spdlog::level::from_str(want.log_level));
        if (want.interval_s != cfg.interval_s) interval_ns = static_cast<std::uint64_t>(std::llround(want.interval_s * 1e9));
        agent::AgentConfig live = cfg;
        live.log_level = want.log_level;
        live.interval_s = want.interval_s;
        if (!(live == want)) spdlog::warn("reload: some changes take effect only after a restart");
        cfg = live;
        spdlog::info("reload: interval {:.3g} s, log level {}", cfg.interval_s, cfg.log_level);
      }
    }
    const std::uint64_t t0 = agent::mono_now_ns();
    const agent::Tick tick = sampler.sample(t0);
    const double tick_seconds = static_cast<double>(agent::mono_now_ns() - t0) / 1e9;
    ++done;
    for (const auto& body : tick.bodies) {
      // Exporter first: whoever receives the message can already scrape it.
      if (exporter) exporter->observe(body, tick.interval_ns);
      (*pub)->publish(body, tick.interval_ns);
    }
    wire::Heartbeat hb;
    hb.vms = static_cast<std::uint32_t>(sampler.vm_count());
    hb.uptime_ns = (*pub)->uptime_ns();
    hb.dropped = (*pub)->dropped();
    hb.errors = sampler.errors() + (*pub)->errors();
    (*pub)->publish(hb, 0);
    if (zap && zap->refused() > zap_refused_logged) {
      // Once per tick at most: a scanner retrying cannot flood the journal.
      spdlog::warn("CURVE allow-list refused {} handshake(s) from unlisted client keys ({} since start)",
                   zap->refused() - zap_refused_logged, zap->refused());
      zap_refused_logged = zap->refused();
    }
    if (exporter) {
      metrics::AgentHealth health{.ticks = done, .last_tick_seconds = tick_seconds, .published = (*pub)->published(),
                                  .dropped = (*pub)->dropped(), .errors = hb.errors, .tracked_vms = hb.vms};
      if (zap) {
        health.curve_admitted = zap->admitted();
        health.curve_refused = zap->refused();
      }
      exporter->set_health(health);
    }
    for (const auto& vm : tick.vms) {
      // One line per VM per tick: debug level, or a host with hundreds of
      // VMs would flood the journal (--log-level debug, or the demo, shows them).
      if (vm.ctxsw) {
        spdlog::debug("{} (pid {}): cpu {:.1f}% steal {:.1f}% ctxsw out {} ({} voluntary, {} preempted)", vm.name,
                      vm.pid, vm.cpu_pct, vm.steal_pct, vm.ctxsw->out_total(), vm.ctxsw->out_voluntary,
                      vm.ctxsw->out_involuntary);
      } else {
        spdlog::debug("{} (pid {}): cpu {:.1f}% steal {:.1f}%", vm.name, vm.pid, vm.cpu_pct, vm.steal_pct);
      }
    }
    spdlog::debug("tick: {} VMs, {} messages published, {} dropped", sampler.vm_count(), (*pub)->published(),
                  (*pub)->dropped());
    if (f.ticks != 0 && done >= f.ticks) break;

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
