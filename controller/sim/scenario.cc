// SPDX-License-Identifier: Apache-2.0
// Strict TOML reading of simulator scenarios (include/vmtide/toml_config.h).
#include "scenario.h"

#include <cmath>
#include <fstream>
#include <limits>
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

Status get_numbers(const std::string& src, const toml::node& n, const std::string& key, std::vector<double>* out) {
  const toml::array* a = n.as_array();
  if (a == nullptr || a->empty()) return tomlcfg::type_error(src, n, key, "a non-empty array of numbers");
  out->clear();
  for (const auto& x : *a) {
    if (!x.is_number()) return tomlcfg::type_error(src, n, key, "a non-empty array of numbers");
    out->push_back(*x.value<double>());
  }
  return {};
}

// [min, max] (uniform), or an inline table:
//   {dist = "uniform", min = A, max = B}
//   {dist = "lognormal", median = M, sigma = S [, min = A, max = B]}
//   {dist = "choice", values = [...] [, weights = [...]]}
Status get_range(const std::string& src, const toml::node& n, const std::string& key, Range* out) {
  auto bad = [&](const std::string& why) {
    return make_error(Errc::kInvalidArgument, tomlcfg::where(src, n) + "'" + key + "': " + why);
  };
  if (const toml::table* t = n.as_table()) {
    Range r;
    std::string dist = "uniform";
    bool has_min = false;
    Status st = tomlcfg::walk_table(*t, src, "vms." + key, {"dist", "min", "max", "median", "sigma", "values", "weights"},
                                    [&](const std::string& k, const toml::node& v) -> Status {
                                      if (k == "dist") return tomlcfg::get(src, v, k, &dist);
                                      if (k == "min") {
                                        has_min = true;
                                        return tomlcfg::get(src, v, k, &r.min);
                                      }
                                      if (k == "max") return tomlcfg::get(src, v, k, &r.max);
                                      if (k == "median") return tomlcfg::get(src, v, k, &r.median);
                                      if (k == "sigma") return tomlcfg::get(src, v, k, &r.sigma);
                                      if (k == "values") return get_numbers(src, v, k, &r.values);
                                      return get_numbers(src, v, k, &r.weights);
                                    });
    if (!st) return st;
    if (dist == "uniform") {
      if (!has_min || !(r.min <= r.max) || r.min < 0) return bad("uniform needs 0 <= min <= max");
    } else if (dist == "lognormal") {
      r.kind = DistKind::kLognormal;
      if (!(r.median > 0) || !(r.sigma >= 0) || r.min < 0 || (r.max > 0 && r.max < r.min)) {
        return bad("lognormal needs median > 0, sigma >= 0 and 0 <= min <= max (max 0 = no cap)");
      }
    } else if (dist == "choice") {
      r.kind = DistKind::kChoice;
      if (r.values.empty()) return bad("choice needs values");
      if (!r.weights.empty() && r.weights.size() != r.values.size()) return bad("weights must match values");
      double sum = 0;
      for (double w : r.weights) {
        if (!(w >= 0)) return bad("weights must be >= 0");
        sum += w;
      }
      if (!r.weights.empty() && !(sum > 0)) return bad("weights must not all be 0");
      for (double v : r.values) {
        if (!(v >= 0)) return bad("values must be >= 0");
      }
    } else {
      return bad("unknown dist '" + dist + "' (known: uniform, lognormal, choice)");
    }
    *out = std::move(r);
    return {};
  }
  const toml::array* a = n.as_array();
  if (a == nullptr || a->size() != 2 || !(*a)[0].is_number() || !(*a)[1].is_number()) {
    return tomlcfg::type_error(src, n, key, "[min, max] (two numbers) or a {dist = ...} table");
  }
  *out = Range{};
  out->min = *(*a)[0].value<double>();
  out->max = *(*a)[1].value<double>();
  if (!(out->min <= out->max) || out->min < 0) return bad("needs 0 <= min <= max");
  return {};
}

