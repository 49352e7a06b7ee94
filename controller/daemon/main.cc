// SPDX-License-Identifier: Apache-2.0
// vmtide-controller: subscribes to every agent in controller.toml, keeps the
// cluster model, runs a decision round every round_interval and publishes
// each decision (kind "decision") on its own PUB socket and in a JSON-lines
// log. Modes: observe (model only), recommend (the default: decisions,
// nothing moves), enforce (moves carried out by the libvirt executor). A
// REP socket answers `vmtide plan`, `vmtide predict --vm` and health
// queries. docs/controller.md.
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <zmq.hpp>

#include "capabilities.h"
#include "controller.h"
#include "decision_log.h"
#include "controller_config.h"
#include "ingest.h"
#include "libvirt_executor.h"
#include "publisher.h"
#include "vmtide/version.h"
#include "vmtide/wire/codec.h"

namespace {

using namespace vmtide;

std::atomic<bool> g_stop{false};
std::atomic<bool> g_reload{false};
void on_stop(int) { g_stop.store(true); }
void on_hup(int) { g_reload.store(true); }

struct Flags {
  std::string config = controller::kDefaultConfigPath;
  bool check_config = false;
  std::vector<std::string> agents;
  std::optional<std::string> mode, publish, control, decision_log, name, log_level;
  std::optional<double> round_interval;
  std::uint64_t rounds = 0;
};

void apply(const Flags& f, controller::ControllerConfig& c) {
  if (!f.agents.empty()) c.agents = f.agents;
  if (f.mode) {
    if (auto m = wire::parse_mode(*f.mode)) c.mode = *m;
  }
  if (f.publish) c.publish_endpoint = *f.publish;
  if (f.control) c.control_endpoint = *f.control;
  if (f.decision_log) c.decision_log = *f.decision_log;
  if (f.name) c.name = *f.name;
  if (f.log_level) c.log_level = *f.log_level;
  if (f.round_interval) c.round_interval_s = *f.round_interval;
}

Result<controller::ControllerConfig> effective_config(const Flags& f, bool explicit_path) {
  if (f.mode && !wire::parse_mode(*f.mode)) {
    return make_error(Errc::kInvalidArgument, "--mode '" + *f.mode + "': use observe, recommend or enforce");
  }
  controller::ControllerConfig c;
  auto loaded = controller::load_config(f.config);
  if (loaded) {
    c = std::move(*loaded);
  } else if (loaded.error().code != Errc::kNotFound || explicit_path) {
    return loaded.error();
  }
  apply(f, c);
  if (Status st = controller::validate(c); !st) return st.error();
  return c;
}

std::uint64_t mono_ns() { return agent::mono_now_ns(); }

// "20261201T103100": decision ids stay unique across restarts.
std::string id_base() {
  const time_t t = time(nullptr);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%S", &tm);
  return buf;
}

// The decision log (controller/log): checked once at start, so a wrong
// path fails loudly instead of at the first decision; each record is then
// one appended line.
class DecisionLog {
 public:
  Status open(const std::string& path) {
    path_ = path;
    if (path.empty()) return {};
    std::error_code ec;
    const auto dir = std::filesystem::path(path).parent_path();
    if (!dir.empty()) std::filesystem::create_directories(dir, ec);
    std::ofstream probe(path, std::ios::app);
    if (!probe) {
      return make_error(Errc::kIo, "cannot open the decision log " + path + ": " + std::strerror(errno) +
                                       " (set [log] decisions, or --decision-log)");
    }
    return {};
  }
  void append(const wire::Message& m) {
    if (path_.empty()) return;
    if (Status st = decision_log::append(path_, m); !st) {
      ++errors_;
      spdlog::error("decision log: {}", st.error().message());
    }
  }
  std::uint64_t errors() const { return errors_; }

