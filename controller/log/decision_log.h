// SPDX-License-Identifier: Apache-2.0
// The decision log: every decision the controller makes, one JSON line each
// (wire::to_json of the kind "decision" message), so an operator can ask
// "why did it move that VM?" (`vmtide explain`). The format is in
// docs/wire-protocol.md, "Decision log".
#pragma once

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vmtide/result.h"
#include "vmtide/wire/messages.h"

namespace vmtide::decision_log {

inline constexpr std::string_view kDefaultPath = "/var/lib/vmtide/decisions.jsonl";

// Appends to_json(m) and a newline with one write(2) on an O_APPEND
// descriptor (the file is created 0640 if missing), so when it returns the
// line is in the kernel, visible to readers, and not interleaved with other
// appenders' lines. No fsync. Errors: kNotFound if the directory does not
// exist (it is not created: a missing /var/lib/vmtide means a broken
// install), kPermission, kIo; kInvalidArgument if the line would not read
// back (a NaN score renders as null), and then nothing is written.
[[nodiscard]] Status append(const std::filesystem::path& path, const wire::Message& m);

// What a scan of the file met besides the records it returned.
struct ScanStats {
  std::size_t lines = 0;            // lines read, blank ones included
  std::size_t malformed = 0;        // lines from_json rejects, or longer than its 1 MiB limit
  std::size_t other_kinds = 0;      // valid messages that are not decisions
  std::size_t first_malformed = 0;  // its line number (from 1); 0 if none
  std::string first_error;          // why that line was rejected
};

// "12 lines read, 1 malformed (line 4: wire_malformed: JSON at offset 17: ...)"
[[nodiscard]] std::string describe(const ScanStats& s);

struct Record {
  wire::Message message;  // kind "decision"
  std::size_t line = 0;   // from 1
};

struct FindResult {
  std::optional<Record> found;          // the last record with the id: the latest outcome
  std::size_t matches = 0;              // records with the id (a decision is logged again when its outcome changes)
  std::vector<wire::Outcome> outcomes;  // of the first 64 matches, in log order
  ScanStats stats;
};

// Scans the whole file for decisions with `id`. Malformed lines are counted
// and skipped; a missing id is found == nullopt, not an error. Errors (file
// missing or unreadable): kNotFound, kPermission, kIo.
[[nodiscard]] Result<FindResult> find(const std::filesystem::path& path, std::string_view id);

struct LastResult {
  std::vector<Record> records;  // the last n decisions, oldest first
  ScanStats stats;
};

// The last `n` decisions in the file (every one of them if there are fewer).
[[nodiscard]] Result<LastResult> last(const std::filesystem::path& path, std::size_t n);

}  // namespace vmtide::decision_log
