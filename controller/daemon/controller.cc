// SPDX-License-Identifier: Apache-2.0
// Rounds, decision records and control answers (controller.h).
#include "controller.h"

#include <cmath>
#include <cstdio>
#include <optional>
#include <regex>

#include "decision.h"
#include "entropy.h"
#include "precopy.h"
#include "vmtide/wire/codec.h"

namespace vmtide::controller {
namespace {

using wire::json_string;

std::string bytes_str(double b);

strategy::CostModel make_cost(const ControllerConfig& c, const predictor::CalibrationTable* cal) {
  if (c.cost_model == "const-dirty") return strategy::make_const_dirty_cost_model(c.predictor.fallback_bw_bytes_per_s);
  return strategy::make_precopy_cost_model(c.predictor, cal);
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

double Controller::link_bw(const model::ClusterModel& m, const model::VmState& v) const {
  // The VM's host's link (the target is not chosen yet), capped by the
  // migration's max-bandwidth: what the planner's cost would use for it.
  const auto& p = cfg_.predictor;
  double bw = p.fallback_bw_bytes_per_s;
  for (const auto& h : m.hosts) {
    if (h.name == v.host && h.link_bw_bytes_per_s > 0) bw = h.link_bw_bytes_per_s;
  }
  if (p.max_bw_bytes_per_s > 0) bw = std::min(bw, p.max_bw_bytes_per_s);
  return bw;
}

predictor::Inputs Controller::predictor_inputs(const model::VmState& v, double bw) const {
  return strategy::precopy_inputs(v, bw, cfg_.predictor);
}

Controller::Controller(ControllerConfig cfg, std::string id_base)
    : cfg_(std::move(cfg)), id_base_(std::move(id_base)), builder_(cfg_.model), cost_(make_cost(cfg_, &calibration_)) {}

void Controller::reconfigure(ControllerConfig cfg) {
  // The builder keeps its data; only its thresholds change.
  cfg_ = std::move(cfg);
  builder_.set_config(cfg_.model);
  cost_ = make_cost(cfg_, &calibration_);
}

std::string Controller::next_id() {
  char buf[64];
  std::snprintf(buf, sizeof buf, "d-%s-%06llu", id_base_.c_str(), static_cast<unsigned long long>(next_++));
  return buf;
}

namespace {

// A skip's reason without its measurements and countdowns ("in hold-down
// for another 53 s", "load 91.2 %"): the same skip a round later reads
// differently but says nothing new.
std::string without_quantities(const std::string& reason) {
  static const std::regex kQuantity("[0-9]+(\\.[0-9]+)? ?(ms|s|min|h|%|MiB/s|MiB|GiB)(?![A-Za-z])");
  return std::regex_replace(reason, kQuantity, "#");
}

}  // namespace

bool Controller::fresh(const wire::Decision& d, model::TimeNs now) {
  // One slot per acting host: its latest recommendation or skip.
  const std::string slot = d.src.empty() ? d.vm : d.src;
  const std::string key = std::string(wire::outcome_name(d.outcome)) + '|' + d.strategy + '|' + d.vm + '|' + d.dst +
                          '|' + (d.outcome == wire::Outcome::kSkipped ? without_quantities(d.reason) : std::string());
  auto it = last_.find(slot);
  if (it != last_.end() && it->second.key == key && now - it->second.at < repeat_after) {
    ++counters_.repeats_suppressed;
    return false;
  }
  last_[slot] = Last{key, now};
  return true;
}

model::ClusterModel Controller::model_now(model::TimeNs now) const {
  model::ClusterModel m = builder_.snapshot(now, cfg_.overrides);
  if (vm_dirty_.size() == 0) return m;
  const double now_s = static_cast<double>(now.count()) / 1e9;
  for (auto& v : m.vms) {
    strategy::scale_dirtying(v, vm_dirty_.factor(v.id, now_s));
  }
  return m;
}

Result<strategy::Plan> Controller::dry_run(model::TimeNs now) const {
  const model::ClusterModel m = model_now(now);
  auto r = strategy::plan_round(m, cfg_.planner, state_, strategy::RoundInputs{}, cost_);
  if (!r) return r.error();
  return std::move(r->plan);
}

strategy::RoundInputs Controller::round_inputs() const {
  strategy::RoundInputs in;
  for (const auto& [vm, f] : flights_) in.in_flight.push_back({vm, f.record.src, f.record.dst});
  in.outcomes = outcomes_;
  return in;
}

Result<std::vector<wire::Decision>> Controller::round(model::TimeNs now) {
  ++counters_.rounds;
  vm_dirty_.prune(static_cast<double>(now.count()) / 1e9);
  const model::ClusterModel m = model_now(now);
  auto r = strategy::plan_round(m, cfg_.planner, state_, round_inputs(), cost_);
  if (!r) {
    ++counters_.round_errors;
    return r.error();
  }
  outcomes_.clear();  // the planner has seen them
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
      h.give_hold_until = old == state_.hosts.end() ? model::TimeNs{0} : old->second.give_hold_until;
    }
    state_ = std::move(next);
  }
  std::vector<wire::Decision> out;
  if (cfg_.mode == wire::Mode::kObserve) return out;
  const strategy::Plan& plan = r->plan;
  for (const auto& mv : plan.moves) {
    wire::Decision d = strategy::to_decision(mv, plan, cfg_.mode, "");
    if (cfg_.mode == wire::Mode::kEnforce) {
      d.id = next_id();
      start_migration(d, mv, now);
      out.push_back(std::move(d));
      continue;
    }
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

void Controller::start_migration(wire::Decision& d, const strategy::PlannedMove& mv, model::TimeNs now) {
  auto fail = [&](const std::string& why) {
    d.outcome = wire::Outcome::kFailed;
    d.detail = d.detail.value_or("") + (d.detail && !d.detail->empty() ? "; " : "") + "not started: " + why;
    ++counters_.migrations_failed;
    outcomes_.push_back({mv.vm_id, mv.src, mv.dst, false, now});
  };
  if (executor_ == nullptr) return fail("no executor");
  if (flights_.contains(mv.vm_id)) return fail("a migration of this VM is already running");
  executor::MigrationRequest req;
  req.vm_id = mv.vm_id;
  req.vm_name = mv.vm_name;
  req.src = mv.src;
  req.dst = mv.dst;
  req.max_bandwidth_bytes_per_s = cfg_.predictor.max_bw_bytes_per_s;
  req.downtime_limit_ms = cfg_.predictor.downtime_limit_ms;
  req.auto_converge = cfg_.predictor.auto_converge;
  // Time out well after the prediction: 3x it plus a minute, at most an hour.
  req.timeout = std::chrono::nanoseconds{static_cast<std::int64_t>(
      std::min(3600.0, mv.cost.total_s * 3.0 + 60.0) * 1e9)};
  auto h = executor_->start(req);
  if (!h) return fail(h.error().message());
  d.outcome = wire::Outcome::kStarted;
  ++counters_.migrations_started;
  Flight& f = flights_[mv.vm_id] = Flight{*h, d, now, mv.cost};
  f.calibrates = !req.auto_converge;
  f.dirty = predictor::MigrationDirtyRate(static_cast<double>(now.count()) / 1e9);
}

Result<std::size_t> Controller::recover_in_flight(model::TimeNs now) {
  if (executor_ == nullptr) return std::size_t{0};
  auto running = executor_->running();
  if (!running) return running.error();
  std::size_t n = 0;
  for (const auto& r : *running) {
    if (flights_.contains(r.vm_id)) continue;
    wire::Decision d;
    d.id = next_id();
    d.mode = cfg_.mode;
    d.strategy = "recovered";
    d.vm = r.vm_id;
    d.src = r.src;
    d.dst = r.dst;
    d.reason = "a migration already running when this controller started (a previous controller's)";
    d.outcome = wire::Outcome::kStarted;
    flights_[r.vm_id] = Flight{r.handle, d, now, {}};
    ++counters_.migrations_recovered;
    ++n;
  }
  return n;
}

std::vector<wire::Decision> Controller::poll_migrations(model::TimeNs now) {
  std::vector<wire::Decision> out;
  if (executor_ == nullptr) return out;
  std::optional<model::ClusterModel> telemetry;  // the builder's, uncalibrated; taken once, when needed
  auto telemetry_vm = [&](const std::string& id) -> const model::VmState* {
    if (!telemetry) telemetry = builder_.snapshot(now, cfg_.overrides);
    for (const auto& v : telemetry->vms) {
      if (v.id == id) return &v;
    }
    return nullptr;
  };
  for (auto it = flights_.begin(); it != flights_.end();) {
    Flight& f = it->second;
    auto p = executor_->poll(f.handle);
    executor::Progress pr;
    if (!p) {
      // The executor lost it (e.g. restarted libvirtd): a failure, so the
      // VM gets its back-off; the model shows where it really runs.
      pr.state = executor::State::kFailed;
      pr.error = p.error().message();
    } else {
      pr = *p;
    }
    // Each new figure of QEMU's dirty rate, with the telemetry's
    // expectation over the same syncs (predictor::MigrationDirtyRate).
    if (f.calibrates && f.dirty.is_new(pr.passes, pr.dirty_pages_per_s)) {
      if (const model::VmState* v = telemetry_vm(f.record.vm)) {
        f.dirty.observe(static_cast<double>(now.count()) / 1e9, pr.passes, pr.dirty_pages_per_s,
                        strategy::dirty_curve_pages(*v, cfg_.predictor.page_bytes));
      }
    }
    if (pr.state == executor::State::kRunning) {
      ++it;
      continue;
    }
    wire::Decision d = f.record;
    const bool ok = pr.state == executor::State::kSucceeded;
    d.outcome = ok ? wire::Outcome::kSucceeded : wire::Outcome::kFailed;
    char buf[256];
    std::snprintf(buf, sizeof buf, "actual: %.0f ms total, %.0f ms downtime, %s in %llu passes%s%s", pr.total_ms,
                  pr.downtime_ms, bytes_str(static_cast<double>(pr.bytes)).c_str(),
                  static_cast<unsigned long long>(pr.passes), ok ? "" : "; failed: ", ok ? "" : pr.error.c_str());
    d.detail = buf;
    outcomes_.push_back({d.vm, d.src, d.dst, ok, now});
    ++(ok ? counters_.migrations_succeeded : counters_.migrations_failed);
    if (ok && f.cost.assumed_bw_bytes_per_s > 0) {
      // Online calibration: the next prediction for this pair starts from
      // what this migration achieved.
      predictor::MigrationFigures fig;
      fig.assumed_bw_bytes_per_s = f.cost.assumed_bw_bytes_per_s;
      fig.assumed_stop_bytes_per_s = f.cost.assumed_stop_bytes_per_s;
      fig.total_ms = pr.total_ms;
      fig.downtime_ms = pr.downtime_ms;
      fig.setup_ms = pr.setup_ms;
      fig.downtime_bytes = static_cast<double>(pr.downtime_bytes);
      fig.bytes = static_cast<double>(pr.bytes);
      fig.page_bytes = cfg_.predictor.page_bytes;
      fig.succeeded = true;
      calibration_.record(d.src, d.dst, fig);
    }
    if (ok && f.dirty.measured_pages_per_s() > 0 && f.dirty.expected_pages_per_s() > 0) {
      // Per VM: the migration's own dirty rate against the telemetry's
      // expectation of it.
      const double now_s = static_cast<double>(now.count()) / 1e9;
      const double page = cfg_.predictor.page_bytes;
      const double measured = f.dirty.measured_pages_per_s() * page;
      const double expected = f.dirty.expected_pages_per_s() * page;
      vm_dirty_.record(d.vm, measured, expected, now_s);
      std::snprintf(buf, sizeof buf, "; dirtied %s/s during the migration, telemetry %s/s: its next predictions x%.2f",
                    bytes_str(measured).c_str(), bytes_str(expected).c_str(), vm_dirty_.factor(d.vm, now_s));
      *d.detail += buf;
    }
    executor_->forget(f.handle);
    out.push_back(std::move(d));
    it = flights_.erase(it);
  }
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
  const model::ClusterModel m = model_now(now);
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
  const auto& p = cfg_.predictor;
  const double bw = link_bw(m, *v);
  const predictor::Inputs in = predictor_inputs(*v, bw);
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
  if (req == "plan") return plan_text(now);
  if (req == "plan.json") return plan_json(now);
  if (req == "health.json") return health_json(now);
  if (req.starts_with("predict ")) return predict_text(req.substr(8), now);
  if (req.starts_with("predict.json ")) return predict_json(req.substr(13), now);
  return "{\"error\":" +
         json_string("unknown request '" + std::string(req) +
                     "': use plan, plan.json, health.json, predict VM or predict.json VM") +
         "}";
}

namespace {

std::string fmt(const char* f, auto... args) {
  char buf[512];
  std::snprintf(buf, sizeof buf, f, args...);
  return buf;
}

std::string bytes_str(double b) {
  if (b >= 1024.0 * 1024 * 1024) return fmt("%.2f GiB", b / (1024.0 * 1024 * 1024));
  if (b >= 1024.0 * 1024) return fmt("%.1f MiB", b / (1024.0 * 1024));
  return fmt("%.0f KiB", b / 1024.0);
}

std::string prediction_line(const strategy::MigrationCost& c) {
  std::string s = fmt("predicted %.1f s, downtime %.0f ms, %s in %llu pass%s, %s (%s model)", c.total_s,
                      c.downtime_ms, bytes_str(static_cast<double>(c.bytes)).c_str(),
                      static_cast<unsigned long long>(c.passes), c.passes == 1 ? "" : "es",
                      c.converges ? "converges" : "does NOT converge", c.model.c_str());
  return s;
}

std::string prediction_text(const char* label, const predictor::Prediction& p) {
  std::string s = fmt("  %-15s %s: %.1f s total, downtime %.0f ms, %s sent in %d pass%s", label,
                      p.converges ? "converges" : "does NOT converge", p.total_s, p.downtime_ms,
                      bytes_str(p.bytes).c_str(), p.passes, p.passes == 1 ? "" : "es");
  if (p.final_throttle_pct > 0) s += fmt(", throttled to %.0f %%", p.final_throttle_pct);
  s += "\n";
  if (p.need_bandwidth_bytes_per_s) {
    s += fmt("  %-15s would converge with %s/s of bandwidth\n", "", bytes_str(*p.need_bandwidth_bytes_per_s).c_str());
  }
  if (p.need_throttle_pct) s += fmt("  %-15s or with the guest throttled to %.0f %%\n", "", *p.need_throttle_pct);
  return s;
}

}  // namespace

std::string Controller::plan_text(model::TimeNs now) const {
  auto plan = dry_run(now);
  if (!plan) return "error: " + plan.error().message() + "\n";
  const model::ClusterModel m = builder_.snapshot(now, cfg_.overrides);
  std::string o = fmt("Next round (%s mode): %s. Mean load %.0f %%, balance (normalised entropy) %.3f -> %.3f.\n",
                      std::string(wire::mode_name(cfg_.mode)).c_str(), plan->strategy_reason.c_str(),
                      plan->mean_load_frac * 100, plan->entropy_before, plan->entropy_after);
  o += fmt("\n%-20s %6s %6s %6s %4s  %s\n", "HOST", "LOAD", "STEAL", "IO", "VMS", "STATE");
  const auto health = builder_.health(now);
  for (const auto& h : health) {
    const model::HostState* hs = nullptr;
    for (const auto& x : m.hosts) {
      if (x.name == h.name) hs = &x;
    }
    int vms = 0;
    for (const auto& v : m.vms) vms += v.host == h.name ? 1 : 0;
    std::string state = h.stale ? "stale: " + h.stale_reason : "fresh";
    if (hs != nullptr && hs->maintenance) state += ", maintenance";
    auto zone = state_.hosts.find(h.name);
    if (zone != state_.hosts.end() && zone->second.zone != model::Zone::kNormal) {
      state += std::string(", ") + model::zone_name(zone->second.zone);
    }
    if (hs == nullptr) {
      o += fmt("%-20s %6s %6s %6s %4d  %s\n", h.name.c_str(), "-", "-", "-", vms, state.c_str());
    } else {
      o += fmt("%-20s %5.0f%% %5.1f%% %5.1f%% %4d  %s\n", h.name.c_str(), hs->cpu_load_frac * 100,
               hs->steal_frac * 100, hs->io_pressure_frac * 100, vms, state.c_str());
    }
  }
  if (plan->moves.empty()) o += "\nNo move would be made.\n";
  int n = 0;
  for (const auto& mv : plan->moves) {
    o += fmt("\n%d. %s: move %s (%s) from %s to %s\n", ++n, strategy::trigger_name(mv.trigger), mv.vm_name.c_str(),
             mv.vm_id.c_str(), mv.src.c_str(), mv.dst.c_str());
    o += "   why: " + mv.reason + "\n";
    o += "   " + prediction_line(mv.cost) + "\n";
    o += fmt("   score %.4g (entropy gain %.4f per predicted second)\n", mv.score, mv.gain);
    int shown = 0;
    for (const auto& c : mv.candidates) {
      if (!c.rejected || shown >= 5) continue;
      ++shown;
      o += fmt("   not %s -> %s: %s\n", c.vm_id.c_str(), c.dst.empty() ? "-" : c.dst.c_str(), c.rejected->c_str());
    }
  }
  for (const auto& sk : plan->skipped) {
    o += fmt("\n%s wants to %s but will not: %s\n", sk.host.c_str(), strategy::trigger_name(sk.trigger),
             sk.reason.c_str());
  }
  if (!plan->excluded_targets.empty()) {
    o += "\nNot a target this round:\n";
    for (const auto& h : plan->excluded_targets) o += "  " + h.host + ": " + h.reason + "\n";
  }
  return o;
}

std::string Controller::predict_text(std::string_view vm, model::TimeNs now) const {
  const model::ClusterModel m = model_now(now);
  const model::VmState* v = nullptr;
  for (const auto& x : m.vms) {
    if (x.id == vm || x.name == vm) v = &x;
  }
  if (v == nullptr) {
    return "error: no VM named or with id '" + std::string(vm) + "' in the model (" + std::to_string(m.vms.size()) +
           " VMs known)\n";
  }
  const auto& p = cfg_.predictor;
  const double bw = link_bw(m, *v);
  const predictor::Inputs in = predictor_inputs(*v, bw);
  std::string o = fmt("VM %s (%s) on %s: RAM %s, touched %s, dirtying %s/s", v->name.c_str(), v->id.c_str(),
                      v->host.c_str(), bytes_str(static_cast<double>(v->ram_bytes)).c_str(),
                      bytes_str(static_cast<double>(v->rss_bytes)).c_str(), bytes_str(v->dirty_bytes_per_s).c_str());
  o += v->dirty_curve.empty() ? " (no dirty measurement yet)\n" : fmt(" (curve of %zu points)\n", v->dirty_curve.size());
  o += fmt("Link %s/s%s, downtime limit %.0f ms, auto-converge %s\n", bytes_str(bw).c_str(),
           p.max_bw_bytes_per_s > 0 ? " (capped by max_bandwidth)" : "", p.downtime_limit_ms,
           p.auto_converge ? "on" : "off");
  if (auto pr = predictor::predict_precopy(in); pr) {
    o += prediction_text("pre-copy model", *pr);
  } else {
    o += "  pre-copy model: " + pr.error().message() + "\n";
  }
  if (auto pr = predictor::predict_constant_rate(in, v->dirty_bytes_per_s); pr) {
    o += prediction_text("constant rate", *pr);
  }
  return o;
}

}  // namespace vmtide::controller
