// SPDX-License-Identifier: Apache-2.0
// Rounds, decision records and control answers (controller.h).
#include "controller.h"

#include <cmath>
#include <cstdio>

#include "decision.h"
#include "entropy.h"
#include "precopy.h"
#include "vmtide/wire/codec.h"

namespace vmtide::controller {
namespace {

using wire::json_string;

strategy::CostModel make_cost(const ControllerConfig& c) {
  if (c.cost_model == "const-dirty") return strategy::make_const_dirty_cost_model(c.predictor.fallback_bw_bytes_per_s);
  return strategy::make_precopy_cost_model(c.predictor);
}

std::string num(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

std::string prediction_json(const predictor::Prediction& p) {
  std::string o = "{\"converges\":" + std::string(p.converges ? "true" : "false");
  o += ",\"total_s\":" + num(p.total_s) + ",\"downtime_ms\":" + num(p.downtime_ms) + ",\"bytes\":" + num(p.bytes) +
       ",\"passes\":" + std::to_string(p.passes) + ",\"final_throttle_pct\":" + num(p.final_throttle_pct);
  if (p.need_bandwidth_bytes_per_s) o += ",\"need_bw_bytes_per_s\":" + num(*p.need_bandwidth_bytes_per_s);
  if (p.need_throttle_pct) o += ",\"need_throttle_pct\":" + num(*p.need_throttle_pct);
  return o + "}";
}

}  // namespace

Controller::Controller(ControllerConfig cfg, std::string id_base)
    : cfg_(std::move(cfg)), id_base_(std::move(id_base)), builder_(cfg_.model), cost_(make_cost(cfg_)) {}

void Controller::reconfigure(ControllerConfig cfg) {
  // The builder keeps its data; only its thresholds change.
  cfg_ = std::move(cfg);
  builder_.set_config(cfg_.model);
  cost_ = make_cost(cfg_);
}

std::string Controller::next_id() {
  char buf[64];
  std::snprintf(buf, sizeof buf, "d-%s-%06llu", id_base_.c_str(), static_cast<unsigned long long>(next_++));
  return buf;
}

bool Controller::fresh(const wire::Decision& d, model::TimeNs now) {
  // One slot per acting host: its latest recommendation or skip.
  const std::string slot = d.src.empty() ? d.vm : d.src;
  const std::string key = std::string(wire::outcome_name(d.outcome)) + '|' + d.strategy + '|' + d.vm + '|' + d.dst +
                          '|' + (d.outcome == wire::Outcome::kSkipped ? d.reason : std::string());
  auto it = last_.find(slot);
  if (it != last_.end() && it->second.key == key && now - it->second.at < repeat_after) {
    ++counters_.repeats_suppressed;
    return false;
  }
  last_[slot] = Last{key, now};
  return true;
}

Result<strategy::Plan> Controller::dry_run(model::TimeNs now) const {
  const model::ClusterModel m = builder_.snapshot(now, cfg_.overrides);
  auto r = strategy::plan_round(m, cfg_.planner, state_, strategy::RoundInputs{}, cost_);
  if (!r) return r.error();
  return std::move(r->plan);
}

Result<std::vector<wire::Decision>> Controller::round(model::TimeNs now) {
  ++counters_.rounds;
  const model::ClusterModel m = builder_.snapshot(now, cfg_.overrides);
  auto r = strategy::plan_round(m, cfg_.planner, state_, strategy::RoundInputs{}, cost_);
  if (!r) {
    ++counters_.round_errors;
    return r.error();
  }
  if (cfg_.mode == wire::Mode::kEnforce) {
    state_ = std::move(r->state);
  } else {
    // Nothing moved: keep the zone and sustain history the round built,
    // but not the cooldowns and hold-downs its planned moves would start.
    strategy::PlannerState next = std::move(r->state);
    next.vms = state_.vms;
    for (auto& [name, h] : next.hosts) {
      auto old = state_.hosts.find(name);
      h.hold_until = old == state_.hosts.end() ? model::TimeNs{0} : old->second.hold_until;
    }
    state_ = std::move(next);
  }
  std::vector<wire::Decision> out;
  if (cfg_.mode == wire::Mode::kObserve) return out;
  const strategy::Plan& plan = r->plan;
  for (const auto& mv : plan.moves) {
    wire::Decision d = strategy::to_decision(mv, plan, cfg_.mode, "");
    if (!fresh(d, now)) continue;
    d.id = next_id();
    ++counters_.recommended;
    out.push_back(std::move(d));
  }
  for (const auto& sk : plan.skipped) {
    wire::Decision d = strategy::to_decision(sk, plan, cfg_.mode, "");
    if (!fresh(d, now)) continue;
    d.id = next_id();
    ++counters_.skipped;
    out.push_back(std::move(d));
  }
  counters_.decisions += out.size();
  builder_.prune(now);
  return out;
}

std::string Controller::health_json(model::TimeNs now) const {
  std::string o = "{\"hosts\":[";
  bool first = true;
  const model::ClusterModel m = builder_.snapshot(now, cfg_.overrides);
  for (const model::HostHealth& h : builder_.health(now)) {
    if (!first) o += ',';
    first = false;
    o += "{\"name\":" + json_string(h.name) + ",\"stale\":" + (h.stale ? "true" : "false");
    if (h.stale) o += ",\"stale_reason\":" + json_string(h.stale_reason);
    o += ",\"epoch\":" + std::to_string(h.epoch) + ",\"received\":" + std::to_string(h.received) +
         ",\"lost\":" + std::to_string(h.lost) + ",\"age_s\":" +
         num(static_cast<double>((now - h.last_seen).count()) / 1e9);
    for (const model::HostState& hs : m.hosts) {
      if (hs.name != h.name) continue;
      int vms = 0;
      for (const model::VmState& v : m.vms) vms += v.host == hs.name ? 1 : 0;
      o += ",\"cpus\":" + std::to_string(hs.cpus) + ",\"load\":" + num(hs.cpu_load_frac) +
           ",\"steal\":" + num(hs.steal_frac) + ",\"io_pressure\":" + num(hs.io_pressure_frac) +
           ",\"mem_free_bytes\":" + std::to_string(hs.mem_free_bytes) + ",\"vms\":" + std::to_string(vms) +
           ",\"maintenance\":" + (hs.maintenance ? "true" : "false");
    }
    o += '}';
  }
  const auto& c = builder_.counters();
  o += "],\"accepted\":" + std::to_string(c.accepted) + ",\"lost\":" + std::to_string(c.lost) +
       ",\"duplicates\":" + std::to_string(c.duplicates) + ",\"mode\":" + json_string(wire::mode_name(cfg_.mode)) + "}";
  return o;
}

std::string Controller::plan_json(model::TimeNs now) const {
  auto plan = dry_run(now);
  if (!plan) return "{\"error\":" + json_string(plan.error().message()) + "}";
  std::string o = "{\"strategy\":" + json_string(strategy::strategy_name(plan->strategy)) +
                  ",\"strategy_reason\":" + json_string(plan->strategy_reason) +
                  ",\"mean_load\":" + num(plan->mean_load_frac) + ",\"entropy_before\":" + num(plan->entropy_before) +
                  ",\"entropy_after\":" + num(plan->entropy_after) + ",\"decisions\":[";
  bool first = true;
  auto add = [&](const wire::Decision& d) {
    wire::Message msg;
    msg.env.host = cfg_.name.empty() ? "controller" : cfg_.name;
    msg.body = d;
    if (!first) o += ',';
    first = false;
    o += wire::to_json(msg);
  };
  for (const auto& mv : plan->moves) add(strategy::to_decision(mv, *plan, cfg_.mode, "plan"));
  for (const auto& sk : plan->skipped) add(strategy::to_decision(sk, *plan, cfg_.mode, "plan"));
  o += "],\"excluded_targets\":[";
  first = true;
  for (const auto& h : plan->excluded_targets) {
    if (!first) o += ',';
    first = false;
    o += "{\"host\":" + json_string(h.host) + ",\"reason\":" + json_string(h.reason) + "}";
  }
  return o + "]}";
}

std::string Controller::predict_json(std::string_view vm, model::TimeNs now) const {
  const model::ClusterModel m = builder_.snapshot(now, cfg_.overrides);
  const model::VmState* v = nullptr;
  for (const auto& x : m.vms) {
    if (x.id == vm || x.name == vm) {
      v = &x;
      break;
    }
  }
  if (v == nullptr) {
    return "{\"error\":" + json_string("no VM named or with id '" + std::string(vm) + "' in the model (" +
                                       std::to_string(m.vms.size()) + " VMs known)") + "}";
  }
  const model::HostState* src = nullptr;
  for (const auto& h : m.hosts) {
    if (h.name == v->host) src = &h;
  }
  const auto& p = cfg_.predictor;
  double bw = src != nullptr && src->link_bw_bytes_per_s > 0 ? src->link_bw_bytes_per_s : p.fallback_bw_bytes_per_s;
  if (p.max_bw_bytes_per_s > 0) bw = std::min(bw, p.max_bw_bytes_per_s);
  const double page = p.page_bytes;
  const double ram = static_cast<double>(v->ram_bytes > 0 ? v->ram_bytes : v->rss_bytes);
  const double touched = v->rss_bytes > 0 ? std::min(static_cast<double>(v->rss_bytes), ram) : ram;
  predictor::Inputs in;
  in.ram_bytes = ram;
  in.nonzero_bytes = touched;
  in.page_bytes = page;
  in.bandwidth_bytes_per_s = bw;
  in.downtime_limit_ms = p.downtime_limit_ms;
  in.auto_converge = p.auto_converge;
  std::vector<predictor::DirtyCurve::Point> pts;
  for (const auto& d : v->dirty_curve) pts.push_back({static_cast<double>(d.tau.count()) / 1e9, static_cast<double>(d.bytes) / page});
  if (pts.empty() && v->dirty_bytes_per_s > 0) pts.push_back({1.0, v->dirty_bytes_per_s / page});
  if (!pts.empty()) {
    if (auto c = predictor::DirtyCurve::make(pts, std::max(touched / page, 1.0)); c) in.dirty = std::move(*c);
  }
  std::string o = "{\"vm\":" + json_string(v->id) + ",\"name\":" + json_string(v->name) +
                  ",\"host\":" + json_string(v->host) + ",\"ram_bytes\":" + std::to_string(v->ram_bytes) +
                  ",\"rss_bytes\":" + std::to_string(v->rss_bytes) + ",\"dirty_bytes_per_s\":" +
                  num(v->dirty_bytes_per_s) + ",\"bandwidth_bytes_per_s\":" + num(bw) +
                  ",\"downtime_limit_ms\":" + num(p.downtime_limit_ms) + ",\"curve\":[";
  for (std::size_t i = 0; i < v->dirty_curve.size(); ++i) {
    if (i > 0) o += ',';
    o += "[" + num(static_cast<double>(v->dirty_curve[i].tau.count()) / 1e9) + "," +
         std::to_string(v->dirty_curve[i].bytes) + "]";
  }
  o += "]";
  if (auto pr = predictor::predict_precopy(in); pr) {
    o += ",\"precopy\":" + prediction_json(*pr);
  } else {
    o += ",\"precopy_error\":" + json_string(pr.error().message());
  }
  if (auto pr = predictor::predict_constant_rate(in, v->dirty_bytes_per_s); pr) {
    o += ",\"constant_rate\":" + prediction_json(*pr);
  }
  return o + "}";
}

std::string Controller::handle_control(std::string_view req, model::TimeNs now) const {
  while (!req.empty() && (req.back() == '\n' || req.back() == ' ')) req.remove_suffix(1);
  if (req == "plan") return plan_json(now);
  if (req == "health") return health_json(now);
  if (req.starts_with("predict ")) return predict_json(req.substr(8), now);
  return "{\"error\":" + json_string("unknown request '" + std::string(req) + "': use plan, health or predict VM") + "}";
}

}  // namespace vmtide::controller