 private:
  std::string path_;
  std::uint64_t errors_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vmtide-controller: balances a KVM cluster from the agents' telemetry"};
  Flags f;
  auto* config_opt = app.add_option("-c,--config", f.config, "configuration file")->capture_default_str();
  app.add_flag("--check-config", f.check_config, "validate the configuration, print it as applied, and exit");
  app.add_option("--agent", f.agents, "agent endpoint to subscribe to, repeatable [agents.endpoints]");
  app.add_option("--mode", f.mode, "observe, recommend or enforce [controller.mode]");
  app.add_option("--publish", f.publish, "decision stream endpoint to bind [publish.endpoint]");
  app.add_option("--control", f.control, "query endpoint to bind for vmtide plan/predict, or 'off' [control.endpoint]");
  app.add_option("--decision-log", f.decision_log, "JSON-lines decision log, '' for none [log.decisions]");
  app.add_option("--name", f.name, "host name in the decision stream [controller.name]");
  app.add_option("--round-interval", f.round_interval, "seconds between decision rounds [controller.round_interval]");
  app.add_option("--log-level", f.log_level, "trace, debug, info, warn, error [controller.log_level]");
  app.add_option("--rounds", f.rounds, "stop after this many rounds (0: until SIGINT/SIGTERM)");
  app.set_version_flag("--version", std::string("vmtide-controller ") + VMTIDE_VERSION + " (" + VMTIDE_GIT + ")");
  CLI11_PARSE(app, argc, argv);
  const bool explicit_config = config_opt->count() > 0;

  auto cfg_r = effective_config(f, explicit_config);
  if (!cfg_r) {
    std::fprintf(stderr, "vmtide-controller: configuration error: %s\n", cfg_r.error().context.c_str());
    return 1;
  }
  if (f.check_config) {
    const auto& c = *cfg_r;
    if (auto k = controller::load_ingest_keys(c.agents, c.agent_curve_server_key, c.agent_curve_server_keys,
                                              c.agent_curve_secret_key);
        !k) {
      std::fprintf(stderr, "vmtide-controller: configuration error: CURVE toward agents: %s\n",
                   k.error().message().c_str());
      return 1;
    }
    std::fputs(controller::to_toml(*cfg_r).c_str(), stdout);
    std::fprintf(stderr, "vmtide-controller: configuration OK (%s%s)\n", f.config.c_str(),
                 access(f.config.c_str(), R_OK) == 0 ? "" : ", not found: defaults");
    return 0;
  }
  controller::ControllerConfig cfg = std::move(*cfg_r);
  if (cfg.agents.empty()) {
    std::fprintf(stderr, "vmtide-controller: no agents to subscribe to: list them in [agents] endpoints = "
                         "[\"tcp://kvm1:7470\", ...] in %s, or pass --agent\n", f.config.c_str());
    return 1;
  }
  if (cfg.name.empty()) {
    char hostname[256] = {};
    gethostname(hostname, sizeof hostname - 1);
    cfg.name = hostname;
    for (char& c : cfg.name) c = c == '.' ? '-' : c;
  }

  spdlog::set_default_logger(spdlog::stderr_color_mt("vmtide-controller"));
  spdlog::set_level(spdlog::level::from_str(cfg.log_level));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");

  // Key files first: one owned by the vmtide user with mode 0600 is not
  // readable by root once CAP_DAC_OVERRIDE is gone.
  auto keys = controller::load_ingest_keys(cfg.agents, cfg.agent_curve_server_key, cfg.agent_curve_server_keys,
                                           cfg.agent_curve_secret_key);
  if (!keys) {
    std::fprintf(stderr, "vmtide-controller: CURVE toward agents: %s\n", keys.error().message().c_str());
    return 1;
  }

  // Least privilege (docs/security.md): the controller needs no capability
  // (unprivileged ports, its own files, libvirt over its sockets), so a
  // root start drops them all, before the first thread (ZeroMQ's, the
  // executor's) starts: capabilities are per thread.
  auto kept = caps::keep_only(0);
  if (!kept) {
    std::fprintf(stderr, "vmtide-controller: dropping capabilities: %s\n", kept.error().message().c_str());
    return 1;
  }
  spdlog::info("capabilities after start-up: {} (bounding set: {})", caps::names(kept->effective),
               caps::names(kept->bounding));

  struct sigaction sa {};
  sa.sa_handler = on_stop;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  struct sigaction hup {};
  hup.sa_handler = on_hup;
  sigaction(SIGHUP, &hup, nullptr);

