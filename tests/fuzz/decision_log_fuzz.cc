// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for the decision log as `vmtide explain` reads it
// (controller/log/decision_log.cc, userspace/cli/explain.cc): the input is
// the log file. Every line is counted once, records come back in line
// order, find() returns what it was asked for, and explain prints every
// record it is given and exits 0 or 1 (the file exists).
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <variant>

#include "decision_log.h"
#include "explain.h"

namespace {

using namespace vmtide;

void require(bool ok, const char* invariant) {
  if (!ok) {
    std::fprintf(stderr, "decision log invariant violated: %s\n", invariant);
    std::abort();
  }
}

// A private directory, removed at exit. The path is never destroyed, so
// the exit handler cannot outlive it.
const std::filesystem::path& log_path() {
  static const std::filesystem::path* p = [] {
    char tmpl[] = "/tmp/vmtide-fuzz-log.XXXXXX";
    const char* made = ::mkdtemp(tmpl);
    require(made != nullptr, "mkdtemp failed");
    std::atexit([] { std::filesystem::remove_all(log_path().parent_path()); });
    return new std::filesystem::path(std::filesystem::path(made) / "decisions.jsonl");
  }();
  return *p;
}

void check_stats(const decision_log::ScanStats& s, std::size_t want_lines) {
  require(s.lines == want_lines, "lines counted differ from the lines in the file");
  require(s.malformed + s.other_kinds <= s.lines, "more malformed or other lines than lines");
  require((s.malformed == 0) == (s.first_malformed == 0), "first_malformed disagrees with malformed");
  require(s.first_malformed <= s.lines, "first_malformed past the last line");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  {
    std::ofstream f(log_path(), std::ios::binary | std::ios::trunc);
    f.write(text.data(), static_cast<std::streamsize>(text.size()));
    require(f.good(), "writing the log failed");
  }
  const std::size_t lines =
      static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')) + (text.empty() || text.back() == '\n' ? 0 : 1);

  auto tail = decision_log::last(log_path(), 3);
  require(tail.ok(), "last() failed on a readable file");
  check_stats(tail->stats, lines);
  require(tail->records.size() <= 3, "last(3) returned more than 3");
  for (std::size_t i = 0; i < tail->records.size(); ++i) {
    require(tail->records[i].message.kind() == wire::Kind::kDecision, "last() returned a non-decision");
    require(tail->records[i].line >= 1 && tail->records[i].line <= lines, "a record's line is out of range");
    if (i > 0) require(tail->records[i].line > tail->records[i - 1].line, "records out of line order");
  }

  const std::string id = tail->records.empty() ? std::string("d-1")
                                               : std::get<wire::Decision>(tail->records.back().message.body).id;
  auto found = decision_log::find(log_path(), id);
  require(found.ok(), "find() failed on a readable file");
  check_stats(found->stats, lines);
  if (!tail->records.empty()) {
    require(found->found.has_value(), "find() missed a decision last() returned");
    require(found->found->line == tail->records.back().line, "find() and last() disagree on the latest line");
  }
  if (found->found) {
    require(std::get<wire::Decision>(found->found->message.body).id == id, "find() returned another id");
    require(found->matches >= 1 && found->outcomes.size() == std::min<std::size_t>(found->matches, 64),
            "find()'s matches and outcomes disagree");
  }

  for (const bool by_id : {false, true}) {
    cli::ExplainOptions opts{.id = id, .log = log_path().string()};
    if (!by_id) opts.last = 2;
    std::ostringstream out, err;
    const int rc = cli::run_explain(opts, out, err);
    require(rc == 0 || rc == 1, "explain exited with neither 0 nor 1 on a readable log");
    require((rc == 0) == !out.str().empty(), "explain printed nothing for 0, or something for 1");
  }
  return 0;
}
