// SPDX-License-Identifier: Apache-2.0
// Agent configuration parsing and validation (config.h). toml++ exceptions
// stop here.
#include "config.h"

#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include <toml++/toml.h>

#include "vmtide/toml_config.h"

namespace vmtide::agent {
namespace {

using tomlcfg::get;
using tomlcfg::type_error;
using tomlcfg::walk;
using tomlcfg::where;

}  // namespace

Result<AgentConfig> parse_config(std::string_view text, const std::string& source) {
  auto parsed = tomlcfg::parse(text, source);
  if (!parsed) return parsed.error();
  const toml::table& root = *parsed;
  if (Status st = tomlcfg::check_sections(root, source, {"agent", "publish", "metrics", "discovery", "collectors"});
      !st) {
    return st.error();
  }
  AgentConfig c;
  const std::string& s = source;
  Status st = walk(root, s, "agent", {"host", "interval", "log_level"}, [&](const std::string& k, const toml::node& n) {
    if (k == "host") return get(s, n, k, &c.host);
    if (k == "interval") return get(s, n, k, &c.interval_s);
    return get(s, n, k, &c.log_level);
  });
  if (st) st = walk(root, s, "publish", {"endpoint", "sndhwm", "curve_secret_key", "curve_allowed_clients"},
                    [&](const std::string& k, const toml::node& n) {
    if (k == "endpoint") return get(s, n, k, &c.endpoint);
    if (k == "curve_secret_key") return get(s, n, k, &c.curve_secret_key);
    if (k == "curve_allowed_clients") return get(s, n, k, &c.curve_allowed_clients);
    return get(s, n, k, &c.sndhwm);
  });
  if (st) st = walk(root, s, "metrics", {"listen"}, [&](const std::string& k, const toml::node& n) {
    return get(s, n, k, &c.metrics_listen);
  });
  if (st) st = walk(root, s, "discovery", {"source", "libvirt_uri", "extra_pids", "rescan_interval", "qmp_sockets"},
                    [&](const std::string& k, const toml::node& n) -> Status {
    if (k == "source") return get(s, n, k, &c.discovery);
    if (k == "libvirt_uri") return get(s, n, k, &c.libvirt_uri);
    if (k == "rescan_interval") return get(s, n, k, &c.rescan_interval_s);
    if (k == "qmp_sockets") return get(s, n, k, &c.qmp_sockets);
    const toml::array* a = n.as_array();
    if (a == nullptr) return type_error(s, n, k, "an array of process ids");
    for (const auto& e : *a) {
      // PID_MAX_LIMIT (include/linux/threads.h): no pid is above 2^22.
      if (!e.is_integer() || *e.value<std::int64_t>() <= 0 || *e.value<std::int64_t>() > (1 << 22)) {
        return type_error(s, e, k, "an array of process ids (1 to 4194304)");
      }
      c.extra_pids.push_back(static_cast<std::uint32_t>(*e.value<std::int64_t>()));
    }
    return {};
  });
  if (st) st = walk(root, s, "collectors", {"bpf", "dirty", "dirty_window", "dirty_period"},
                    [&](const std::string& k, const toml::node& n) {
    if (k == "bpf") return get(s, n, k, &c.bpf);
    if (k == "dirty") return get(s, n, k, &c.dirty);
    if (k == "dirty_window") return get(s, n, k, &c.dirty_window_s);
    return get(s, n, k, &c.dirty_period_s);
  });
  if (!st) return st.error();
  if (Status v = validate(c); !v) return make_error(Errc::kInvalidArgument, source + ": " + v.error().context);
  return c;
}

Result<AgentConfig> load_config(const std::string& path) {
  auto text = tomlcfg::read_file(path);
  if (!text) return text.error();
  return parse_config(*text, path);
}

Status validate(const AgentConfig& c) {
  auto bad = [](const std::string& m) { return make_error(Errc::kInvalidArgument, m); };
  if (!(c.interval_s >= 0.05 && c.interval_s <= 3600)) return bad("agent.interval must be in [0.05, 3600] seconds");
  static const std::set<std::string> kLevels = {"trace", "debug", "info", "warn", "error", "critical", "off"};
  if (kLevels.count(c.log_level) == 0) return bad("agent.log_level '" + c.log_level + "': use trace, debug, info, warn or error");
  if (c.host.find('.') != std::string::npos) return bad("agent.host '" + c.host + "' must not contain dots (it is one topic segment)");
  if (c.endpoint.rfind("tcp://", 0) != 0 && c.endpoint.rfind("ipc://", 0) != 0 && c.endpoint.rfind("inproc://", 0) != 0) {
    return bad("publish.endpoint '" + c.endpoint + "': use tcp://ADDRESS:PORT (e.g. tcp://*:7470) or ipc://PATH");
  }
  if (c.sndhwm <= 0) return bad("publish.sndhwm must be > 0");
  if (!c.curve_secret_key.empty() && c.endpoint.rfind("inproc://", 0) == 0) {
    // inproc:// bypasses ZMTP, so libzmq would silently skip the handshake.
    return bad("publish.curve_secret_key: CURVE does not apply to inproc:// endpoints");
  }
  if (!c.curve_allowed_clients.empty() && c.curve_secret_key.empty()) {
    return bad("publish.curve_allowed_clients needs publish.curve_secret_key: without CURVE, clients have no key");
  }
  if (c.metrics_listen != "off" && c.metrics_listen.rfind(':') == std::string::npos) {
    return bad("metrics.listen '" + c.metrics_listen + "': use ADDRESS:PORT (e.g. 0.0.0.0:9470) or \"off\"");
  }
  if (c.discovery != "auto" && c.discovery != "libvirt" && c.discovery != "procfs") {
    return bad("discovery.source '" + c.discovery + "': use auto, libvirt or procfs");
  }
  if (!(c.rescan_interval_s >= 0.1 && c.rescan_interval_s <= 3600)) {
    return bad("discovery.rescan_interval must be in [0.1, 3600] seconds");
  }
  if (!(c.dirty_window_s > 0) || !(c.dirty_period_s >= c.dirty_window_s)) {
    return bad("collectors.dirty_window must be > 0 and <= collectors.dirty_period");
  }
  // Both become integer nanoseconds: inf or 1e11 s would not fit (undefined).
  if (!(c.dirty_period_s <= 86400)) return bad("collectors.dirty_period must be at most 86400 seconds");
  return {};
}

std::string to_toml(const AgentConfig& c) {
  toml::array pids;
  for (auto p : c.extra_pids) pids.push_back(static_cast<std::int64_t>(p));
  toml::array allowed;
  for (const auto& a : c.curve_allowed_clients) allowed.push_back(a);
  toml::table t{
      {"agent", toml::table{{"host", c.host}, {"interval", c.interval_s}, {"log_level", c.log_level}}},
      {"publish",
       toml::table{{"endpoint", c.endpoint}, {"sndhwm", c.sndhwm}, {"curve_secret_key", c.curve_secret_key},
                   {"curve_allowed_clients", allowed}}},
      {"metrics", toml::table{{"listen", c.metrics_listen}}},
      {"discovery", toml::table{{"source", c.discovery}, {"libvirt_uri", c.libvirt_uri}, {"extra_pids", pids},
                                {"rescan_interval", c.rescan_interval_s}, {"qmp_sockets", c.qmp_sockets}}},
      {"collectors", toml::table{{"bpf", c.bpf}, {"dirty", c.dirty}, {"dirty_window", c.dirty_window_s},
                                 {"dirty_period", c.dirty_period_s}}},
  };
  std::ostringstream out;
  out << t << "\n";
  return out.str();
}

}  // namespace vmtide::agent
