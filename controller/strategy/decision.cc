// SPDX-License-Identifier: Apache-2.0
// Planner output -> wire::Decision records (decision.h).
#include "decision.h"

#include <algorithm>
#include <cmath>

namespace vmtide::strategy {
namespace {

std::vector<wire::Candidate> to_wire(const std::vector<CandidateNote>& notes) {
  std::vector<wire::Candidate> out;
  const std::size_t n = std::min(notes.size(), wire::kMaxCandidates);
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    const CandidateNote& c = notes[i];
    out.push_back(wire::Candidate{c.vm_id, c.dst, c.score, c.gain, c.cost_s, c.rejected});
  }
  return out;
}

}  // namespace

wire::Decision to_decision(const PlannedMove& move, const Plan& plan, wire::Mode mode, std::string id) {
  wire::Decision d;
  d.id = std::move(id);
  d.mode = mode;
  d.strategy = trigger_name(move.trigger);
  d.vm = move.vm_id;
  d.src = move.src;
  d.dst = move.dst;
  d.reason = move.reason;
  d.outcome = wire::Outcome::kRecommended;
  if (!move.vm_name.empty()) d.vm_name = move.vm_name;
  d.score = move.score;
  d.entropy_before = move.entropy_before;
  d.entropy_after = move.entropy_after;
  wire::Prediction p;
  p.total_ms = move.cost.total_s * 1000.0;
  p.downtime_ms = move.cost.downtime_ms;
  p.bytes = move.cost.bytes;
  p.passes = move.cost.passes;
  p.converges = move.cost.converges;
  if (move.cost.need_bw_bytes_per_s) p.need_bw_bps = static_cast<std::uint64_t>(*move.cost.need_bw_bytes_per_s * 8.0);
  if (move.cost.need_throttle_pct) {
    p.need_throttle_pct = static_cast<std::uint32_t>(std::clamp(*move.cost.need_throttle_pct, 0.0, 100.0));
  }
  d.predict = p;
  d.candidates = to_wire(move.candidates);
  d.detail = plan.strategy_reason;
  return d;
}

wire::Decision to_decision(const Skipped& skipped, const Plan& plan, wire::Mode mode, std::string id) {
  wire::Decision d;
  d.id = std::move(id);
  d.mode = mode;
  d.strategy = trigger_name(skipped.trigger);
  d.src = skipped.host;
  d.reason = skipped.reason;
  d.outcome = wire::Outcome::kSkipped;
  d.entropy_before = plan.entropy_before;
  d.entropy_after = plan.entropy_before;
  d.candidates = to_wire(skipped.candidates);
  d.detail = plan.strategy_reason;
  return d;
}

}  // namespace vmtide::strategy
