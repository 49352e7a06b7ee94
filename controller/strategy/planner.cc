// SPDX-License-Identifier: Apache-2.0
// One decision round of the balancer (planner.h): maintenance evacuation,
// then Push, Pull or adaptive, under every safety rule, as a pure function.
#include "planner.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <set>
#include <string_view>
#include <tuple>
#include <unordered_map>

#include "balance.h"
#include "entropy.h"

namespace vmtide::strategy {

using model::ClusterModel;
using model::HostState;
using model::VmState;
using model::Zone;
using std::chrono::nanoseconds;

const char* trigger_name(Trigger t) noexcept {
  switch (t) {
    case Trigger::kPush:
      return "push";
    case Trigger::kPull:
      return "pull";
    case Trigger::kMaintenance:
      return "maintenance";
  }
  return "unknown";
}

nanoseconds cooldown_for(const PlannerConfig& cfg, int streak) noexcept {
  if (streak < 1) streak = 1;
  const double base_ns = static_cast<double>(cfg.vm_cooldown_base.count());
  const double max_ns = static_cast<double>(cfg.vm_cooldown_max.count());
  // pow may overflow to inf for a long streak; the cap catches that too.
  const double ns = base_ns * std::pow(cfg.vm_cooldown_factor, streak - 1);
  if (!(ns < max_ns)) return cfg.vm_cooldown_max;
  return nanoseconds{static_cast<std::int64_t>(ns)};
}

namespace {

constexpr std::size_t kNone = std::numeric_limits<std::size_t>::max();
// Floor on a predicted duration, so a zero-byte VM cannot score infinity.
constexpr double kMinCostS = 1e-3;

std::string num(double v, int prec = 2) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", prec, v);
  return buf;
}

std::string secs(nanoseconds d) { return num(std::chrono::duration<double>(d).count(), 0) + " s"; }

std::string gib(double bytes) { return num(bytes / (1024.0 * 1024.0 * 1024.0), 1) + " GiB"; }

// One (vm -> dst) candidate under evaluation.
struct Eval {
  std::size_t vm = kNone;
  std::size_t dst = kNone;
  double gain = 0.0;
  double score = 0.0;
  MigrationCost cost;
  std::optional<std::string> rejected;
  // Push: further moves predicted to be needed after this one before the
  // source is down to its relief level (0 = this move suffices).
  std::size_t more_moves = 0;
};

class Round {
 public:
  Round(const ClusterModel& m, const PlannerConfig& cfg, PlannerState& st, const CostModel& cost, Plan& plan)
      : m_(m), cfg_(cfg), st_(st), cost_(cost), plan_(plan), now_(m.now) {}

  void init(const RoundInputs& in, const std::vector<std::size_t>& host_of_vm);
  void run();
  void prune();

 private:
  // --- per-host / per-VM eligibility ---
  std::optional<std::string> target_block(std::size_t h) const;
  std::optional<std::string> source_block(std::size_t h) const;
  std::optional<std::string> vm_block(std::size_t v, bool maintenance) const;

  // --- candidates ---
  Eval evaluate(std::size_t v, std::size_t dst, Trigger trig) const;
  void evaluate_vm_targets(std::size_t v, Trigger trig, std::vector<Eval>& out) const;
  std::vector<CandidateNote> notes(const std::vector<Eval>& evals, std::size_t chosen,
                                   const std::vector<CandidateNote>& excluded_vms) const;
  std::size_t pick(const std::vector<Eval>& evals, Trigger trig) const;
  void count_more_moves(std::size_t h, std::vector<Eval>& evals) const;
  void apply(const Eval& e, Trigger trig, std::string reason, std::vector<CandidateNote> cands);

  // --- strategies ---
  void maintenance();
  void push();
  void pull();
  bool cluster_full() const { return cluster_inflight_ >= cfg_.max_inflight_cluster; }
  void skip(Trigger t, std::size_t h, std::string reason, std::vector<CandidateNote> cands = {}) {
    plan_.skipped.push_back(Skipped{t, m_.hosts[h].name, std::move(reason), std::move(cands)});
  }
  HostHistory& hh(std::size_t h) { return st_.hosts[m_.hosts[h].name]; }
  const HostHistory* host_hist(std::size_t h) const {
    auto it = st_.hosts.find(m_.hosts[h].name);
    return it == st_.hosts.end() ? nullptr : &it->second;
  }
  const VmHistory* vh(std::size_t v) const {
    auto it = st_.vms.find(m_.vms[v].id);
    return it == st_.vms.end() ? nullptr : &it->second;
  }
  void bump_vm(const std::string& id, TimeNs at, const std::string* left_host);
  // Hold-down: no target before `until`, no source before `give_until`.
  void hold(const std::string& host, TimeNs until, TimeNs give_until) {
    auto& h = st_.hosts[host];
    h.hold_until = std::max(h.hold_until, until);
    h.give_hold_until = std::max(h.give_hold_until, give_until);
  }
  // The VMs on host h in id order, so the plan does not depend on the order
  // of ClusterModel::vms. Sorted on first use: only sources are ever listed,
  // and sorting every host's list costs more than the rest of a big round.
  const std::vector<std::size_t>& vms_of(std::size_t h) {
    if (!vms_sorted_[h]) {
      auto by_id = [&](std::size_t x, std::size_t y) { return m_.vms[x].id < m_.vms[y].id; };
      std::sort(vms_on_[h].begin(), vms_on_[h].end(), by_id);
      vms_sorted_[h] = true;
    }
    return vms_on_[h];
  }
  double share(std::size_t v, std::size_t h) const {
    return m_.vms[v].demand_cores() / static_cast<double>(m_.hosts[h].cpus);
  }

