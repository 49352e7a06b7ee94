// SPDX-License-Identifier: Apache-2.0
// Controller configuration parsing and validation (controller_config.h).
#include "controller_config.h"

#include <algorithm>

#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "vmtide/toml_config.h"

namespace vmtide::controller {
namespace {

using tomlcfg::get;
using tomlcfg::type_error;

double to_s(std::chrono::nanoseconds d) { return static_cast<double>(d.count()) / 1e9; }

Status get_size(const std::string& src, const toml::node& n, const std::string& key, std::size_t* out) {
  int v = 0;
  if (Status st = get(src, n, key, &v); !st) return st;
  if (v < 0) return type_error(src, n, key, "an integer >= 0");
  *out = static_cast<std::size_t>(v);
  return {};
}

Status parse_balance(const toml::table& root, const std::string& s, strategy::PlannerConfig& p) {
  static const std::set<std::string> kKeys = {
      "strategy",          "high",
      "high_exit",         "low",
      "low_exit",          "hot_sustain",
      "cold_sustain",      "adaptive_crossover",
      "min_entropy_gain",  "target_max_steal",
      "push_relief",       "push_depth_weight",
      "target_max_io_pressure", "target_mem_reserve",
      "cooldown",          "cooldown_factor",
      "cooldown_max",      "cooldown_reset",
      "no_return_window",  "host_hold_down",
      "source_hold_down",
      "max_inflight_per_host", "max_inflight_cluster",
      "vm_exclude_tags",   "host_exclude_tags",
      "max_targets_per_vm", "max_target_scan",
      "pull_max_sources",  "max_candidates_recorded"};
  return tomlcfg::walk(root, s, "balance", kKeys, [&](const std::string& k, const toml::node& n) -> Status {
    if (k == "strategy") {
      std::string v;
      if (Status st = get(s, n, k, &v); !st) return st;
      if (v == "push") {
        p.strategy = strategy::StrategyKind::kPush;
      } else if (v == "pull") {
        p.strategy = strategy::StrategyKind::kPull;
      } else if (v == "adaptive") {
        p.strategy = strategy::StrategyKind::kAdaptive;
      } else {
        return type_error(s, n, k, "\"push\", \"pull\" or \"adaptive\"");
      }
      return {};
    }
    if (k == "high") return get(s, n, k, &p.band.high_enter);
    if (k == "high_exit") return get(s, n, k, &p.band.high_exit);
    if (k == "low") return get(s, n, k, &p.band.low_enter);
    if (k == "low_exit") return get(s, n, k, &p.band.low_exit);
    if (k == "hot_sustain") return get(s, n, k, &p.hot_sustain);
    if (k == "cold_sustain") return get(s, n, k, &p.cold_sustain);
    if (k == "adaptive_crossover") return get(s, n, k, &p.adaptive_crossover_frac);
    if (k == "min_entropy_gain") return get(s, n, k, &p.min_entropy_gain);
    if (k == "push_relief") return get(s, n, k, &p.push_relief);
    if (k == "push_depth_weight") return get(s, n, k, &p.push_depth_weight);
    if (k == "target_max_steal") return get(s, n, k, &p.target_max_steal_frac);
    if (k == "target_max_io_pressure") return get(s, n, k, &p.target_max_io_pressure_frac);
    if (k == "target_mem_reserve") return get(s, n, k, &p.target_mem_reserve_frac);
    if (k == "cooldown") return get(s, n, k, &p.vm_cooldown_base);
    if (k == "cooldown_factor") return get(s, n, k, &p.vm_cooldown_factor);
    if (k == "cooldown_max") return get(s, n, k, &p.vm_cooldown_max);
    if (k == "cooldown_reset") return get(s, n, k, &p.vm_cooldown_reset);
    if (k == "no_return_window") return get(s, n, k, &p.no_return_window);
    if (k == "host_hold_down") return get(s, n, k, &p.host_hold_down);
    if (k == "source_hold_down") return get(s, n, k, &p.source_hold_down);
    if (k == "max_inflight_per_host") return get(s, n, k, &p.max_inflight_per_host);
    if (k == "max_inflight_cluster") return get(s, n, k, &p.max_inflight_cluster);
    if (k == "vm_exclude_tags") return get(s, n, k, &p.vm_exclude_tags);
    if (k == "host_exclude_tags") return get(s, n, k, &p.host_exclude_tags);
    if (k == "max_targets_per_vm") return get_size(s, n, k, &p.max_targets_per_vm);
    if (k == "max_target_scan") return get_size(s, n, k, &p.max_target_scan);
    if (k == "pull_max_sources") return get_size(s, n, k, &p.pull_max_sources);
    return get_size(s, n, k, &p.max_candidates_recorded);
  });
}

// [[host]] / [[vm]]: arrays of tables.
Status parse_overrides(const toml::table& root, const std::string& s, model::Overrides& ov,
                       std::map<std::string, ControllerConfig::LibvirtUris>& lv) {
  auto each = [&](const char* name, const std::function<Status(const toml::table&)>& fn) -> Status {
    const toml::node* n = root.get(name);
    if (n == nullptr) return {};
    const toml::array* a = n->as_array();
    if (a == nullptr) return make_error(Errc::kInvalidArgument, tomlcfg::where(s, *n) + "use [[" + name + "]] tables");
    for (const auto& e : *a) {
      const toml::table* t = e.as_table();
      if (t == nullptr) return make_error(Errc::kInvalidArgument, tomlcfg::where(s, e) + "use [[" + name + "]] tables");
      if (Status st = fn(*t); !st) return st;
    }
    return {};
  };
  Status st = each("host", [&](const toml::table& t) -> Status {
    std::string name;
    model::HostOverride h;
    ControllerConfig::LibvirtUris uris;
    Status r = tomlcfg::walk_table(t, s, "[host]",
                                   {"name", "maintenance", "tags", "libvirt_uri", "peer_uri", "migrate_uri"},
                                   [&](const std::string& k, const toml::node& n) -> Status {
      if (k == "name") return get(s, n, k, &name);
      if (k == "maintenance") return get(s, n, k, &h.maintenance);
      if (k == "libvirt_uri") return get(s, n, k, &uris.uri);
      if (k == "peer_uri") return get(s, n, k, &uris.peer_uri);
      if (k == "migrate_uri") return get(s, n, k, &uris.migrate_uri);
      return get(s, n, k, &h.tags);
    });
    if (!r) return r;
    if (name.empty()) return make_error(Errc::kInvalidArgument, tomlcfg::where(s, t) + "[[host]] needs a name");
    if (ov.hosts.contains(name)) {
      return make_error(Errc::kInvalidArgument, tomlcfg::where(s, t) + "[[host]] '" + name + "' appears twice");
    }
    if (!uris.uri.empty()) lv.emplace(name, uris);
    ov.hosts.emplace(name, std::move(h));
    return {};
  });
  if (!st) return st;
  return each("vm", [&](const toml::table& t) -> Status {
    std::string name;
    model::VmOverride v;
    Status r = tomlcfg::walk_table(t, s, "[vm]", {"name", "tags", "affinity_group", "anti_affinity"},
                                   [&](const std::string& k, const toml::node& n) -> Status {
      if (k == "name") return get(s, n, k, &name);
      if (k == "tags") return get(s, n, k, &v.tags);
      if (k == "affinity_group") return get(s, n, k, &v.affinity_group);
      return get(s, n, k, &v.anti_affinity_groups);
    });
    if (!r) return r;
    if (name.empty()) {
      return make_error(Errc::kInvalidArgument, tomlcfg::where(s, t) + "[[vm]] needs a name (VM name or uuid)");
    }
    if (ov.vms.contains(name)) {
      return make_error(Errc::kInvalidArgument, tomlcfg::where(s, t) + "[[vm]] '" + name + "' appears twice");
    }
    ov.vms.emplace(name, std::move(v));
    return {};
  });
}

bool endpoint_ok(const std::string& e) {
  return e.rfind("tcp://", 0) == 0 || e.rfind("ipc://", 0) == 0 || e.rfind("inproc://", 0) == 0;
}

}  // namespace

Result<ControllerConfig> parse_config(std::string_view text, const std::string& source) {
  auto root_r = tomlcfg::parse(text, source);
  if (!root_r) return root_r.error();
  const toml::table& root = *root_r;
  const std::string& s = source;
  if (Status st = tomlcfg::check_sections(
          root, s, {"controller", "agents", "publish", "control", "log", "model", "balance", "predictor", "executor", "host", "vm"});
      !st) {
    return st.error();
  }
  ControllerConfig c;
  Status st = tomlcfg::walk(root, s, "controller", {"name", "mode", "round_interval", "log_level"},
                            [&](const std::string& k, const toml::node& n) -> Status {
    if (k == "name") return get(s, n, k, &c.name);
    if (k == "round_interval") return get(s, n, k, &c.round_interval_s);
    if (k == "log_level") return get(s, n, k, &c.log_level);
    std::string m;
    if (Status r = get(s, n, k, &m); !r) return r;
    auto mode = wire::parse_mode(m);
    if (!mode) return type_error(s, n, k, "\"observe\", \"recommend\" or \"enforce\"");
    c.mode = *mode;
    return {};
  });
  if (st) st = tomlcfg::walk(root, s, "agents",
                             {"endpoints", "curve_server_key", "curve_server_keys", "curve_secret_key"},
                             [&](const std::string& k, const toml::node& n) -> Status {
    if (k == "curve_server_key") return get(s, n, k, &c.agent_curve_server_key);
    if (k == "curve_secret_key") return get(s, n, k, &c.agent_curve_secret_key);
    if (k == "curve_server_keys") {
      const toml::table* t = n.as_table();
      if (t == nullptr) return type_error(s, n, k, "a table of endpoint = key, e.g. \"tcp://kvm1:7470\" = \"kvm1.pub\"");
      for (const auto& [ep, key] : *t) {
        const std::string e(ep.str());
        std::string v;
        if (Status r = get(s, key, "curve_server_keys.\"" + e + "\"", &v); !r) return r;
        c.agent_curve_server_keys[e] = v;
      }
      return {};
    }
    return get(s, n, k, &c.agents);
  });
  if (st) st = tomlcfg::walk(root, s, "publish", {"endpoint", "sndhwm"}, [&](const std::string& k, const toml::node& n) {
    if (k == "endpoint") return get(s, n, k, &c.publish_endpoint);
    return get(s, n, k, &c.sndhwm);
  });
  if (st) st = tomlcfg::walk(root, s, "control", {"endpoint"}, [&](const std::string& k, const toml::node& n) {
    return get(s, n, k, &c.control_endpoint);
  });
  if (st) st = tomlcfg::walk(root, s, "log", {"decisions"}, [&](const std::string& k, const toml::node& n) {
    return get(s, n, k, &c.decision_log);
  });
  if (st) st = tomlcfg::walk(root, s, "model",
                             {"smoothing", "stale_after_intervals", "min_stale_after", "max_loss", "loss_window",
                              "vm_expiry_intervals"},
                             [&](const std::string& k, const toml::node& n) -> Status {
    if (k == "smoothing") return get(s, n, k, &c.model.tau);
    if (k == "stale_after_intervals") return get(s, n, k, &c.model.stale_after_intervals);
    if (k == "min_stale_after") return get(s, n, k, &c.model.min_stale_after);
    if (k == "max_loss") return get(s, n, k, &c.model.max_loss_frac);
    if (k == "loss_window") return get(s, n, k, &c.model.loss_window);
    return get(s, n, k, &c.model.vm_expiry_intervals);
  });
  if (st) st = parse_balance(root, s, c.planner);
  if (st) st = tomlcfg::walk(root, s, "predictor",
                             {"model", "fallback_bandwidth", "max_bandwidth", "downtime_limit_ms", "auto_converge"},
                             [&](const std::string& k, const toml::node& n) -> Status {
    if (k == "model") return get(s, n, k, &c.cost_model);
    if (k == "fallback_bandwidth") return get(s, n, k, &c.predictor.fallback_bw_bytes_per_s);
    if (k == "max_bandwidth") return get(s, n, k, &c.predictor.max_bw_bytes_per_s);
    if (k == "downtime_limit_ms") return get(s, n, k, &c.predictor.downtime_limit_ms);
    return get(s, n, k, &c.predictor.auto_converge);
  });
  if (st) st = tomlcfg::walk(root, s, "executor", {"backend"}, [&](const std::string& k, const toml::node& n) {
    return get(s, n, k, &c.executor);
  });
  if (st) st = parse_overrides(root, s, c.overrides, c.libvirt_hosts);
  if (!st) return st.error();
  if (Status v = validate(c); !v) return make_error(Errc::kInvalidArgument, source + ": " + v.error().context);
  return c;
}

Result<ControllerConfig> load_config(const std::string& path) {
  auto text = tomlcfg::read_file(path);
  if (!text) return text.error();
  return parse_config(*text, path);
}

Status validate(const ControllerConfig& c) {
  auto bad = [](const std::string& m) { return make_error(Errc::kInvalidArgument, m); };
  if (!(c.round_interval_s >= 0.05 && c.round_interval_s <= 86400)) {
    return bad("controller.round_interval must be in [0.05, 86400] seconds");
  }
  static const std::set<std::string> kLevels = {"trace", "debug", "info", "warn", "error", "critical", "off"};
  if (kLevels.count(c.log_level) == 0) {
    return bad("controller.log_level '" + c.log_level + "': use trace, debug, info, warn or error");
  }
  if (c.name.find('.') != std::string::npos) {
    return bad("controller.name '" + c.name + "' must not contain dots (it is one topic segment)");
  }
  for (const auto& a : c.agents) {
    if (a.rfind("tcp://", 0) != 0 && a.rfind("ipc://", 0) != 0) {
      return bad("agents.endpoints: '" + a + "': use tcp://HOST:PORT (e.g. tcp://kvm1:7470) or ipc://PATH");
    }
  }
  for (const auto& [ep, key] : c.agent_curve_server_keys) {
    if (std::find(c.agents.begin(), c.agents.end(), ep) == c.agents.end()) {
      return bad("agents.curve_server_keys: '" + ep + "' is not one of agents.endpoints (spell it the same way)");
    }
  }
  if (!c.agent_curve_secret_key.empty() && c.agent_curve_server_key.empty() && c.agent_curve_server_keys.empty()) {
    return bad("agents.curve_secret_key needs the agents' public keys too: agents.curve_server_key (the same for "
               "every agent) or [agents.curve_server_keys] (per endpoint)");
  }
  if (!endpoint_ok(c.publish_endpoint)) {
    return bad("publish.endpoint '" + c.publish_endpoint + "': use tcp://ADDRESS:PORT (e.g. tcp://127.0.0.1:7471)");
  }
  if (c.sndhwm <= 0) return bad("publish.sndhwm must be > 0");
  if (c.control_endpoint != "off" && !endpoint_ok(c.control_endpoint)) {
    return bad("control.endpoint '" + c.control_endpoint + "': use tcp://ADDRESS:PORT or \"off\"");
  }
  if (!(c.model.stale_after_intervals >= 1)) return bad("model.stale_after_intervals must be >= 1");
  if (!(c.model.max_loss_frac > 0 && c.model.max_loss_frac <= 1)) return bad("model.max_loss must be in (0, 1]");
  if (!(c.model.vm_expiry_intervals >= 1)) return bad("model.vm_expiry_intervals must be >= 1");
  if (c.model.loss_window.count() <= 0) return bad("model.loss_window must be > 0");
  if (Status st = strategy::validate(c.planner); !st) return bad("balance: " + st.error().context);
  if (c.cost_model != "precopy" && c.cost_model != "const-dirty") {
    return bad("predictor.model '" + c.cost_model + "': use \"precopy\" or \"const-dirty\"");
  }
  if (!(c.predictor.fallback_bw_bytes_per_s > 0)) return bad("predictor.fallback_bandwidth must be > 0 bytes/s");
  if (!(c.predictor.max_bw_bytes_per_s >= 0)) return bad("predictor.max_bandwidth must be >= 0 bytes/s (0: no cap)");
  if (!(c.predictor.downtime_limit_ms > 0)) return bad("predictor.downtime_limit_ms must be > 0");
  if (c.executor != "none" && c.executor != "libvirt") {
    return bad("executor.backend '" + c.executor + "': use \"none\" or \"libvirt\"");
  }
  if (c.mode == wire::Mode::kEnforce && c.executor == "none") {
    return bad("controller.mode \"enforce\" needs [executor] backend = \"libvirt\" and each host's libvirt_uri in "
               "its [[host]] table; without them use \"recommend\" (decisions are published, nothing moves)");
  }
  if (c.executor == "libvirt" && c.libvirt_hosts.empty()) {
    return bad("executor.backend \"libvirt\" needs libvirt_uri in the [[host]] table of every host VMs may move "
               "between, e.g. [[host]] name = \"kvm1\" libvirt_uri = \"qemu+tcp://kvm1/system\"");
  }
  return {};
}

std::string to_toml(const ControllerConfig& c) {
  auto arr = [](const std::vector<std::string>& v) {
    toml::array a;
    for (const auto& s : v) a.push_back(s);
    return a;
  };
  const auto& p = c.planner;
  toml::table t{
      {"controller", toml::table{{"name", c.name},
                                 {"mode", std::string(wire::mode_name(c.mode))},
                                 {"round_interval", c.round_interval_s},
                                 {"log_level", c.log_level}}},
      {"agents", [&] {
         toml::table a{{"endpoints", arr(c.agents)},
                       {"curve_server_key", c.agent_curve_server_key},
                       {"curve_secret_key", c.agent_curve_secret_key}};
         if (!c.agent_curve_server_keys.empty()) {
           toml::table k;
           for (const auto& [ep, key] : c.agent_curve_server_keys) k.insert(ep, key);
           a.insert("curve_server_keys", std::move(k));
         }
         return a;
       }()},
      {"publish", toml::table{{"endpoint", c.publish_endpoint}, {"sndhwm", c.sndhwm}}},
      {"control", toml::table{{"endpoint", c.control_endpoint}}},
      {"log", toml::table{{"decisions", c.decision_log}}},
      {"model", toml::table{{"smoothing", to_s(c.model.tau)},
                            {"stale_after_intervals", c.model.stale_after_intervals},
                            {"min_stale_after", to_s(c.model.min_stale_after)},
                            {"max_loss", c.model.max_loss_frac},
                            {"loss_window", to_s(c.model.loss_window)},
                            {"vm_expiry_intervals", c.model.vm_expiry_intervals}}},
      {"balance", toml::table{{"strategy", std::string(strategy::strategy_name(p.strategy))},
                              {"high", p.band.high_enter},
                              {"high_exit", p.band.high_exit},
                              {"low", p.band.low_enter},
                              {"low_exit", p.band.low_exit},
                              {"hot_sustain", to_s(p.hot_sustain)},
                              {"cold_sustain", to_s(p.cold_sustain)},
                              {"adaptive_crossover", p.adaptive_crossover_frac},
                              {"min_entropy_gain", p.min_entropy_gain},
                              {"push_relief", p.push_relief},
                              {"push_depth_weight", p.push_depth_weight},
                              {"target_max_steal", p.target_max_steal_frac},
                              {"target_max_io_pressure", p.target_max_io_pressure_frac},
                              {"target_mem_reserve", p.target_mem_reserve_frac},
                              {"cooldown", to_s(p.vm_cooldown_base)},
                              {"cooldown_factor", p.vm_cooldown_factor},
                              {"cooldown_max", to_s(p.vm_cooldown_max)},
                              {"cooldown_reset", to_s(p.vm_cooldown_reset)},
                              {"no_return_window", to_s(p.no_return_window)},
                              {"host_hold_down", to_s(p.host_hold_down)},
                              {"source_hold_down", to_s(p.source_hold_down)},
                              {"max_inflight_per_host", p.max_inflight_per_host},
                              {"max_inflight_cluster", p.max_inflight_cluster},
                              {"vm_exclude_tags", arr(p.vm_exclude_tags)},
                              {"host_exclude_tags", arr(p.host_exclude_tags)},
                              {"max_targets_per_vm", static_cast<std::int64_t>(p.max_targets_per_vm)},
                              {"max_target_scan", static_cast<std::int64_t>(p.max_target_scan)},
                              {"pull_max_sources", static_cast<std::int64_t>(p.pull_max_sources)},
                              {"max_candidates_recorded", static_cast<std::int64_t>(p.max_candidates_recorded)}}},
      {"executor", toml::table{{"backend", c.executor}}},
      {"predictor", toml::table{{"model", c.cost_model},
                                {"fallback_bandwidth", c.predictor.fallback_bw_bytes_per_s},
                                {"max_bandwidth", c.predictor.max_bw_bytes_per_s},
                                {"downtime_limit_ms", c.predictor.downtime_limit_ms},
                                {"auto_converge", c.predictor.auto_converge}}},
  };
  toml::array hosts;
  for (const auto& [name, h] : c.overrides.hosts) {
    toml::table ht{{"name", name}, {"maintenance", h.maintenance}, {"tags", arr(h.tags)}};
    if (auto lv = c.libvirt_hosts.find(name); lv != c.libvirt_hosts.end()) {
      ht.insert("libvirt_uri", lv->second.uri);
      if (!lv->second.peer_uri.empty()) ht.insert("peer_uri", lv->second.peer_uri);
      if (!lv->second.migrate_uri.empty()) ht.insert("migrate_uri", lv->second.migrate_uri);
    }
    hosts.push_back(std::move(ht));
  }
  if (!hosts.empty()) t.insert("host", std::move(hosts));
  toml::array vms;
  for (const auto& [name, v] : c.overrides.vms) {
    vms.push_back(toml::table{{"name", name},
                              {"tags", arr(v.tags)},
                              {"affinity_group", v.affinity_group},
                              {"anti_affinity", arr(v.anti_affinity_groups)}});
  }
  if (!vms.empty()) t.insert("vm", std::move(vms));
  std::ostringstream out;
  out << t << "\n";
  return out.str();
}

}  // namespace vmtide::controller
