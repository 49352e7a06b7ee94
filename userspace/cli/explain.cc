// SPDX-License-Identifier: Apache-2.0
// `vmtide explain` (explain.h).
#include "explain.h"

#include <time.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <variant>

#include "units.h"

namespace vmtide::cli {
namespace {

// "2026-12-01 10:31:02 UTC"
std::string format_utc(std::int64_t ts_ns) {
  std::int64_t secs = ts_ns / 1'000'000'000;
  if (ts_ns % 1'000'000'000 < 0) --secs;
  const time_t t = static_cast<time_t>(secs);
  struct tm tm {};
  char buf[64];
  if (gmtime_r(&t, &tm) == nullptr || std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0) {
    return "time " + std::to_string(ts_ns) + " ns";
  }
  return buf;
}

// The text as one sentence: with a full stop unless it has its own.
std::string sentence(std::string_view s) {
  std::string out(s);
  while (!out.empty() && (out.back() == ' ' || out.back() == '\n')) out.pop_back();
  if (out.empty()) return "(none recorded).";
  if (out.back() != '.' && out.back() != '!' && out.back() != '?') out += '.';
  return out;
}

std::string fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

std::string vm_label(const wire::Decision& d) {
  if (d.vm_name && !d.vm_name->empty() && *d.vm_name != d.vm) return *d.vm_name + " (" + d.vm + ")";
  return d.vm;
}

// Candidates carry VM ids; the decision knows the chosen VM's name.
std::string candidate_vm(const wire::Candidate& c, const wire::Decision& d) {
  if (c.vm == d.vm && d.vm_name && !d.vm_name->empty()) return *d.vm_name;
  return c.vm;
}

std::string outcome_text(const wire::Decision& d) {
  switch (d.outcome) {
    case wire::Outcome::kRecommended:
      switch (d.mode) {
        case wire::Mode::kObserve:
          return "recommended only (observe mode: the controller watches and moves nothing)";
        case wire::Mode::kRecommend:
          return "recommended, not carried out (recommend mode: nothing moves until an operator acts)";
        case wire::Mode::kEnforce:
          return "recommended (enforce mode: the controller carries it out next)";
      }
      break;
    case wire::Outcome::kPending:
      return "pending: accepted, the migration has not started yet";
    case wire::Outcome::kStarted:
      return "started: the live migration is running";
    case wire::Outcome::kSucceeded:
      return "succeeded: the VM now runs on " + d.dst;
    case wire::Outcome::kFailed:
      return "failed: the migration did not complete (the controller's events say why)";
    case wire::Outcome::kSkipped:
      return "skipped";
  }
  return std::string(wire::outcome_name(d.outcome));
}

// What the host that wanted to act wanted, by trigger.
std::string wanted(std::string_view strategy) {
  if (strategy == "push") return " (it is overloaded and would give a VM away)";
  if (strategy == "pull") return " (it is underloaded and would take a VM)";
  if (strategy == "maintenance") return " (it is in maintenance and being evacuated)";
  return "";
}

std::string prediction_text(const wire::Prediction& p) {
  std::string s = "Predicted migration: ";
  if (p.converges) {
    s += format_duration_ms(p.total_ms) + ", downtime " + format_duration_ms(p.downtime_ms) + ", " +
         format_bytes(static_cast<double>(p.bytes)) + " in " + std::to_string(p.passes) +
         (p.passes == 1 ? " pass" : " passes") + ", converges.";
    return s;
  }
  s += "does not converge";
  if (p.need_bw_bps || p.need_throttle_pct) {
    s += "; it would with";
    if (p.need_bw_bps) s += " " + format_bits_per_s(static_cast<double>(*p.need_bw_bps)) + " of bandwidth";
    if (p.need_bw_bps && p.need_throttle_pct) s += " or";
    if (p.need_throttle_pct) s += " the guest's CPU throttled by " + std::to_string(*p.need_throttle_pct) + " %";
  }
  return s + ".";
}

std::string balance_text(const wire::Decision& d) {
  std::string s = "Balance (normalised entropy of host loads, 1 = perfectly even): " + fmt("%.3f", *d.entropy_before);
  if (!d.entropy_after) return s + ".";
  if (*d.entropy_after == *d.entropy_before) return s + ", unchanged.";
  return s + " -> " + fmt("%.3f", *d.entropy_after) + " (" + fmt("%+.3f", *d.entropy_after - *d.entropy_before) + ").";
}

std::string candidate_text(std::size_t rank, const wire::Candidate& c, const wire::Decision& d) {
  std::string s = "  " + std::to_string(rank) + ". " + candidate_vm(c, d);
  if (!c.dst.empty()) s += " -> " + c.dst;
  if (c.score != 0 || c.gain != 0 || c.cost_s != 0) {
    s += "  score " + fmt("%.3g", c.score) + "/s (gain " + fmt("%+.3f", c.gain) + " over " +
         format_duration_ms(c.cost_s * 1000) + ")";
  }
  if (c.rejected) return s + "  rejected: " + *c.rejected + "\n";
  return s + (d.outcome == wire::Outcome::kSkipped ? "\n" : "  chosen\n");
}

}  // namespace

std::string explain_decision(const wire::Message& m) {
  const auto* dp = std::get_if<wire::Decision>(&m.body);
  if (dp == nullptr) {
    return "Not a decision: a \"" + std::string(wire::kind_name(m.kind())) + "\" message from " + m.env.host + ".\n";
  }
  const wire::Decision& d = *dp;
  const bool move = !d.vm.empty();
  std::string out = "Decision " + d.id + " (" + std::string(wire::mode_name(d.mode)) + " mode, " + d.strategy + ", " +
                    format_utc(m.env.ts_ns) + "): ";
  if (move) {
    out += "move VM " + vm_label(d) + " from " + d.src + " to " + d.dst + ".\n";
    out += "Outcome: " + outcome_text(d) + ".\n";
    out += "Why: " + sentence(d.reason) + "\n";
  } else {
    out += "nothing moved for host " + d.src + wanted(d.strategy) + ".\n";
    if (d.outcome != wire::Outcome::kSkipped) out += "Outcome: " + outcome_text(d) + ".\n";
    out += "Why nothing happened: " + sentence(d.reason) + "\n";
  }
  if (d.predict) out += prediction_text(*d.predict) + "\n";
  if (d.entropy_before) out += balance_text(d) + "\n";
  if (d.score) out += "Score: " + fmt("%.3g", *d.score) + " entropy gain per predicted migration second.\n";
  if (d.detail && !d.detail->empty()) out += "Strategy this round: " + sentence(*d.detail) + "\n";
  if (d.candidates.empty()) {
    if (!move) out += "No candidate move was found.\n";
  } else {
    out += move ? "Candidates considered (best first):\n" : "Candidates considered, none chosen:\n";
    for (std::size_t i = 0; i < d.candidates.size(); ++i) out += candidate_text(i + 1, d.candidates[i], d);
  }
  return out;
}

int run_explain(const ExplainOptions& opts, std::ostream& out, std::ostream& err) {
  const auto unreadable = [&](const Error& e) {
    err << "vmtide explain: cannot read the decision log: " << e.message() << '\n';
    return 2;
  };
  const auto note_malformed = [&](const decision_log::ScanStats& s) {
    if (s.malformed > 0) err << "vmtide explain: note: " << opts.log << ": " << decision_log::describe(s) << '\n';
  };
  if (opts.last) {
    auto r = decision_log::last(opts.log, *opts.last);
    if (!r) return unreadable(r.error());
    if (r->records.empty()) {
      err << "vmtide explain: no decisions in " << opts.log << ": " << decision_log::describe(r->stats) << '\n';
      return 1;
    }
    for (std::size_t i = 0; i < r->records.size(); ++i) {
      if (i > 0) out << '\n';
      out << explain_decision(r->records[i].message);
    }
    note_malformed(r->stats);
    return 0;
  }
  auto r = decision_log::find(opts.log, opts.id);
  if (!r) return unreadable(r.error());
  if (!r->found) {
    err << "vmtide explain: no decision \"" << opts.id << "\" in " << opts.log << ": "
        << decision_log::describe(r->stats) << '\n';
    return 1;
  }
  out << explain_decision(r->found->message);
  if (r->matches > 1) {
    out << "Logged " << r->matches << " times (";
    for (std::size_t i = 0; i < r->outcomes.size(); ++i) {
      out << (i > 0 ? " -> " : "") << wire::outcome_name(r->outcomes[i]);
    }
    out << (r->matches > r->outcomes.size() ? " ...)" : ")") << "; this is the latest, line " << r->found->line
        << " of " << opts.log << ".\n";
  }
  note_malformed(r->stats);
  return 0;
}

}  // namespace vmtide::cli