  const ClusterModel& m_;
  const PlannerConfig& cfg_;
  PlannerState& st_;
  const CostModel& cost_;
  Plan& plan_;
  TimeNs now_;

  std::unordered_map<std::string_view, std::size_t> host_idx_;  // lookups only, never iterated
  std::vector<std::size_t> rank_;                               // host index -> position in name order
  std::vector<std::size_t> by_name_;                            // host indices in name order
  std::vector<std::vector<std::size_t>> vms_on_;                // VM indices per host; by id once vms_of() sorted it
  std::vector<bool> vms_sorted_;
  std::vector<std::size_t> vm_host_;  // VM index -> current host index
  std::vector<bool> vm_in_flight_;
  std::vector<double> load_;          // working load fraction (moves applied)
  std::vector<double> reserve_frac_;  // CPU share of incoming in-flight VMs
  std::vector<double> reserve_mem_;   // RAM of incoming in-flight VMs
  std::vector<int> inflight_;
  std::vector<bool> used_;  // gave or received this round
  int cluster_inflight_ = 0;
  std::optional<EntropyTracker> ent_;
  model::Band band_;  // cfg_.band with the hot exit in effect this round
  double relief_ = 0.0;  // Push relieves a hot host to this load (PlannerConfig::push_relief)
  // group -> host index -> members there (in-flight VMs count on both ends).
  std::map<std::string, std::map<std::size_t, int>, std::less<>> anti_;
  std::map<std::string, std::map<std::size_t, int>, std::less<>> aff_;
  // Eligible targets by (load, name rank); hosts leave it when used.
  std::set<std::tuple<double, std::size_t, std::size_t>> targets_;
};

void Round::bump_vm(const std::string& id, TimeNs at, const std::string* left_host) {
  VmHistory& h = st_.vms[id];
  if (h.streak > 0 && at - h.last_event >= cfg_.vm_cooldown_reset) h.streak = 0;
  ++h.streak;
  h.last_event = std::max(h.last_event, at);
  h.cooldown_until = std::max(h.cooldown_until, at + cooldown_for(cfg_, h.streak));
  if (left_host != nullptr) h.left.emplace_back(*left_host, at);
}

void Round::init(const RoundInputs& in, const std::vector<std::size_t>& host_of_vm) {
  const std::size_t nh = m_.hosts.size();
  host_idx_.reserve(nh);
  for (std::size_t i = 0; i < nh; ++i) host_idx_.emplace(m_.hosts[i].name, i);
  // Everything that reaches the plan iterates in host-name / VM-id order, so
  // the plan does not depend on the order of the model's vectors.
  by_name_.resize(nh);
  for (std::size_t i = 0; i < nh; ++i) by_name_[i] = i;
  std::sort(by_name_.begin(), by_name_.end(),
            [&](std::size_t x, std::size_t y) { return m_.hosts[x].name < m_.hosts[y].name; });
  rank_.resize(nh);
  for (std::size_t r = 0; r < nh; ++r) rank_[by_name_[r]] = r;
  vms_on_.resize(nh);
  vm_host_.resize(m_.vms.size());
  vm_in_flight_.assign(m_.vms.size(), false);
  load_.resize(nh);
  reserve_frac_.assign(nh, 0.0);
  reserve_mem_.assign(nh, 0.0);
  inflight_.assign(nh, 0);
  used_.assign(nh, false);
  for (std::size_t i = 0; i < nh; ++i) load_[i] = std::max(0.0, m_.hosts[i].cpu_load_frac);

  for (std::size_t v = 0; v < m_.vms.size(); ++v) {
    const std::size_t h = host_of_vm[v];
    vm_host_[v] = h;
    vms_on_[h].push_back(v);
    for (const auto& g : m_.vms[v].anti_affinity_groups) ++anti_[g][h];
    if (!m_.vms[v].affinity_group.empty()) ++aff_[m_.vms[v].affinity_group][h];
  }
  vms_sorted_.assign(nh, false);
  // Only the (few) in-flight VMs need finding by id.
  std::map<std::string_view, std::size_t> vm_idx;
  for (const InFlight& f : in.in_flight) vm_idx.emplace(f.vm_id, kNone);
  if (!vm_idx.empty()) {
    for (std::size_t v = 0; v < m_.vms.size(); ++v) {
      if (auto it = vm_idx.find(m_.vms[v].id); it != vm_idx.end()) it->second = v;
    }
  }

  // Outcomes first: they change cooldowns and hold-downs this round sees.
  for (const MoveOutcome& o : in.outcomes) {
    VmHistory& h = st_.vms[o.vm_id];
    const bool planned_by_us = !h.left.empty() && h.left.back().first == o.src;
    if (!o.succeeded || !planned_by_us) {
      bump_vm(o.vm_id, o.at, o.succeeded ? &o.src : nullptr);
    } else {
      // The cooldown counts from completion, not from planning.
      h.last_event = std::max(h.last_event, o.at);
      h.cooldown_until = std::max(h.cooldown_until, o.at + cooldown_for(cfg_, h.streak));
    }
    hold(o.src, o.at + cfg_.host_hold_down, o.at + (o.succeeded ? cfg_.source_hold_down : cfg_.host_hold_down));
    hold(o.dst, o.at + cfg_.host_hold_down, o.at + cfg_.host_hold_down);
  }

  // In-flight migrations: limits, reservations, and group membership at the target.
  for (const InFlight& f : in.in_flight) {
    auto s = host_idx_.find(f.src);
    auto d = host_idx_.find(f.dst);
    ++cluster_inflight_;
    if (s != host_idx_.end()) ++inflight_[s->second];
    if (d != host_idx_.end()) ++inflight_[d->second];
    auto v = vm_idx.find(f.vm_id);
    if (v == vm_idx.end() || v->second == kNone) continue;
    vm_in_flight_[v->second] = true;
    if (d == host_idx_.end() || vm_host_[v->second] == d->second) continue;  // already landed
    reserve_frac_[d->second] += share(v->second, d->second);
    reserve_mem_[d->second] += static_cast<double>(m_.vms[v->second].ram_bytes);
    for (const auto& g : m_.vms[v->second].anti_affinity_groups) ++anti_[g][d->second];
    if (!m_.vms[v->second].affinity_group.empty()) ++aff_[m_.vms[v->second].affinity_group][d->second];
  }

  // The hot exit in effect: the band's, unless the cluster's mean load is
  // so close to it that most hosts could never get below it; then halfway
  // between the mean and the enter threshold, so a hot host can still hand
  // load to hosts near the mean instead of staying hot for ever.
  {
    double sum = 0.0;
    std::size_t n = 0;
    for (std::size_t h = 0; h < nh; ++h) {
      if (m_.hosts[h].stale || m_.hosts[h].maintenance) continue;
      sum += load_[h];
      ++n;
    }
    const double mean = n > 0 ? sum / static_cast<double>(n) : 0.0;
    const double margin = (cfg_.band.high_enter - cfg_.band.high_exit) / 2;
    band_ = cfg_.band;
    band_.high_exit = std::max(cfg_.band.high_exit, std::min(mean + margin, cfg_.band.high_enter - 0.01));
    relief_ = band_.high_exit + cfg_.push_relief * (band_.high_enter - band_.high_exit);
  }
  // Hysteresis zones and how long each has held. A stale host's readings
  // are not trusted, so its state restarts from normal.
  for (std::size_t h : by_name_) {
    HostHistory& hist = hh(h);
    if (m_.hosts[h].stale) {
      hist.zone = Zone::kNormal;
      hist.hot = {};
      hist.cold = {};
      continue;
    }
    hist.zone = model::zone_update(hist.zone, load_[h], band_);
    if (hist.zone != Zone::kHot) hist.relieved = false;
    // A host Push relieved is overloaded again only at high_enter, and must
    // stay there for hot_sustain like any new hotspot; hovering between the
    // relief level and high_enter moves nothing.
    const bool overloaded = hist.zone == Zone::kHot && (!hist.relieved || load_[h] >= band_.high_enter);
    hist.hot = model::sustained_update(hist.hot, overloaded, now_);
    hist.cold = model::sustained_update(hist.cold, hist.zone == Zone::kCold, now_);
  }

  std::vector<double> metric;
  double sum = 0.0;
  std::size_t n = 0;
  for (std::size_t h : by_name_) {
    if (m_.hosts[h].stale) continue;
    metric.push_back(load_[h]);
    if (!m_.hosts[h].maintenance) {
      sum += load_[h];
      ++n;
    }
  }
  ent_.emplace(metric);
  auto e = normalized_entropy(metric);
  plan_.entropy_before = e ? *e : ent_->value();
  plan_.mean_load_frac = n > 0 ? sum / static_cast<double>(n) : 0.0;

  for (std::size_t h : by_name_) {
    if (auto why = target_block(h)) {
      plan_.excluded_targets.push_back(HostNote{m_.hosts[h].name, *why});
    } else {
      targets_.emplace(load_[h], rank_[h], h);
    }
  }
}

std::optional<std::string> Round::target_block(std::size_t h) const {
  const HostState& host = m_.hosts[h];
  if (host.stale) return "stale data: never a source or target";
  if (host.maintenance) return "in maintenance";
  for (const auto& t : cfg_.host_exclude_tags) {
    if (model::has_tag(host.tags, t)) return "tagged " + t + ": never receives";
  }
  if (host.steal_frac > cfg_.target_max_steal_frac) {
    return "under CPU steal (" + num(host.steal_frac, 3) + " > " + num(cfg_.target_max_steal_frac, 3) + ")";
  }
  if (host.io_pressure_frac > cfg_.target_max_io_pressure_frac) {
    return "under I/O pressure (" + num(host.io_pressure_frac, 3) + " > " + num(cfg_.target_max_io_pressure_frac, 3) +
           ")";
  }
  if (const HostHistory* hist = host_hist(h); hist != nullptr && hist->hold_until > now_) {
    return "in hold-down for another " + secs(hist->hold_until - now_);
  }
  if (inflight_[h] >= cfg_.max_inflight_per_host) {
    return std::to_string(inflight_[h]) + " migration(s) in flight (limit " +
           std::to_string(cfg_.max_inflight_per_host) + " per host)";
  }
  if (used_[h]) return "already part of a move this round";
  return std::nullopt;
}

std::optional<std::string> Round::source_block(std::size_t h) const {
  if (m_.hosts[h].stale) return "stale data: never a source or target";
  if (used_[h]) return "already part of a move this round";
  if (inflight_[h] >= cfg_.max_inflight_per_host) {
    return std::to_string(inflight_[h]) + " migration(s) in flight (limit " +
           std::to_string(cfg_.max_inflight_per_host) + " per host)";
  }
  if (m_.hosts[h].maintenance) return std::nullopt;  // evacuation ignores hold-down
  if (const HostHistory* hist = host_hist(h); hist != nullptr && hist->give_hold_until > now_) {
    return "in hold-down for another " + secs(hist->give_hold_until - now_);
  }
  return std::nullopt;
}

std::optional<std::string> Round::vm_block(std::size_t v, bool maintenance) const {
  const VmState& vm = m_.vms[v];
  for (const auto& t : cfg_.vm_exclude_tags) {
    if (model::has_tag(vm.tags, t)) {
      return "tagged " + t + ": never moves" + std::string(maintenance ? " (evacuate it by hand)" : "");
    }
  }
  if (vm_in_flight_[v]) return "migration in flight";
  if (!maintenance) {
    if (const VmHistory* h = vh(v); h != nullptr && h->cooldown_until > now_) {
      return "in cooldown for another " + secs(h->cooldown_until - now_) + " (move " + std::to_string(h->streak) +
             " of its streak)";
    }
  }
  return std::nullopt;
}

Eval Round::evaluate(std::size_t v, std::size_t dst, Trigger trig) const {
  const VmState& vm = m_.vms[v];
  const HostState& d = m_.hosts[dst];
  const std::size_t src = vm_host_[v];
  Eval e;
  e.vm = v;
  e.dst = dst;
  const double a = load_[src];
  const double a_after = std::max(0.0, a - share(v, src));
  const double b = load_[dst];
  const double b_after = b + share(v, dst);
  e.gain = ent_->after_move(a, a_after, b, b_after) - ent_->value();

  if (const VmHistory* h = vh(v)) {
    for (const auto& [host, at] : h->left) {
      if (host == d.name && now_ - at < cfg_.no_return_window) {
        e.rejected =
            "left " + d.name + " " + secs(now_ - at) + " ago (no-return window " + secs(cfg_.no_return_window) + ")";
        return e;
      }
    }
  }
  for (const auto& g : vm.anti_affinity_groups) {
    auto it = anti_.find(g);
    if (it != anti_.end()) {
      auto c = it->second.find(dst);
      if (c != it->second.end() && c->second > 0) {
        e.rejected = "anti-affinity group " + g + " already has a VM on " + d.name;
        return e;
      }
    }
  }
  if (!vm.affinity_group.empty()) {
    const auto& where = aff_.at(vm.affinity_group);
    auto count = [&](std::size_t h) {
      auto it = where.find(h);
      return it == where.end() ? 0 : it->second;
    };
    std::size_t span = 0;
    for (const auto& [h, c] : where) span += c > 0 ? 1 : 0;
    const std::size_t after = span - (count(src) == 1 ? 1 : 0) + (count(dst) == 0 ? 1 : 0);
    if (trig != Trigger::kMaintenance) {
      if (after > span) {
        e.rejected = "would split affinity group " + vm.affinity_group + " further";
        return e;
      }
    } else if (count(dst) == 0) {
      // Evacuation must split a group that lives on the host; it re-gathers
      // the members on one host whenever such a host can still take them.
      for (const auto& [h, c] : where) {
        if (c > 0 && h != src && !m_.hosts[h].stale && !m_.hosts[h].maintenance) {
          e.rejected = "affinity group " + vm.affinity_group + " gathers on " + m_.hosts[h].name;
          return e;
        }
      }
    }
  }
  const double free_after =
      static_cast<double>(d.mem_free_bytes) - reserve_mem_[dst] - static_cast<double>(vm.ram_bytes);
  const double reserve = cfg_.target_mem_reserve_frac * static_cast<double>(d.mem_total_bytes);
  if (free_after < reserve) {
    e.rejected = "memory: " + gib(std::max(0.0, free_after)) + " free after the move, reserve is " + gib(reserve);
    return e;
  }
  const double projected = b_after + reserve_frac_[dst];
  if (projected >= band_.high_exit) {
    e.rejected = "target load would be " + num(projected) + " (must stay below " + num(band_.high_exit) + ")";
    return e;
  }
  if (trig != Trigger::kMaintenance) {
    // Leaving the source cold would make it pull the load straight back.
    if (a_after < cfg_.band.low_exit) {
      e.rejected = "source would drop to " + num(a_after) + ", below " + num(cfg_.band.low_exit) + " (cold)";
      return e;
    }
    if (!(e.gain > cfg_.min_entropy_gain)) {
      e.rejected = "entropy gain " + num(e.gain, 5) + " not above " + num(cfg_.min_entropy_gain, 5);
      return e;
    }
  }
  e.cost = cost_(vm, m_.hosts[src], d);
  if (!e.cost.converges) {
    e.rejected = "predicted not to converge (" + e.cost.model + ")";
    return e;
  }
  e.score = e.gain / std::max(e.cost.total_s, kMinCostS);
  return e;
}

void Round::evaluate_vm_targets(std::size_t v, Trigger trig, std::vector<Eval>& out) const {
  const std::size_t src = vm_host_[v];
  std::size_t feasible = 0;
  std::size_t scanned = 0;
  std::vector<bool> seen;
  const std::string& group = m_.vms[v].affinity_group;
  if (!group.empty()) seen.assign(m_.hosts.size(), false);
  for (const auto& [l, r, h] : targets_) {
    if (feasible >= cfg_.max_targets_per_vm || scanned >= cfg_.max_target_scan) break;
    if (h == src) continue;
    ++scanned;
    if (!seen.empty()) seen[h] = true;
    out.push_back(evaluate(v, h, trig));
    if (!out.back().rejected) ++feasible;
  }
  // An affinity group's members may sit on loaded hosts beyond the scan;
  // those are the only places a member can go without splitting the group.
  if (!group.empty()) {
    for (const auto& [h, c] : aff_.at(group)) {
      if (c <= 0 || h == src || seen[h]) continue;
      if (target_block(h)) continue;
      out.push_back(evaluate(v, h, trig));
    }
  }
}

// The sufficiency of a Push candidate: after moving its VM, how many more
// moves would bring hot host h down to its relief level, taking the host's
// other movable VMs biggest first (the fewest moves possible; a host that
// no set of its VMs can relieve counts one more than it has VMs). Each
// further move waits out the source hold-down, so the score becomes the
// entropy gain per second until the host is relieved:
//   gain / (predicted seconds + (more_moves + w * to_exit) * source_hold_down)
// where to_exit counts the moves that would still take the host down to
// the exit and w is push_depth_weight: between two moves that relieve the
// host equally soon, the one leaving more headroom wins, so a host left
// just under high_enter does not drift back over it and cost a move later.
// A move that relieves the host alone (w = 0) keeps the paper's gain per
// second.
void Round::count_more_moves(std::size_t h, std::vector<Eval>& evals) const {
  std::vector<std::pair<double, std::size_t>> movable;  // (share, vm), biggest first
  for (const Eval& e : evals) {
    if (e.rejected) continue;
    if (std::none_of(movable.begin(), movable.end(), [&](const auto& p) { return p.second == e.vm; })) {
      movable.emplace_back(share(e.vm, h), e.vm);
    }
  }
  std::sort(movable.begin(), movable.end(), [&](const auto& x, const auto& y) {
    return x.first != y.first ? x.first > y.first : m_.vms[x.second].id < m_.vms[y.second].id;
  });
  auto moves_to = [&](const Eval& e, double level) -> std::size_t {
    double left = load_[h] - level - share(e.vm, h);
    std::size_t n = 0;
    for (const auto& [x, v] : movable) {
      if (left <= 0) break;
      if (v == e.vm) continue;
      left -= x;
      ++n;
    }
    return left <= 0 ? n : movable.size() + 1;
  };
  const double w = cfg_.push_depth_weight;
  const double wait_s = std::chrono::duration<double>(cfg_.source_hold_down).count();
  for (Eval& e : evals) {
    if (e.rejected) continue;
    e.more_moves = moves_to(e, relief_);
    const double to_exit = w > 0 ? static_cast<double>(moves_to(e, band_.high_exit)) : 0.0;
    e.score = e.gain / (std::max(e.cost.total_s, kMinCostS) + (static_cast<double>(e.more_moves) + w * to_exit) * wait_s);
  }
}

std::size_t Round::pick(const std::vector<Eval>& evals, Trigger trig) const {
  std::size_t best = kNone;
  auto tie = [&](const Eval& x, const Eval& y) {  // deterministic: VM id, then host name
    if (x.vm != y.vm) return m_.vms[x.vm].id < m_.vms[y.vm].id;
    return rank_[x.dst] < rank_[y.dst];
  };
  if (trig != Trigger::kMaintenance) {
    for (std::size_t i = 0; i < evals.size(); ++i) {
      if (evals[i].rejected) continue;
      if (best == kNone || evals[i].score > evals[best].score ||
          (evals[i].score == evals[best].score && tie(evals[i], evals[best]))) {
        best = i;
      }
    }
    return best;
  }
  // Evacuation is mandatory, so its entropy gain is usually negative and a
  // gain-per-second ratio would favour slow moves. Each VM goes where the
  // balance ends best (ties: faster); the VM with the shortest predicted
  // migration goes first, freeing the host's migration slot soonest.
  std::map<std::size_t, std::size_t> best_for_vm;
  for (std::size_t i = 0; i < evals.size(); ++i) {
    if (evals[i].rejected) continue;
    auto [it, fresh] = best_for_vm.emplace(evals[i].vm, i);
    if (fresh) continue;
    const Eval& cur = evals[it->second];
    const Eval& x = evals[i];
    if (x.gain > cur.gain || (x.gain == cur.gain && (x.cost.total_s < cur.cost.total_s ||
                                                     (x.cost.total_s == cur.cost.total_s && tie(x, cur))))) {
      it->second = i;
    }
  }
  for (const auto& [vm, i] : best_for_vm) {
    if (best == kNone || evals[i].cost.total_s < evals[best].cost.total_s ||
        (evals[i].cost.total_s == evals[best].cost.total_s && tie(evals[i], evals[best]))) {
      best = i;
    }
  }
  return best;
}

std::vector<CandidateNote> Round::notes(const std::vector<Eval>& evals, std::size_t chosen,
                                        const std::vector<CandidateNote>& excluded_vms) const {
  std::vector<std::size_t> order(evals.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  // Chosen first, then feasible by score, then rejected in evaluation order.
  std::stable_sort(order.begin(), order.end(), [&](std::size_t x, std::size_t y) {
    auto key = [&](std::size_t i) { return i == chosen ? 0 : (evals[i].rejected ? 2 : 1); };
    if (key(x) != key(y)) return key(x) < key(y);
    if (key(x) == 1) return evals[x].score > evals[y].score;
    return false;
  });
  std::vector<CandidateNote> out;
  const std::size_t cap = cfg_.max_candidates_recorded;
  for (std::size_t i : order) {
    if (out.size() >= cap) break;
    const Eval& e = evals[i];
    CandidateNote n{m_.vms[e.vm].id, m_.hosts[e.dst].name, e.score, e.gain, e.cost.total_s, e.rejected};
    if (i != chosen && !e.rejected) {
      n.rejected = chosen != kNone && e.more_moves > evals[chosen].more_moves
                       ? "feasible, but leaves the source needing " + std::to_string(e.more_moves) + " more move(s)"
                       : std::string("feasible, but scored lower than the chosen move");
    }
    out.push_back(std::move(n));
  }
  for (const auto& n : excluded_vms) {
    if (out.size() >= cap) break;
    out.push_back(n);
  }
  return out;
}

void Round::apply(const Eval& e, Trigger trig, std::string reason, std::vector<CandidateNote> cands) {
  const std::size_t v = e.vm;
  const std::size_t src = vm_host_[v];
  const std::size_t dst = e.dst;
  const VmState& vm = m_.vms[v];
  PlannedMove mv;
  mv.trigger = trig;
  mv.vm_id = vm.id;
  mv.vm_name = vm.name;
  mv.src = m_.hosts[src].name;
  mv.dst = m_.hosts[dst].name;
  mv.reason = std::move(reason);
  mv.score = e.score;
  mv.gain = e.gain;
  mv.cost = e.cost;
  mv.candidates = std::move(cands);
  mv.entropy_before = ent_->value();

  const double a_after = std::max(0.0, load_[src] - share(v, src));
  const double b_after = load_[dst] + share(v, dst);
  ent_->apply_move(load_[src], a_after, load_[dst], b_after);
  mv.entropy_after = ent_->value();
  targets_.erase({load_[src], rank_[src], src});
  targets_.erase({load_[dst], rank_[dst], dst});
  load_[src] = a_after;
  load_[dst] = b_after;
  used_[src] = used_[dst] = true;
  ++inflight_[src];
  ++inflight_[dst];
  ++cluster_inflight_;
  vm_host_[v] = dst;
  vms_of(src);
  vms_of(dst);
  auto& from = vms_on_[src];
  from.erase(std::find(from.begin(), from.end(), v));
  auto& to = vms_on_[dst];
  to.insert(std::lower_bound(to.begin(), to.end(), v,
                             [&](std::size_t x, std::size_t y) { return m_.vms[x].id < m_.vms[y].id; }),
            v);
  for (const auto& g : vm.anti_affinity_groups) {
    --anti_[g][src];
    ++anti_[g][dst];
  }
  if (!vm.affinity_group.empty()) {
    --aff_[vm.affinity_group][src];
    ++aff_[vm.affinity_group][dst];
  }
  if (trig == Trigger::kPush) hh(src).relieved = a_after <= relief_;
  bump_vm(vm.id, now_, &mv.src);
  hold(mv.src, now_ + cfg_.host_hold_down, now_ + cfg_.source_hold_down);
  hold(mv.dst, now_ + cfg_.host_hold_down, now_ + cfg_.host_hold_down);
  plan_.moves.push_back(std::move(mv));
}

void Round::maintenance() {
  for (std::size_t h : by_name_) {
    const HostState& host = m_.hosts[h];
    if (!host.maintenance || vms_of(h).empty()) continue;
    if (auto why = source_block(h)) {
      skip(Trigger::kMaintenance, h, "evacuation waits: " + *why);
      continue;
    }
    if (cluster_full()) {
      skip(Trigger::kMaintenance, h,
           "evacuation waits: cluster concurrency limit (" + std::to_string(cfg_.max_inflight_cluster) + ") reached");
      continue;
    }
    std::vector<Eval> evals;
    std::vector<CandidateNote> excluded;
    for (std::size_t v : vms_of(h)) {
      if (auto why = vm_block(v, true)) {
        excluded.push_back(CandidateNote{m_.vms[v].id, "", 0, 0, 0, *why});
        continue;
      }
      evaluate_vm_targets(v, Trigger::kMaintenance, evals);
    }
    const std::size_t best = pick(evals, Trigger::kMaintenance);
    if (best == kNone) {
      skip(Trigger::kMaintenance, h,
           "evacuation blocked: no feasible target for any of its " + std::to_string(vms_on_[h].size()) + " VM(s)",
           notes(evals, kNone, excluded));
      continue;
    }
    const Eval& e = evals[best];
    std::string reason = "maintenance: evacuating " + host.name + " (" + std::to_string(vms_on_[h].size()) +
                         " VM(s) left); " + m_.vms[e.vm].name + " goes to " + m_.hosts[e.dst].name +
                         ", the best resulting balance (entropy " + (e.gain >= 0 ? "+" : "") + num(e.gain, 4) +
                         "), predicted " + num(e.cost.total_s, 1) + " s, the shortest of the VMs' best moves";
    apply(e, Trigger::kMaintenance, std::move(reason), notes(evals, best, excluded));
  }
}

void Round::push() {
  std::vector<std::size_t> hot;
  for (std::size_t h : by_name_) {
    const HostHistory* hist = host_hist(h);
    if (hist != nullptr && hist->zone == Zone::kHot && !m_.hosts[h].stale && !m_.hosts[h].maintenance) {
      hot.push_back(h);
    }
  }
  // Most loaded first: the worst hotspot gets the first migration slot.
  std::stable_sort(hot.begin(), hot.end(), [&](std::size_t x, std::size_t y) { return load_[x] > load_[y]; });
  for (std::size_t h : hot) {
    const HostState& host = m_.hosts[h];
    const HostHistory& hist = *host_hist(h);
    const std::string state = "load " + num(load_[h]) + ", hot for " + secs(model::sustained_for(hist.hot, now_)) +
                              ": entered at >= " + num(cfg_.band.high_enter) +
                              ", leaves at <= " + num(band_.high_exit);
    if (load_[h] <= relief_) {
      skip(Trigger::kPush, h, "hot (" + state + ") but at or below its relief level " + num(relief_));
      continue;
    }
    if (hist.relieved && load_[h] < band_.high_enter) {
      skip(Trigger::kPush, h,
           "hot (" + state + ") but already relieved once; moves again only at >= " + num(band_.high_enter));
      continue;
    }
    if (!model::sustained_at_least(hist.hot, now_, cfg_.hot_sustain)) {
      skip(Trigger::kPush, h, "hot (" + state + "), needs " + secs(cfg_.hot_sustain) + " sustained");
      continue;
    }
    if (auto why = source_block(h)) {
      skip(Trigger::kPush, h, "hot (" + state + ") but " + *why);
      continue;
    }
    if (cluster_full()) {
      skip(Trigger::kPush, h,
           "hot (" + state + ") but the cluster concurrency limit (" + std::to_string(cfg_.max_inflight_cluster) +
               ") is reached");
      continue;
    }
    std::vector<Eval> evals;
    std::vector<CandidateNote> excluded;
    for (std::size_t v : vms_of(h)) {
      if (auto why = vm_block(v, false)) {
        excluded.push_back(CandidateNote{m_.vms[v].id, "", 0, 0, 0, *why});
        continue;
      }
      evaluate_vm_targets(v, Trigger::kPush, evals);
    }
    count_more_moves(h, evals);
    const std::size_t best = pick(evals, Trigger::kPush);
    if (best == kNone) {
      skip(Trigger::kPush, h, "hot (" + state + ") but no feasible candidate", notes(evals, kNone, excluded));
      continue;
    }
    const Eval& e = evals[best];
    std::size_t feasible = 0;
    for (const Eval& x : evals) feasible += x.rejected ? 0 : 1;
    std::string reason = "push: " + host.name + " hot (" + state + "); " + m_.vms[e.vm].name + " (" +
                         num(m_.vms[e.vm].demand_cores()) + " cores) to " + m_.hosts[e.dst].name +
                         " raises entropy by " + num(e.gain, 4) + " in a predicted " + num(e.cost.total_s, 1) + " s; " +
                         (e.more_moves == 0 ? "it brings the host to its relief level " + num(relief_) + " in one move"
                                            : std::to_string(e.more_moves) + " more move(s) predicted to reach the relief level " +
                                                  num(relief_)) +
                         ", the best gain per second until the host is relieved of " + std::to_string(feasible) +
                         " feasible candidate(s)";
    apply(e, Trigger::kPush, std::move(reason), notes(evals, best, excluded));
  }
}

void Round::pull() {
  std::vector<std::size_t> cold;
  for (std::size_t h : by_name_) {
    const HostHistory* hist = host_hist(h);
    if (hist != nullptr && hist->zone == Zone::kCold && !m_.hosts[h].stale && !m_.hosts[h].maintenance) {
      cold.push_back(h);
    }
  }
  // Least loaded first; sources are the most loaded hosts. Loads change only
  // on hosts a move used, and those leave both lists, so one sort suffices.
  std::stable_sort(cold.begin(), cold.end(), [&](std::size_t x, std::size_t y) { return load_[x] < load_[y]; });
  std::vector<std::size_t> loaded = by_name_;
  std::stable_sort(loaded.begin(), loaded.end(), [&](std::size_t x, std::size_t y) { return load_[x] > load_[y]; });
  for (std::size_t t : cold) {
    const HostState& host = m_.hosts[t];
    const HostHistory& hist = *host_hist(t);
    const std::string state = "load " + num(load_[t]) + ", cold for " + secs(model::sustained_for(hist.cold, now_)) +
                              ": entered at <= " + num(cfg_.band.low_enter) +
                              ", leaves at >= " + num(cfg_.band.low_exit);
    if (!model::sustained_at_least(hist.cold, now_, cfg_.cold_sustain)) {
      skip(Trigger::kPull, t, "cold (" + state + "), needs " + secs(cfg_.cold_sustain) + " sustained");
      continue;
    }
    if (auto why = target_block(t)) {
      skip(Trigger::kPull, t, "cold (" + state + ") but " + *why);
      continue;
    }
    if (cluster_full()) {
      skip(Trigger::kPull, t,
           "cold (" + state + ") but the cluster concurrency limit (" + std::to_string(cfg_.max_inflight_cluster) +
               ") is reached");
      continue;
    }
    std::vector<Eval> all;
    std::vector<CandidateNote> excluded;
    std::size_t tried = 0;
    std::size_t best = kNone;
    for (std::size_t s : loaded) {
      if (tried >= cfg_.pull_max_sources || load_[s] <= load_[t]) break;
      if (s == t || m_.hosts[s].maintenance || source_block(s)) continue;
      ++tried;
      std::vector<Eval> evals;
      for (std::size_t v : vms_of(s)) {
        if (auto why = vm_block(v, false)) {
          excluded.push_back(CandidateNote{m_.vms[v].id, "", 0, 0, 0, *why});
          continue;
        }
        evals.push_back(evaluate(v, t, Trigger::kPull));
      }
      best = pick(evals, Trigger::kPull);
      if (best != kNone) {
        // Take from the most loaded host that can give; candidates from
        // hosts tried before it stay in the record.
        best += all.size();
        all.insert(all.end(), evals.begin(), evals.end());
        break;
      }
      all.insert(all.end(), evals.begin(), evals.end());
    }
    if (best == kNone) {
      skip(Trigger::kPull, t,
           "cold (" + state + ") but no feasible VM on the " + std::to_string(tried) + " most loaded eligible host(s)",
           notes(all, kNone, excluded));
      continue;
    }
    const Eval& e = all[best];
    const std::size_t src = vm_host_[e.vm];
    std::string reason = "pull: " + host.name + " cold (" + state + ") takes " + m_.vms[e.vm].name + " (" +
                         num(m_.vms[e.vm].demand_cores()) + " cores) from " + m_.hosts[src].name +
                         ", the most loaded host able to give (load " + num(load_[src]) + "); entropy +" +
                         num(e.gain, 4) + " in a predicted " + num(e.cost.total_s, 1) + " s";
    const Eval chosen = e;
    apply(chosen, Trigger::kPull, std::move(reason), notes(all, best, excluded));
  }
}

void Round::run() {
  maintenance();
  const StrategyKind primary = choose_strategy(cfg_, plan_.mean_load_frac);
  plan_.strategy = primary;
  if (cfg_.strategy == StrategyKind::kAdaptive) {
    plan_.strategy_reason = std::string("adaptive chose ") + strategy_name(primary) + ": mean load " +
                            num(plan_.mean_load_frac) + (primary == StrategyKind::kPull ? " < " : " >= ") +
                            "crossover " + num(cfg_.adaptive_crossover_frac);
  } else {
    plan_.strategy_reason = std::string("configured strategy ") + strategy_name(primary);
  }
  const std::size_t before = plan_.moves.size();
  if (primary == StrategyKind::kPush) {
    push();
  } else {
    pull();
  }
  // Adaptive never ignores a trigger the primary strategy cannot act on
  // (e.g. a lone hotspot in a lightly loaded cluster with no cold host).
  if (cfg_.strategy == StrategyKind::kAdaptive && plan_.moves.size() == before) {
    const StrategyKind other = primary == StrategyKind::kPush ? StrategyKind::kPull : StrategyKind::kPush;
    if (other == StrategyKind::kPush) {
      push();
    } else {
      pull();
    }
    if (plan_.moves.size() != before) {
      plan_.strategy = other;
      plan_.strategy_reason +=
          std::string("; ") + strategy_name(primary) + " found no move, so " + strategy_name(other) + " ran";
    }
  }
  std::vector<double> metric;
  for (std::size_t h : by_name_) {
    if (!m_.hosts[h].stale) metric.push_back(load_[h]);
  }
  auto e = normalized_entropy(metric);
  plan_.entropy_after = e ? *e : ent_->value();
}

void Round::prune() {
  for (auto it = st_.vms.begin(); it != st_.vms.end();) {
    VmHistory& h = it->second;
    std::erase_if(h.left, [&](const auto& p) { return now_ - p.second >= cfg_.no_return_window; });
    const bool quiet = now_ - h.last_event >= cfg_.vm_cooldown_reset;
    if (h.left.empty() && h.cooldown_until <= now_ && quiet) {
      it = st_.vms.erase(it);
    } else {
      ++it;
    }
  }
  for (auto it = st_.hosts.begin(); it != st_.hosts.end();) {
    if (!host_idx_.contains(it->first)) {
      it = st_.hosts.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace

Result<RoundResult> plan_round(const ClusterModel& model, const PlannerConfig& cfg, PlannerState state,
                               const RoundInputs& inputs, const CostModel& cost) {
  auto host_of_vm = model::host_of_vms(model);
  if (!host_of_vm) return host_of_vm.error();
  if (auto s = validate(cfg); !s) return s.error();
  if (!cost) return make_error(Errc::kInvalidArgument, "planner: no cost model");
  RoundResult out;
  out.plan.now = model.now;
  Round round(model, cfg, state, cost, out.plan);
  round.init(inputs, *host_of_vm);
  round.run();
  round.prune();
  out.state = std::move(state);
  return out;
}

}  // namespace vmtide::strategy
