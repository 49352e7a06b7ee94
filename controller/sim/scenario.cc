// SPDX-License-Identifier: Apache-2.0
// Strict TOML reading of simulator scenarios (include/vmtide/toml_config.h).
#include "scenario.h"

#include <cmath>
#include <fstream>
#include <map>
#include <sstream>

#include "vmtide/toml_config.h"
#include "vmtide/wire/codec.h"

namespace vmtide::sim {

using tomlcfg::get;

const char* trace_name(TraceKind k) noexcept {
  switch (k) {
    case TraceKind::kConst:
      return "const";
    case TraceKind::kStep:
      return "step";
    case TraceKind::kRamp:
      return "ramp";
    case TraceKind::kDiurnal:
      return "diurnal";
    case TraceKind::kRandomWalk:
      return "random_walk";
    case TraceKind::kBursty:
      return "bursty";
    case TraceKind::kReplay:
      return "replay";
  }
  return "?";
}

Result<TraceKind> parse_trace(std::string_view s) {
  for (TraceKind k : {TraceKind::kConst, TraceKind::kStep, TraceKind::kRamp, TraceKind::kDiurnal,
                      TraceKind::kRandomWalk, TraceKind::kBursty, TraceKind::kReplay}) {
    if (s == trace_name(k)) return k;
  }
  return make_error(Errc::kInvalidArgument, "unknown trace '" + std::string(s) +
                                                "' (known: const, step, ramp, diurnal, random_walk, bursty, replay)");
}

strategy::PlannerConfig Scenario::default_planner() {
  strategy::PlannerConfig c;
  c.band = model::Band{.high_enter = 0.80, .high_exit = 0.70, .low_enter = 0.20, .low_exit = 0.30};
  c.hot_sustain = std::chrono::seconds{30};
  c.cold_sustain = std::chrono::seconds{60};
  return c;
}

namespace {

Status get_range(const std::string& src, const toml::node& n, const std::string& key, Range* out) {
  const toml::array* a = n.as_array();
  if (a == nullptr || a->size() != 2 || !(*a)[0].is_number() || !(*a)[1].is_number()) {
    return tomlcfg::type_error(src, n, key, "[min, max] (two numbers)");
  }
  out->min = *(*a)[0].value<double>();
  out->max = *(*a)[1].value<double>();
  if (!(out->min <= out->max) || out->min < 0) {
    return make_error(Errc::kInvalidArgument, tomlcfg::where(src, n) + "'" + key + "' needs 0 <= min <= max");
  }
  return {};
}

Status get_u32(const std::string& src, const toml::node& n, const std::string& key, std::uint32_t* out) {
  int v = 0;
  if (Status st = get(src, n, key, &v); !st) return st;
  if (v <= 0) return tomlcfg::type_error(src, n, key, "a positive integer");
  *out = static_cast<std::uint32_t>(v);
  return {};
}

}  // namespace

Status validate(const Scenario& s) {
  if (s.hosts <= 0 || (s.vms.empty() && s.vms_per_host <= 0) || s.round_s <= 0 || s.tick_s <= 0 || s.duration_s <= 0 ||
      s.host_cpus == 0) {
    return make_error(Errc::kInvalidArgument,
                      "hosts, host_cpus, vms_per_host, round_s, tick_s and duration_s must be > 0");
  }
  // The clock is integer milliseconds: NaN passes the test above, and inf
  // or 1e300 s have no millisecond count.
  for (const double t : {s.duration_s, s.round_s, s.tick_s}) {
    if (!(t <= 1e9)) return make_error(Errc::kInvalidArgument, "duration_s, round_s and tick_s must be at most 1e9 s");
  }
  if (s.trace == TraceKind::kReplay && s.replay.empty()) {
    return make_error(Errc::kInvalidArgument, "trace \"replay\" needs [vms] replay = a recording with vm samples");
  }
  for (const VmSpec& v : s.vms) {
    if (v.host < 0 || v.host >= s.hosts) return make_error(Errc::kInvalidArgument, "a VM's host is out of range");
  }
  if (auto v = strategy::validate(s.planner); !v) {
    return make_error(Errc::kInvalidArgument, "[planner]: " + v.error().message());
  }
  return {};
}

Result<Scenario> parse_scenario(std::string_view text, const std::string& source) {
  auto root = tomlcfg::parse(text, source);
  if (!root) return std::move(root).error();
  const std::string& S = source;
  if (Status st =
          tomlcfg::check_sections(*root, S, {"run", "cluster", "vms", "step", "migration", "metrics", "planner"});
      !st) {
    return st.error();
  }
  Scenario s;
  Status st = tomlcfg::walk(*root, S, "run", {"name", "seed", "duration_s", "round_s", "tick_s"},
                            [&](const std::string& k, const toml::node& n) -> Status {
                              if (k == "name") return get(S, n, k, &s.name);
                              if (k == "seed") {
                                int v = 0;
                                Status r = get(S, n, k, &v);
                                s.seed = static_cast<std::uint64_t>(v);
                                return r;
                              }
                              if (k == "duration_s") return get(S, n, k, &s.duration_s);
                              if (k == "round_s") return get(S, n, k, &s.round_s);
                              return get(S, n, k, &s.tick_s);
                            });
  if (!st) return st.error();
  st = tomlcfg::walk(*root, S, "cluster", {"hosts", "host_cpus", "host_mem_gib", "link_gbit_s", "vms_per_host"},
                     [&](const std::string& k, const toml::node& n) -> Status {
                       if (k == "hosts") return get(S, n, k, &s.hosts);
                       if (k == "host_cpus") return get_u32(S, n, k, &s.host_cpus);
                       if (k == "host_mem_gib") return get(S, n, k, &s.host_mem_gib);
                       if (k == "link_gbit_s") return get(S, n, k, &s.link_gbit_s);
                       return get(S, n, k, &s.vms_per_host);
                     });
  if (!st) return st.error();
  st = tomlcfg::walk(*root, S, "vms",
                     {"demand_cores", "ram_gib", "touched_frac", "dirty_mib_s", "trace", "trace_amplitude",
                      "trace_period_s", "burst_prob", "burst_s", "replay"},
                     [&](const std::string& k, const toml::node& n) -> Status {
                       if (k == "demand_cores") return get_range(S, n, k, &s.vm_demand_cores);
                       if (k == "ram_gib") return get_range(S, n, k, &s.vm_ram_gib);
                       if (k == "touched_frac") return get_range(S, n, k, &s.vm_touched_frac);
                       if (k == "dirty_mib_s") return get_range(S, n, k, &s.vm_dirty_mib_s);
                       if (k == "trace") {
                         std::string v;
                         if (Status r = get(S, n, k, &v); !r) return r;
                         auto t = parse_trace(v);
                         if (!t) return make_error(Errc::kInvalidArgument, tomlcfg::where(S, n) + t.error().message());
                         s.trace = *t;
                         return {};
                       }
                       if (k == "trace_amplitude") return get(S, n, k, &s.trace_amplitude);
                       if (k == "trace_period_s") return get(S, n, k, &s.trace_period_s);
                       if (k == "burst_prob") return get(S, n, k, &s.burst_prob);
                       if (k == "replay") {
                         std::string rel;
                         if (Status r = get(S, n, k, &rel); !r) return r;
                         const auto slash = S.rfind('/');
                         const std::string path =
                             rel.starts_with('/') || slash == std::string::npos ? rel : S.substr(0, slash + 1) + rel;
                         auto tr = load_replay(path);
                         if (!tr)
                           return make_error(Errc::kInvalidArgument, tomlcfg::where(S, n) + tr.error().message());
                         s.replay = std::move(*tr);
                         return {};
                       }
                       return get(S, n, k, &s.burst_s);
                     });
  if (!st) return st.error();
  st = tomlcfg::walk(*root, S, "step", {"at_s", "hosts_frac", "factor"},
                     [&](const std::string& k, const toml::node& n) -> Status {
                       if (k == "at_s") return get(S, n, k, &s.step_at_s);
                       if (k == "hosts_frac") return get(S, n, k, &s.step_hosts_frac);
                       return get(S, n, k, &s.step_factor);
                     });
  if (!st) return st.error();
  st = tomlcfg::walk(*root, S, "migration", {"cpu_cores", "fail_after_s"},
                     [&](const std::string& k, const toml::node& n) -> Status {
                       if (k == "cpu_cores") return get(S, n, k, &s.migration_cpu_cores);
                       return get(S, n, k, &s.fail_after_s);
                     });
  if (!st) return st.error();
  st = tomlcfg::walk(*root, S, "metrics",
                     {"balanced_entropy", "high_frac", "low_frac", "ping_pong_window_s", "stddev_threshold"},
                     [&](const std::string& k, const toml::node& n) -> Status {
                       if (k == "balanced_entropy") return get(S, n, k, &s.balanced_entropy);
                       if (k == "high_frac") return get(S, n, k, &s.high_frac);
                       if (k == "low_frac") return get(S, n, k, &s.low_frac);
                       if (k == "ping_pong_window_s") return get(S, n, k, &s.ping_pong_window_s);
                       return get(S, n, k, &s.stddev_threshold);
                     });
  if (!st) return st.error();
  auto& p = s.planner;
  st = tomlcfg::walk(*root, S, "planner",
                     {"high_enter", "high_exit", "low_enter", "low_exit", "hot_sustain_s", "cold_sustain_s",
                      "host_hold_down_s", "vm_cooldown_base_s", "no_return_window_s", "adaptive_crossover_frac",
                      "max_inflight_per_host", "max_inflight_cluster"},
                     [&](const std::string& k, const toml::node& n) -> Status {
                       if (k == "high_enter") return get(S, n, k, &p.band.high_enter);
                       if (k == "high_exit") return get(S, n, k, &p.band.high_exit);
                       if (k == "low_enter") return get(S, n, k, &p.band.low_enter);
                       if (k == "low_exit") return get(S, n, k, &p.band.low_exit);
                       if (k == "hot_sustain_s") return get(S, n, k, &p.hot_sustain);
                       if (k == "cold_sustain_s") return get(S, n, k, &p.cold_sustain);
                       if (k == "host_hold_down_s") return get(S, n, k, &p.host_hold_down);
                       if (k == "vm_cooldown_base_s") return get(S, n, k, &p.vm_cooldown_base);
                       if (k == "no_return_window_s") return get(S, n, k, &p.no_return_window);
                       if (k == "adaptive_crossover_frac") return get(S, n, k, &p.adaptive_crossover_frac);
                       if (k == "max_inflight_per_host") return get(S, n, k, &p.max_inflight_per_host);
                       return get(S, n, k, &p.max_inflight_cluster);
                     });
  if (!st) return st.error();
  if (Status v = validate(s); !v) return make_error(Errc::kInvalidArgument, S + ": " + v.error().message());
  return s;
}

Result<std::vector<ReplayTrace>> load_replay(const std::string& path) {
  std::ifstream f(path);
  if (!f) return make_error(Errc::kNotFound, path + ": cannot open");
  struct Acc {
    std::uint64_t first_mono_ns = 0;
    std::vector<std::pair<double, double>> points;
  };
  std::map<std::string, Acc> by_id;
  std::string line;
  for (int no = 1; std::getline(f, line); ++no) {
    if (line.empty()) continue;
    auto m = wire::from_json(line);
    if (!m) return make_error(Errc::kInvalidArgument, path + ":" + std::to_string(no) + ": " + m.error().message());
    const auto* vm = std::get_if<wire::VmSample>(&m->body);
    if (vm == nullptr || m->env.interval_ns == 0) continue;
    auto [it, fresh] = by_id.try_emplace(vm->id);
    if (fresh) it->second.first_mono_ns = m->env.mono_ns;
    if (m->env.mono_ns < it->second.first_mono_ns) continue;  // another epoch's clock: not comparable
    const double t = static_cast<double>(m->env.mono_ns - it->second.first_mono_ns) / 1e9;
    const double cores = static_cast<double>(vm->cpu_ns + vm->steal_ns) / static_cast<double>(m->env.interval_ns);
    if (!it->second.points.empty() && t <= it->second.points.back().first) continue;
    it->second.points.emplace_back(t, cores);
  }
  std::vector<ReplayTrace> out;
  for (auto& [id, acc] : by_id) out.push_back(ReplayTrace{id, std::move(acc.points)});
  return out;
}

Result<Scenario> load_scenario(const std::string& path) {
  auto text = tomlcfg::read_file(path);
  if (!text) return text.error();
  return parse_scenario(*text, path);
}

}  // namespace vmtide::sim