  zmq::context_t ctx;
  auto ingest = controller::Ingest::create(ctx, cfg.agents, *keys);
  if (ingest && keys->client) {
    spdlog::info("CURVE toward {} of {} agents, client key {}", keys->server_public_z85.size(), cfg.agents.size(),
                 keys->client->public_z85);
  }
  if (!ingest) {
    std::fprintf(stderr, "vmtide-controller: %s\n", ingest.error().message().c_str());
    return 1;
  }
  auto pub = agent::Publisher::create(ctx, {.endpoint = cfg.publish_endpoint, .host = cfg.name, .sndhwm = cfg.sndhwm});
  if (!pub) {
    std::fprintf(stderr, "vmtide-controller: decision stream: %s\n", pub.error().message().c_str());
    return 1;
  }
  std::optional<zmq::socket_t> control;
  std::string control_endpoint = "off";
  if (cfg.control_endpoint != "off") {
    try {
      control.emplace(ctx, zmq::socket_type::rep);
      control->set(zmq::sockopt::linger, 0);
      control->set(zmq::sockopt::maxmsgsize, std::int64_t{4096});
      control->bind(cfg.control_endpoint);
      control_endpoint = control->get(zmq::sockopt::last_endpoint);
    } catch (const zmq::error_t& e) {
      std::fprintf(stderr, "vmtide-controller: cannot bind the control endpoint %s: %s\n",
                   cfg.control_endpoint.c_str(), e.what());
      return 1;
    }
  }
  DecisionLog log;
  if (Status st = log.open(cfg.decision_log); !st) {
    std::fprintf(stderr, "vmtide-controller: %s\n", st.error().message().c_str());
    return 1;
  }

  controller::Controller ctl(cfg, id_base());
  // Enforce mode: the libvirt executor carries out moves (config validation
  // already refused enforce without one).
  std::unique_ptr<executor::Executor> exec;
  if (cfg.executor == "libvirt") {
    std::map<std::string, executor::LibvirtHost> hosts;
    for (const auto& [name, u] : cfg.libvirt_hosts) hosts[name] = {u.uri, u.peer_uri, u.migrate_uri};
    exec = std::make_unique<executor::LibvirtExecutor>(std::move(hosts));
    ctl.set_executor(exec.get());
    spdlog::info("executor: libvirt, {} host(s)", cfg.libvirt_hosts.size());
  }
  // A controller that died mid-migration left it to libvirt: adopt what is
  // running before deciding anything, and decide nothing until that worked.
  bool recovered = cfg.mode != wire::Mode::kEnforce;
  spdlog::info("vmtide-controller {}: {} mode, {} agent endpoint(s), round every {:.3g} s", VMTIDE_VERSION,
               wire::mode_name(cfg.mode), cfg.agents.size(), cfg.round_interval_s);
  spdlog::info("decisions on {} (epoch {}), log {}, control {}", (*pub)->endpoint(), (*pub)->epoch(),
               cfg.decision_log.empty() ? "off" : cfg.decision_log, control_endpoint);
  {
    wire::Event ev;
    ev.type = "controller_started";
    ev.detail = std::string("vmtide-controller ") + VMTIDE_VERSION;
    ev.fields["mode"] = std::string(wire::mode_name(cfg.mode));
    (*pub)->publish(std::move(ev), 0);
  }