Status get_groups(const std::string& src, const toml::node& n, const Scenario& s,
                  std::vector<Scenario::HostGroup>* out) {
  const toml::array* a = n.as_array();
  if (a == nullptr || a->empty()) return tomlcfg::type_error(src, n, "groups", "a non-empty array of tables");
  out->clear();
  for (const auto& x : *a) {
    const toml::table* t = x.as_table();
    if (t == nullptr) return tomlcfg::type_error(src, x, "groups", "an array of tables");
    Scenario::HostGroup g{1, s.host_cpus, s.host_mem_gib, s.link_gbit_s, s.vms_per_host};
    bool has_count = false;
    Status st = tomlcfg::walk_table(*t, src, "cluster.groups", {"count", "cpus", "mem_gib", "link_gbit_s", "vms_per_host"},
                                    [&](const std::string& k, const toml::node& v) -> Status {
                                      if (k == "count") {
                                        has_count = true;
                                        return tomlcfg::get(src, v, k, &g.count);
                                      }
                                      if (k == "cpus") {
                                        int c = 0;
                                        if (Status r = tomlcfg::get(src, v, k, &c); !r) return r;
                                        if (c <= 0) return tomlcfg::type_error(src, v, k, "a positive integer");
                                        g.cpus = static_cast<std::uint32_t>(c);
                                        return {};
                                      }
                                      if (k == "mem_gib") return tomlcfg::get(src, v, k, &g.mem_gib);
                                      if (k == "link_gbit_s") return tomlcfg::get(src, v, k, &g.link_gbit_s);
                                      return tomlcfg::get(src, v, k, &g.vms_per_host);
                                    });
    if (!st) return st;
    if (!has_count || g.count <= 0) return tomlcfg::type_error(src, x, "count", "a positive integer");
    out->push_back(g);
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
  if (!s.groups.empty()) {
    std::int64_t n = 0;  // int counts: their sum can pass INT_MAX
    for (const auto& g : s.groups) {
      if (g.count <= 0 || g.cpus == 0 || g.vms_per_host < 0 || !(g.mem_gib > 0) || !(g.link_gbit_s > 0)) {
        return make_error(Errc::kInvalidArgument, "a host group needs count, cpus, mem_gib and link_gbit_s > 0");
      }
      n += g.count;
    }
    if (n != s.hosts) return make_error(Errc::kInvalidArgument, "hosts must equal the sum of the groups' counts");
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
  Status st = tomlcfg::walk(*root, S, "run", {"name", "seed", "duration_s", "round_s", "tick_s", "model_tau_s"},
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
                              if (k == "model_tau_s") return get(S, n, k, &s.model_tau_s);
                              return get(S, n, k, &s.tick_s);
                            });
  if (!st) return st.error();
  const toml::node* groups = nullptr;
  bool hosts_set = false;
  st = tomlcfg::walk(*root, S, "cluster",
                     {"hosts", "host_cpus", "host_mem_gib", "link_gbit_s", "vms_per_host", "groups"},
                     [&](const std::string& k, const toml::node& n) -> Status {
                       if (k == "groups") {
                         groups = &n;  // after the defaults it inherits
                         return {};
                       }
                       if (k == "hosts") {
                         hosts_set = true;
                         return get(S, n, k, &s.hosts);
                       }
                       if (k == "host_cpus") return get_u32(S, n, k, &s.host_cpus);
                       if (k == "host_mem_gib") return get(S, n, k, &s.host_mem_gib);
                       if (k == "link_gbit_s") return get(S, n, k, &s.link_gbit_s);
                       return get(S, n, k, &s.vms_per_host);
                     });
  if (!st) return st.error();
  if (groups != nullptr) {
    if (Status g = get_groups(S, *groups, s, &s.groups); !g) return g.error();
    std::int64_t n = 0;  // int counts: their sum can pass INT_MAX
    for (const auto& g : s.groups) n += g.count;
    if (n > std::numeric_limits<int>::max()) {
      return make_error(Errc::kInvalidArgument,
                        tomlcfg::where(S, *groups) + "the groups' counts sum to " + std::to_string(n) +
                            ", more hosts than a simulation can hold");
    }
    if (hosts_set && n != s.hosts) {
      return make_error(Errc::kInvalidArgument,
                        tomlcfg::where(S, *groups) + "hosts = " + std::to_string(s.hosts) +
                            " but the groups' counts sum to " + std::to_string(n) + " (leave hosts out)");
    }
    s.hosts = static_cast<int>(n);
  }
  st = tomlcfg::walk(*root, S, "vms",
                     {"demand_cores", "ram_gib", "touched_frac", "dirty_mib_s", "dirty_wss_frac", "trace",
                      "trace_amplitude", "trace_period_s", "burst_prob", "burst_s", "replay"},
                     [&](const std::string& k, const toml::node& n) -> Status {
                       if (k == "demand_cores") return get_range(S, n, k, &s.vm_demand_cores);
                       if (k == "ram_gib") return get_range(S, n, k, &s.vm_ram_gib);
                       if (k == "touched_frac") return get_range(S, n, k, &s.vm_touched_frac);
                       if (k == "dirty_mib_s") return get_range(S, n, k, &s.vm_dirty_mib_s);
                       if (k == "dirty_wss_frac") return get_range(S, n, k, &s.vm_dirty_wss_frac);
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
                      "host_hold_down_s", "source_hold_down_s", "vm_cooldown_base_s", "no_return_window_s", "adaptive_crossover_frac",
                      "push_relief", "push_depth_weight", "max_inflight_per_host", "max_inflight_cluster"},
                     [&](const std::string& k, const toml::node& n) -> Status {
                       if (k == "high_enter") return get(S, n, k, &p.band.high_enter);
                       if (k == "high_exit") return get(S, n, k, &p.band.high_exit);
                       if (k == "low_enter") return get(S, n, k, &p.band.low_enter);
                       if (k == "low_exit") return get(S, n, k, &p.band.low_exit);
                       if (k == "hot_sustain_s") return get(S, n, k, &p.hot_sustain);
                       if (k == "cold_sustain_s") return get(S, n, k, &p.cold_sustain);
                       if (k == "host_hold_down_s") return get(S, n, k, &p.host_hold_down);
                       if (k == "source_hold_down_s") return get(S, n, k, &p.source_hold_down);
                       if (k == "vm_cooldown_base_s") return get(S, n, k, &p.vm_cooldown_base);
                       if (k == "no_return_window_s") return get(S, n, k, &p.no_return_window);
                       if (k == "adaptive_crossover_frac") return get(S, n, k, &p.adaptive_crossover_frac);
                       if (k == "push_relief") return get(S, n, k, &p.push_relief);
                       if (k == "push_depth_weight") return get(S, n, k, &p.push_depth_weight);
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
    ReplayTrace tr;
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
    ReplayTrace& tr = it->second.tr;
    const double t = static_cast<double>(m->env.mono_ns - it->second.first_mono_ns) / 1e9;
    if (!tr.points.empty() && t <= tr.points.back().t_s) continue;
    ReplayPoint p;
    p.t_s = t;
    p.cores = static_cast<double>(vm->cpu_ns + vm->steal_ns) / static_cast<double>(m->env.interval_ns);
    if (vm->ram_bytes > 0) tr.ram_bytes = static_cast<double>(vm->ram_bytes);
    if (vm->rss_bytes > 0) tr.rss_bytes = static_cast<double>(vm->rss_bytes);
    if (vm->dirty && vm->dirty->src != wire::DirtySource::kNone && vm->dirty->window_ns > 0) {
      const std::uint64_t page = vm->dirty->page_bytes > 0 ? vm->dirty->page_bytes : 4096;
      p.dirty_bytes_s = static_cast<double>(vm->dirty->pages) * static_cast<double>(page) * 1e9 /
                        static_cast<double>(vm->dirty->window_ns);
      if (!vm->dirty->curve.empty()) {
        tr.dirty_curve.clear();
        for (const auto& c : vm->dirty->curve) {
          std::uint64_t bytes = 0;
          // 2^64 bytes is 16 EiB: a curve beyond it is a corrupt recording.
          if (__builtin_mul_overflow(c.pages, page, &bytes) ||
              c.tau_ns > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
            return make_error(Errc::kInvalidArgument, path + ":" + std::to_string(no) +
                                                          ": a dirty curve point beyond 2^64 bytes or 2^63 ns");
          }
          tr.dirty_curve.push_back(
              model::DirtyPoint{std::chrono::nanoseconds{static_cast<std::int64_t>(c.tau_ns)}, bytes});
        }
      }
    }
    tr.points.push_back(p);
  }
  std::vector<ReplayTrace> out;
  for (auto& [id, acc] : by_id) {
    acc.tr.vm_id = id;
    out.push_back(std::move(acc.tr));
  }
  return out;
}

std::vector<model::DirtyPoint> working_set_curve(double rate_bytes_s, double wss_bytes) {
  std::vector<model::DirtyPoint> out;
  if (!(rate_bytes_s > 0) || !(wss_bytes > 0)) return out;
  for (double tau = 0.25; tau <= 256; tau *= 2) {
    const double d = wss_bytes * (1.0 - std::exp(-rate_bytes_s * tau / wss_bytes));
    out.push_back(model::DirtyPoint{std::chrono::nanoseconds{static_cast<std::int64_t>(tau * 1e9)},
                                    static_cast<std::uint64_t>(d)});
  }
  return out;
}

Result<Scenario> load_scenario(const std::string& path) {
  auto text = tomlcfg::read_file(path);
  if (!text) return text.error();
  return parse_scenario(*text, path);
}

}  // namespace vmtide::sim
