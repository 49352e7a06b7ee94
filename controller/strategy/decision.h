// SPDX-License-Identifier: Apache-2.0
// Converts the planner's output into wire decision records (kind
// "decision"), the form the daemon publishes, logs and `vmtide explain`
// prints. Pure: the daemon supplies the id and the mode.
#pragma once

#include <string>

#include "planner.h"
#include "vmtide/wire/messages.h"

namespace vmtide::strategy {

// A planned move: outcome kRecommended (the daemon sets kPending/kStarted
// when it acts in enforce mode). `strategy` is the trigger ("push", "pull",
// "maintenance"); `detail` carries the round's strategy choice.
[[nodiscard]] wire::Decision to_decision(const PlannedMove& move, const Plan& plan, wire::Mode mode, std::string id);

// A host that wanted to act but did not: outcome kSkipped, no vm/dst.
[[nodiscard]] wire::Decision to_decision(const Skipped& skipped, const Plan& plan, wire::Mode mode, std::string id);

}  // namespace vmtide::strategy