  const auto to_ns = [](double s) { return static_cast<std::uint64_t>(s * 1e9); };
  std::uint64_t round_ns = to_ns(cfg.round_interval_s);
  std::uint64_t next_round = mono_ns() + round_ns;
  std::uint64_t next_hb = mono_ns() + 1'000'000'000ULL;
  std::uint64_t rounds = 0;
  std::uint64_t malformed_logged = 0;
  while (!g_stop.load()) {
    if (g_reload.exchange(false)) {
      auto fresh = effective_config(f, explicit_config);
      if (!fresh) {
        spdlog::error("reload: keeping the running configuration: {}", fresh.error().context);
      } else if (fresh->mode == wire::Mode::kEnforce && !exec) {
        spdlog::error("reload: mode \"enforce\" needs the executor, configured at start; keeping {}",
                      wire::mode_name(cfg.mode));
      } else {
        controller::ControllerConfig want = std::move(*fresh);
        if (want.name.empty()) want.name = cfg.name;
        if (want.agents != cfg.agents || want.publish_endpoint != cfg.publish_endpoint ||
            want.control_endpoint != cfg.control_endpoint || want.decision_log != cfg.decision_log) {
          spdlog::warn("reload: endpoint and log changes take effect after a restart");
          want.agents = cfg.agents;
          want.publish_endpoint = cfg.publish_endpoint;
          want.control_endpoint = cfg.control_endpoint;
          want.decision_log = cfg.decision_log;
        }
        if (want.log_level != cfg.log_level) spdlog::set_level(spdlog::level::from_str(want.log_level));
        round_ns = to_ns(want.round_interval_s);
        cfg = want;
        ctl.reconfigure(cfg);
        spdlog::info("reload: {} mode, round every {:.3g} s, {} host and {} VM override(s)", wire::mode_name(cfg.mode),
                     cfg.round_interval_s, cfg.overrides.hosts.size(), cfg.overrides.vms.size());
      }
    }
    const std::uint64_t now = mono_ns();
    const std::uint64_t wake = std::min(next_round, next_hb);
    const int timeout_ms = wake > now ? static_cast<int>(std::min<std::uint64_t>((wake - now) / 1'000'000 + 1, 200)) : 0;
    std::vector<zmq::pollitem_t> items{{(*ingest)->socket().handle(), 0, ZMQ_POLLIN, 0}};
    if (control) items.push_back({control->handle(), 0, ZMQ_POLLIN, 0});
    try {
      zmq::poll(items.data(), items.size(), std::chrono::milliseconds{timeout_ms});
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) spdlog::warn("poll: {}", e.what());
      continue;
    }
    if (items[0].revents & ZMQ_POLLIN) {
      (*ingest)->poll(0, [&](const wire::Message& m) { ctl.on_message(m, model::TimeNs{mono_ns()}); });
      if ((*ingest)->malformed() > malformed_logged) {
        // One line per batch, not per message: a bad publisher must not
        // flood the log.
        spdlog::warn("dropped {} malformed message(s) ({} in all); last: {}",
                     (*ingest)->malformed() - malformed_logged, (*ingest)->malformed(), (*ingest)->last_error());
        malformed_logged = (*ingest)->malformed();
      }
    }
    (*pub)->poll_subscriptions();
    if (control && (items[1].revents & ZMQ_POLLIN)) {
      try {
        zmq::message_t req;
        if (control->recv(req, zmq::recv_flags::dontwait)) {
          const std::string answer = ctl.handle_control(req.to_string_view(), model::TimeNs{mono_ns()});
          (void)control->send(zmq::buffer(answer), zmq::send_flags::dontwait);
        }
      } catch (const zmq::error_t& e) {
        spdlog::warn("control request: {}", e.what());
      }
    }
    const std::uint64_t t = mono_ns();
    if (t >= next_hb) {
      // Migrations that ended since the last look: their decision again,
      // same id, with the outcome and the real figures.
      for (auto& d : ctl.poll_migrations(model::TimeNs{t})) {
        spdlog::info("decision {}: {} {} {} -> {}: {}", d.id, wire::outcome_name(d.outcome), d.vm_name.value_or(d.vm),
                     d.src, d.dst, d.detail.value_or(""));
        wire::Message sent;
        (*pub)->publish(std::move(d), 0, &sent);
        log.append(sent);
      }
      wire::Heartbeat hb;
      hb.vms = static_cast<std::uint32_t>(ctl.builder().vm_count());
      hb.uptime_ns = (*pub)->uptime_ns();
      hb.dropped = (*pub)->dropped();
      hb.errors = (*pub)->errors() + (*ingest)->malformed() + log.errors() + ctl.counters().round_errors;
      (*pub)->publish(hb, 0);
      next_hb = t + 1'000'000'000ULL;
    }
    if (t >= next_round && !recovered) {
      next_round = t + round_ns;
      if (auto n = ctl.recover_in_flight(model::TimeNs{t}); n) {
        recovered = true;
        spdlog::info("enforce: {} migration(s) already running adopted", *n);
      } else {
        spdlog::error("enforce: cannot list running migrations, deciding nothing until it can: {}",
                      n.error().message());
      }
      continue;
    }
    if (t >= next_round) {
      next_round = t + round_ns;
      ++rounds;
      auto decisions = ctl.round(model::TimeNs{t});
      if (!decisions) {
        spdlog::error("round {}: {}", rounds, decisions.error().message());
      } else {
        for (auto& d : *decisions) {
          spdlog::info("decision {}: {} {} {} -> {}: {}", d.id, wire::outcome_name(d.outcome), d.vm_name.value_or(d.vm),
                       d.src, d.dst.empty() ? "-" : d.dst, d.reason);
          wire::Message sent;
          (*pub)->publish(std::move(d), 0, &sent);
          log.append(sent);
        }
      }
      if (f.rounds > 0 && rounds >= f.rounds) break;
    }
  }
  spdlog::info("stopping after {} rounds, {} decisions", rounds, ctl.counters().decisions);
  return 0;
}
