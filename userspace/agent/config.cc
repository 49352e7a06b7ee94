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

namespace vmtide::agent {
namespace {

std::string where(const std::string& source, const toml::node& n) {
  const auto& b = n.source().begin;
  return source + ":" + std::to_string(b.line) + ": ";
}

// Reads table `section` of `root`, calling `set(key, node)` for each key and
// rejecting keys not in `known`.
Status walk(const toml::table& root, const std::string& source, const std::string& section,
            const std::set<std::string>& known,
            const std::function<Status(const std::string&, const toml::node&)>& set) {
  const toml::node* t = root.get(section);
  if (t == nullptr) return {};
  const toml::table* tbl = t->as_table();
  if (tbl == nullptr) return make_error(Errc::kInvalidArgument, where(source, *t) + "[" + section + "] must be a table");
  for (const auto& [k, v] : *tbl) {
    const std::string key(k.str());
    if (known.count(key) == 0) {
      std::string list;
      for (const auto& kn : known) list += (list.empty() ? "" : ", ") + kn;
      return make_error(Errc::kInvalidArgument,
                        where(source, v) + "unknown key '" + key + "' in [" + section + "] (known: " + list + ")");
    }
    if (Status st = set(key, v); !st) return st;
  }
  return {};
}

Status type_error(const std::string& source, const toml::node& n, const std::string& key, const char* want) {
  return make_error(Errc::kInvalidArgument, where(source, n) + "'" + key + "' must be " + want);
}

Status get(const std::string& src, const toml::node& n, const std::string& key, std::string* out) {
  if (auto v = n.value<std::string>(); v && n.is_string()) {
    *out = *v;
    return {};
  }
  return type_error(src, n, key, "a string");
}
Status get(const std::string& src, const toml::node& n, const std::string& key, double* out) {
  if (n.is_floating_point() || n.is_integer()) {
    *out = *n.value<double>();
    return {};
  }
  return type_error(src, n, key, "a number");
}
Status get(const std::string& src, const toml::node& n, const std::string& key, bool* out) {
  if (n.is_boolean()) {
    *out = *n.value<bool>();
    return {};
  }
  return type_error(src, n, key, "true or false");
}
Status get(const std::string& src, const toml::node& n, const std::string& key, int* out) {
  if (n.is_integer()) {
    *out = static_cast<int>(*n.value<std::int64_t>());
    return {};
  }
  return type_error(src, n, key, "an integer");
}

}  // namespace

Result<AgentConfig> parse_config(std::string_view text, const std::string& source) {
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    return make_error(Errc::kInvalidArgument, source + ":" + std::to_string(e.source().begin.line) + ": " +
                                                  std::string(e.description()));
  }
  static const std::set<std::string> kSections = {"agent", "publish", "metrics", "discovery", "collectors"};
  for (const auto& [k, v] : root) {
    if (kSections.count(std::string(k.str())) == 0) {
      return make_error(Errc::kInvalidArgument,
                        where(source, v) + "unknown section [" + std::string(k.str()) +
                            "] (known: agent, collectors, discovery, metrics, publish)");
    }
  }
  AgentConfig c;
  const std::string& s = source;
  Status st = walk(root, s, "agent", {"host", "interval", "log_level"}, [&](const std::string& k, const toml::node& n) {
    if (k == "host") return get(s, n, k, &c.host);
    if (k == "interval") return get(s, n, k, &c.interval_s);
    return get(s, n, k, &c.log_level);
  });
  if (st) st = walk(root, s, "publish", {"endpoint", "sndhwm", "curve_secret_key"},
                    [&](const std::string& k, const toml::node& n) {
    if (k == "endpoint") return get(s, n, k, &c.endpoint);
    if (k == "curve_secret_key") return get(s, n, k, &c.curve_secret_key);
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
      if (!e.is_integer() || *e.value<std::int64_t>() <= 0) return type_error(s, e, k, "an array of process ids");
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
  std::ifstream in(path);
  if (!in) return make_error(Errc::kNotFound, "cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_config(ss.str(), path);
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
  return {};
}

std::string to_toml(const AgentConfig& c) {
  toml::array pids;
  for (auto p : c.extra_pids) pids.push_back(static_cast<std::int64_t>(p));
  toml::table t{
      {"agent", toml::table{{"host", c.host}, {"interval", c.interval_s}, {"log_level", c.log_level}}},
      {"publish",
       toml::table{{"endpoint", c.endpoint}, {"sndhwm", c.sndhwm}, {"curve_secret_key", c.curve_secret_key}}},
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
