// SPDX-License-Identifier: Apache-2.0
// `vmtide explain`: a decision from the controller's decision log, in plain
// language for an operator: what it moved (or why nothing moved), why, the
// predicted migration, the balance before and after, and every candidate
// considered with why it was not chosen.
#pragma once

#include <cstddef>
#include <optional>
#include <ostream>
#include <string>

#include "decision_log.h"
#include "vmtide/wire/messages.h"

namespace vmtide::cli {

struct ExplainOptions {
  std::string id;  // a decision id; empty with `last`
  std::string log = std::string(decision_log::kDefaultPath);
  std::optional<std::size_t> last;  // explain the last N decisions instead
};

// The explanation of one kind "decision" message, lines ending in '\n'.
// Pure: the same message gives the same text (times in UTC).
[[nodiscard]] std::string explain_decision(const wire::Message& m);

// The subcommand. Exit status: 0 explained; 1 no such decision (or none in
// the log), with how many lines were read and how many were malformed; 2
// the log is missing or unreadable. Messages go to err.
int run_explain(const ExplainOptions& opts, std::ostream& out, std::ostream& err);

}  // namespace vmtide::cli
