// SPDX-License-Identifier: Apache-2.0
// The simulator's event loop. Time is integer milliseconds so that ticks,
// rounds and completions order exactly (no float equality).
#include "sim.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <numbers>
#include <unordered_map>

#include "cost.h"
#include "entropy.h"

namespace vmtide::sim {

namespace {

using Ms = std::int64_t;

// splitmix64: a tiny, fully specified generator, so a seed gives the same
// numbers with any standard library (std::uniform_real_distribution does not).
struct Rng {
  std::uint64_t s;
  std::uint64_t next() noexcept {
    std::uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  double uniform() noexcept { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  // One draw from r. Uniform takes one number from the stream (as before
  // distributions existed, so old scenarios give the same clusters),
  // lognormal two (Box-Muller), choice one.
  double in(const Range& r) noexcept {
    switch (r.kind) {
      case DistKind::kUniform:
        break;
      case DistKind::kLognormal: {
        const double u1 = 1.0 - uniform();  // (0, 1]
        const double u2 = uniform();
        const double z = std::sqrt(-2.0 * std::log(u1)) * std::cos(2 * std::numbers::pi * u2);
        double x = r.median * std::exp(r.sigma * z);
        if (r.max > 0) x = std::min(x, r.max);
        return std::max(x, r.min);
      }
      case DistKind::kChoice: {
        double total = 0;
        for (std::size_t i = 0; i < r.values.size(); ++i) total += r.weights.empty() ? 1.0 : r.weights[i];
        double u = uniform() * total;
        for (std::size_t i = 0; i < r.values.size(); ++i) {
          u -= r.weights.empty() ? 1.0 : r.weights[i];
          if (u < 0) return r.values[i];
        }
        return r.values.back();
      }
    }
    return r.min + (r.max - r.min) * uniform();
  }
};

constexpr double kGiB = 1024.0 * 1024 * 1024;

struct Vm {
  double base_cores = 0;
  bool stepped = false;  // first placed on a host the load step hits
  double phase = 0;      // diurnal phase, or step time for kStep
  double walk = 1.0;     // random-walk factor
  Ms burst_until = -1;
  double demand = 0;  // cores, now
  int index = 0;
  int host = 0;
  bool migrating = false;
  Rng rng{0};
  std::vector<std::pair<int, Ms>> left;  // hosts left and when
};

struct Flight {
  Ms end = 0;
  int vm = 0;
  int src = 0;
  int dst = 0;
  bool ok = true;
  double bytes = 0;
  Ms start = 0;
};

class Engine {
 public:
  Engine(const Scenario& s, Policy& p, const CompletionHook& hook) : s_(s), policy_(p), hook_(hook) {}

  Result<Metrics> run() {
    setup();
    m_.policy = std::string(policy_.name());
    const Ms end = to_ms(s_.duration_s);
    const Ms tick = std::max<Ms>(1, to_ms(s_.tick_s));
    const Ms round = std::max<Ms>(1, to_ms(s_.round_s));
    Ms t = 0;
    Ms next_tick = 0;
    Ms next_round = 0;
    while (true) {
      Ms te = std::min(next_tick, next_round);
      if (!flights_.empty()) te = std::min(te, flights_.front().end);
      if (te > end) break;
      integrate(t, te);
      t = te;
      while (!flights_.empty() && flights_.front().end <= t) complete(t);
      if (t == next_tick) {
        advance_traces(t, tick);
        sample(t);
        next_tick += tick;
      }
      if (t == next_round) {
        if (Status st = round_at(t); !st) return st.error();
        next_round += round;
      }
    }
    integrate(t, end);
    m_.balanced_at_end = balanced();
    m_.final_entropy = m_.series.empty() ? 0.0 : m_.series.back().entropy;
    return std::move(m_);
  }

 private:
  static Ms to_ms(double s) { return static_cast<Ms>(std::llround(s * 1000.0)); }

  void setup() {
    Rng g{s_.seed};
    // Hosts: alike, or group by group.
    std::vector<Scenario::HostGroup> per_host;
    if (s_.groups.empty()) {
      per_host.assign(static_cast<std::size_t>(s_.hosts),
                      Scenario::HostGroup{1, s_.host_cpus, s_.host_mem_gib, s_.link_gbit_s, s_.vms_per_host});
    } else {
      for (const auto& grp : s_.groups) per_host.insert(per_host.end(), static_cast<std::size_t>(grp.count), grp);
    }
    // Generated VMs are placed round-robin over the hosts that still take
    // one: with equal counts VM i lands on host i mod hosts.
    std::vector<int> slot;
    if (s_.vms.empty()) {
      int most = 0;
      for (const auto& hg : per_host) most = std::max(most, hg.vms_per_host);
      for (int r = 0; r < most; ++r) {
        for (int h = 0; h < s_.hosts; ++h) {
          if (r < per_host[static_cast<std::size_t>(h)].vms_per_host) slot.push_back(h);
        }
      }
    }
    const int nvm = s_.vms.empty() ? static_cast<int>(slot.size()) : static_cast<int>(s_.vms.size());
    const int stepped_hosts = static_cast<int>(std::lround(s_.step_hosts_frac * s_.hosts));
    host_vms_.assign(static_cast<std::size_t>(s_.hosts), {});
    overhead_.assign(static_cast<std::size_t>(s_.hosts), 0.0);
    cap_.assign(static_cast<std::size_t>(s_.hosts), 0.0);
    vms_.resize(static_cast<std::size_t>(nvm));
    model_.hosts.resize(static_cast<std::size_t>(s_.hosts));
    model_.vms.resize(static_cast<std::size_t>(nvm));
    char buf[32];
    for (int h = 0; h < s_.hosts; ++h) {
      auto& hs = model_.hosts[static_cast<std::size_t>(h)];
      const auto& hg = per_host[static_cast<std::size_t>(h)];
      std::snprintf(buf, sizeof buf, "h%04d", h);
      hs.name = buf;
      hs.cpus = hg.cpus;
      cap_[static_cast<std::size_t>(h)] = hg.cpus;
      hs.mem_total_bytes = static_cast<std::uint64_t>(hg.mem_gib * kGiB);
      hs.link_bw_bytes_per_s = hg.link_gbit_s * 1e9 / 8;
    }
    for (int i = 0; i < nvm; ++i) {
      Vm& v = vms_[static_cast<std::size_t>(i)];
      auto& vs = model_.vms[static_cast<std::size_t>(i)];
      const VmSpec* spec = s_.vms.empty() ? nullptr : &s_.vms[static_cast<std::size_t>(i)];
      // Generated VMs are placed round-robin: every host starts with the same count.
      v.index = i;
      v.host = spec ? spec->host : slot[static_cast<std::size_t>(i)];
      v.stepped = v.host < stepped_hosts;
      v.base_cores = spec ? spec->demand_cores : g.in(s_.vm_demand_cores);
      v.phase = g.uniform();
      v.rng = Rng{s_.seed ^ (0x51ed2701u + static_cast<std::uint64_t>(i) * 0x2545f4914f6cdd1dull)};
      std::snprintf(buf, sizeof buf, "vm%05d", i);
      vs.id = buf;
      vs.name = buf;
      vs.host = model_.hosts[static_cast<std::size_t>(v.host)].name;
      vs.vcpus = static_cast<std::uint32_t>(std::ceil(std::max(1.0, 2 * v.base_cores)));
      const double ram = (spec ? spec->ram_gib : g.in(s_.vm_ram_gib)) * kGiB;
      vs.ram_bytes = static_cast<std::uint64_t>(ram);
      vs.rss_bytes = static_cast<std::uint64_t>(ram * (spec ? spec->touched_frac : g.in(s_.vm_touched_frac)));
      vs.dirty_bytes_per_s = (spec ? spec->dirty_mib_s : g.in(s_.vm_dirty_mib_s)) * 1024 * 1024;
      if (s_.vm_dirty_wss_frac.kind != DistKind::kUniform || s_.vm_dirty_wss_frac.max > 0) {
        // Drawn even for hand-placed VMs, so adding one does not shift the others.
        const double wss = g.in(s_.vm_dirty_wss_frac) * static_cast<double>(vs.rss_bytes);
        vs.dirty_curve = working_set_curve(vs.dirty_bytes_per_s, wss);
      }
      if (s_.trace == TraceKind::kReplay) {
        // What the recording knows about this VM replaces the drawn values.
        const ReplayTrace& rt = s_.replay[static_cast<std::size_t>(i) % s_.replay.size()];
        if (rt.ram_bytes > 0) vs.ram_bytes = static_cast<std::uint64_t>(rt.ram_bytes);
        if (rt.rss_bytes > 0) vs.rss_bytes = static_cast<std::uint64_t>(std::min(rt.rss_bytes, rt.ram_bytes > 0 ? rt.ram_bytes : rt.rss_bytes));
        if (!rt.dirty_curve.empty()) vs.dirty_curve = rt.dirty_curve;
      }
      host_vms_[static_cast<std::size_t>(v.host)].push_back(i);
      id_index_.emplace(vs.id, i);
    }
    for (std::size_t h = 0; h < model_.hosts.size(); ++h)
      host_index_.emplace(model_.hosts[h].name, static_cast<int>(h));
    advance_traces(0, 0);
  }

  // Demand of every VM at time t (tick = the step since the last call).
  void advance_traces(Ms t, Ms tick) {
    const double ts = static_cast<double>(t) / 1000.0;
    const double a = s_.trace_amplitude;
    const bool step_on = ts >= s_.step_at_s;
    for (Vm& v : vms_) {
      double f = 1.0;
      switch (s_.trace) {
        case TraceKind::kConst:
          break;
        case TraceKind::kStep:
          f = ts >= v.phase * s_.duration_s ? 1.0 + a : 1.0;
          break;
        case TraceKind::kRamp:
          f = 1.0 + a * std::min(1.0, ts / s_.trace_period_s);
          break;
        case TraceKind::kDiurnal:
          f = 1.0 + a * std::sin(2 * std::numbers::pi * (ts / s_.trace_period_s + v.phase));
          break;
        case TraceKind::kRandomWalk:
          if (tick > 0) v.walk = std::clamp(v.walk + a * 0.1 * (2 * v.rng.uniform() - 1), 0.25, 2.0);
          f = v.walk;
          break;
        case TraceKind::kReplay:
          break;  // absolute cores, below
        case TraceKind::kBursty:
          if (tick > 0 && t >= v.burst_until && v.rng.uniform() < s_.burst_prob) v.burst_until = t + to_ms(s_.burst_s);
          f = t < v.burst_until ? 1.0 + a : 1.0;
          break;
      }
      double cores = v.base_cores * f;
      if (s_.trace == TraceKind::kReplay) {
        const ReplayPoint& p = replayed(v.index, ts);
        cores = p.cores;
        if (p.dirty_bytes_s >= 0) model_.vms[static_cast<std::size_t>(v.index)].dirty_bytes_per_s = p.dirty_bytes_s;
      }
      v.demand = std::max(0.0, cores * (step_on && v.stepped ? s_.step_factor : 1.0));
    }
  }

  // Recorded demand of VM i at ts: trace i mod K, the last sample at or
  // before ts, cyclic over the recording's span.
  const ReplayPoint& replayed(int i, double ts) const {
    static const ReplayPoint kIdle{};
    const auto& pts = s_.replay[static_cast<std::size_t>(i) % s_.replay.size()].points;
    if (pts.empty()) return kIdle;
    const double span = pts.back().t_s + 1.0;
    const double at = std::fmod(ts, span);
    auto it = std::upper_bound(pts.begin(), pts.end(), at, [](double x, const ReplayPoint& p) { return x < p.t_s; });
    return it == pts.begin() ? pts.front() : *std::prev(it);
  }

  // Cores wanted on host h (VMs plus migration overhead).
  double host_demand(std::size_t h) const {
    double d = overhead_[h];
    for (int i : host_vms_[h]) d += vms_[static_cast<std::size_t>(i)].demand;
    return d;
  }

  // Steal: the VMs' demand above their host's capacity share, over [a, b).
  void integrate(Ms a, Ms b) {
    if (b <= a) return;
    double steal = 0;
    for (std::size_t h = 0; h < host_vms_.size(); ++h) {
      const double total = host_demand(h);
      const double cap = cap_[h];
      if (total <= cap) continue;
      double vmd = 0;
      for (int i : host_vms_[h]) vmd += vms_[static_cast<std::size_t>(i)].demand;
      steal += vmd * (1.0 - cap / total);
    }
    m_.steal_core_s += steal * static_cast<double>(b - a) / 1000.0;
  }

  std::vector<double> loads() const {
    std::vector<double> l(host_vms_.size());
    for (std::size_t h = 0; h < l.size(); ++h) l[h] = host_demand(h) / cap_[h];
    return l;
  }

  bool balanced() const {
    const auto l = loads();
    auto e = strategy::normalized_entropy(l);
    return e.ok() && *e >= s_.balanced_entropy && *std::max_element(l.begin(), l.end()) <= s_.high_frac;
  }

  void sample(Ms t) {
    const auto l = loads();
    // What the policies see: the controller's model smooths host load
    // (EWMA, BuilderConfig::tau); model_tau_s = 0 shows the truth.
    if (seen_.empty() || s_.model_tau_s <= 0) {
      seen_ = l;
    } else {
      const double a = 1.0 - std::exp(-static_cast<double>(t - last_sample_) / 1000.0 / s_.model_tau_s);
      for (std::size_t h = 0; h < l.size(); ++h) seen_[h] += a * (l[h] - seen_[h]);
    }
    last_sample_ = t;
    Sample smp;
    smp.t_s = static_cast<double>(t) / 1000.0;
    auto e = strategy::normalized_entropy(l);
    smp.entropy = e.ok() ? *e : 0.0;
    double sum = 0, sq = 0;
    for (double x : l) {
      sum += x;
      sq += x * x;
      smp.max_load = std::max(smp.max_load, x);
    }
    const double n = static_cast<double>(l.size());
    smp.stddev = std::sqrt(std::max(0.0, sq / n - (sum / n) * (sum / n)));
    m_.series.push_back(smp);
    if (smp.t_s >= s_.step_at_s && m_.loads_at_step.empty()) m_.loads_at_step = l;
    m_.loads_end = l;
    if (smp.t_s >= s_.step_at_s && m_.time_to_balance_s < 0 && smp.entropy >= s_.balanced_entropy &&
        smp.max_load <= s_.high_frac) {
      m_.time_to_balance_s = smp.t_s - s_.step_at_s;
    }
  }

  // The policy's view: what an agent would report, without noise.
  void refresh_model(Ms t) {
    model_.now = model::TimeNs{t * 1'000'000};
    std::vector<double> incoming_ram(host_vms_.size(), 0.0);
    for (const Flight& f : flights_) {
      incoming_ram[static_cast<std::size_t>(f.dst)] += model_.vms[static_cast<std::size_t>(f.vm)].ram_bytes;
    }
    for (std::size_t h = 0; h < host_vms_.size(); ++h) {
      auto& hs = model_.hosts[h];
      const double total = host_demand(h);
      const double cap = cap_[h];
      const double excess = std::max(0.0, total - cap);
      hs.cpu_load_frac = seen_.empty() ? total / cap : seen_[h];
      hs.steal_frac = excess / cap;
      double used_ram = incoming_ram[h];
      for (int i : host_vms_[h]) {
        Vm& v = vms_[static_cast<std::size_t>(i)];
        auto& vs = model_.vms[static_cast<std::size_t>(i)];
        used_ram += static_cast<double>(vs.ram_bytes);
        const double stolen = total > 0 ? v.demand * excess / total : 0.0;
        vs.cpu_used_cores = v.demand - stolen;
        vs.steal_cores = stolen;
      }
      hs.mem_free_bytes = static_cast<std::uint64_t>(std::max(0.0, static_cast<double>(hs.mem_total_bytes) - used_ram));
    }
  }

  Status round_at(Ms t) {
    refresh_model(t);
    strategy::RoundInputs in;
    in.outcomes = std::move(outcomes_);
    outcomes_.clear();
    for (const Flight& f : flights_) {
      in.in_flight.push_back(strategy::InFlight{model_.vms[static_cast<std::size_t>(f.vm)].id,
                                                model_.hosts[static_cast<std::size_t>(f.src)].name,
                                                model_.hosts[static_cast<std::size_t>(f.dst)].name});
    }
    auto moves = policy_.decide(model_, in);
    if (!moves) return moves.error();
    for (const Move& mv : *moves) start(t, mv);
    return {};
  }

  void start(Ms t, const Move& mv) {
    auto vi = id_index_.find(mv.vm_id);
    auto si = host_index_.find(mv.src);
    auto di = host_index_.find(mv.dst);
    if (vi == id_index_.end() || si == host_index_.end() || di == host_index_.end() || si->second == di->second) {
      ++m_.rejected;
      return;
    }
    Vm& v = vms_[static_cast<std::size_t>(vi->second)];
    if (v.migrating || v.host != si->second) {
      ++m_.rejected;
      return;
    }
    const auto& vs = model_.vms[static_cast<std::size_t>(vi->second)];
    const strategy::MigrationCost c = cost_(vs, model_.hosts[static_cast<std::size_t>(si->second)],
                                            model_.hosts[static_cast<std::size_t>(di->second)]);
    Flight f;
    f.start = t;
    f.vm = vi->second;
    f.src = si->second;
    f.dst = di->second;
    f.ok = c.converges && std::isfinite(c.total_s) && c.total_s <= s_.fail_after_s;
    const double dur = f.ok ? std::max(0.001, c.total_s) : s_.fail_after_s;
    f.end = t + std::max<Ms>(1, to_ms(dur));
    f.bytes = f.ok ? static_cast<double>(c.bytes) : 0.0;
    v.migrating = true;
    overhead_[static_cast<std::size_t>(f.src)] += s_.migration_cpu_cores;
    overhead_[static_cast<std::size_t>(f.dst)] += s_.migration_cpu_cores;
    ++m_.migrations;
    m_.migration_s += dur;
    // Keep flights ordered by (end, vm) so completions are deterministic.
    auto pos = std::upper_bound(flights_.begin(), flights_.end(), f, [](const Flight& a, const Flight& b) {
      return a.end != b.end ? a.end < b.end : a.vm < b.vm;
    });
    flights_.insert(pos, f);
  }

  void complete(Ms t) {
    const Flight f = flights_.front();
    flights_.erase(flights_.begin());
    Vm& v = vms_[static_cast<std::size_t>(f.vm)];
    v.migrating = false;
    overhead_[static_cast<std::size_t>(f.src)] -= s_.migration_cpu_cores;
    overhead_[static_cast<std::size_t>(f.dst)] -= s_.migration_cpu_cores;
    if (f.ok) {
      auto& from = host_vms_[static_cast<std::size_t>(f.src)];
      from.erase(std::find(from.begin(), from.end(), f.vm));
      host_vms_[static_cast<std::size_t>(f.dst)].push_back(f.vm);
      v.host = f.dst;
      model_.vms[static_cast<std::size_t>(f.vm)].host = model_.hosts[static_cast<std::size_t>(f.dst)].name;
      const Ms window = to_ms(s_.ping_pong_window_s);
      for (const auto& [h, when] : v.left) {
        if (h == f.dst && t - when <= window) {
          ++m_.ping_pong;
          break;
        }
      }
      v.left.emplace_back(f.src, t);
      m_.gib_migrated += f.bytes / kGiB;
    } else {
      ++m_.failed;
    }
    m_.moves.push_back(MoveRecord{static_cast<double>(f.start) / 1000.0, static_cast<double>(t) / 1000.0,
                                  model_.vms[static_cast<std::size_t>(f.vm)].id,
                                  model_.hosts[static_cast<std::size_t>(f.src)].name,
                                  model_.hosts[static_cast<std::size_t>(f.dst)].name, f.ok});
    outcomes_.push_back(strategy::MoveOutcome{
        model_.vms[static_cast<std::size_t>(f.vm)].id, model_.hosts[static_cast<std::size_t>(f.src)].name,
        model_.hosts[static_cast<std::size_t>(f.dst)].name, f.ok, model::TimeNs{t * 1'000'000}});
    if (hook_) {
      std::vector<int> vm_host(vms_.size());
      for (std::size_t i = 0; i < vms_.size(); ++i) vm_host[i] = vms_[i].host;
      hook_(host_vms_, vm_host);
    }
  }

  const Scenario& s_;
  Policy& policy_;
  const CompletionHook& hook_;
  // The simulated truth: a migration lasts what the pre-copy predictor says
  // for the VM's inputs (DESIGN.md "Pre-copy prediction").
  strategy::CostModel cost_ = strategy::make_precopy_cost_model();
  std::vector<Vm> vms_;
  std::vector<std::vector<int>> host_vms_;
  std::vector<double> overhead_;  // cores per host used by running migrations
  std::vector<double> cap_;       // cores per host
  std::vector<Flight> flights_;   // ordered by (end, vm)
  std::vector<strategy::MoveOutcome> outcomes_;
  std::unordered_map<std::string, int> id_index_;
  std::unordered_map<std::string, int> host_index_;
  model::ClusterModel model_;
  std::vector<double> seen_;  // host loads as the policies see them (smoothed)
  Ms last_sample_ = 0;
  Metrics m_;
};

}  // namespace

Result<Metrics> run(const Scenario& s, Policy& policy, const CompletionHook& hook) {
  if (Status v = validate(s); !v) return v.error();
  return Engine(s, policy, hook).run();
}

}  // namespace vmtide::sim
