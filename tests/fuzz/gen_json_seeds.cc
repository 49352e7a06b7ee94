// SPDX-License-Identifier: Apache-2.0
// Writes the wire_json fuzz seeds: every sample message as to_json prints it,
// other valid spellings of the same messages, and one input per parser and
// schema error. Regenerate with
//   build/tests/fuzz/json_seed_gen tests/fuzz/corpus/wire_json
// (the fuzz.json_seeds_current test fails when the checked-in copy is stale).
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "samples.h"
#include "vmtide/wire/codec.h"

namespace {

using namespace vmtide::wire;

// `m`'s JSON with the first `from` replaced by `to`.
std::string replaced(const Message& m, std::string_view from, std::string_view to) {
  std::string j = to_json(m);
  const auto at = j.find(from);
  if (at == std::string::npos) {
    std::fprintf(stderr, "seed generator: '%.*s' not in %s\n", static_cast<int>(from.size()), from.data(), j.c_str());
    std::exit(1);
  }
  j.replace(at, from.size(), to);
  return j;
}

// `m`'s JSON with `member` as its first key.
std::string with_first(const Message& m, std::string_view member) {
  const std::string j = to_json(m);
  return "{" + std::string(member) + "," + j.substr(1);
}

std::vector<std::pair<std::string, std::string>> seeds() {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [name, m] : samples::all()) out.emplace_back(name, to_json(m));

  // Accepted: whitespace, escapes, other number spellings, unknown keys of
  // every JSON type, extreme values.
  out.emplace_back(
      "ok_event_spelled_differently",
      " {\"v\" : 1 ,\n\"kind\":\"ev\\u0065nt\",\t\"host\":\"node1\",\"epoch\":1700000000000000000,"
      "\"seq\":5,\"ts_ns\":1700000012000000000,\"mono_ns\":12000000000,\"interval_ns\":0,"
      "\"detail\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0000\\u00e9\\ud83d\\ude00\",\"type\":\"agent_started\"}\r\n");
  out.emplace_back("ok_host_number_spellings",
                   replaced(samples::full_host(), "\"load1\":6.25,\"load5\":5.5", "\"load1\":6,\"load5\":55E-1"));
  out.emplace_back("ok_hb_unknown_keys",
                   with_first(samples::full_hb(), "\"x_future\":[null,true,false,{},[],-1.5e-3,{\"a\":{\"b\":[0]}}]"));
  Message extreme = samples::full_decision();
  extreme.env.ts_ns = std::numeric_limits<std::int64_t>::min();
  std::get<Decision>(extreme.body).score = 0x1p64;
  std::get<Decision>(extreme.body).entropy_before = std::numeric_limits<double>::denorm_min();
  std::get<Decision>(extreme.body).predict->bytes = std::numeric_limits<std::uint64_t>::max();
  out.emplace_back("ok_decision_extreme_numbers", to_json(extreme));

  // Rejected by the parser.
  const std::string hb = to_json(samples::minimal_hb());
  out.emplace_back("err_empty", "");
  out.emplace_back("err_truncated", hb.substr(0, hb.size() / 2));
  out.emplace_back("err_trailing", hb + "x");
  out.emplace_back("err_trailing_comma", hb.substr(0, hb.size() - 1) + ",}");
  out.emplace_back("err_bare_key", "{v:1}");
  out.emplace_back("err_leading_zero", with_first(samples::minimal_hb(), "\"x\":01"));
  out.emplace_back("err_nan", with_first(samples::minimal_hb(), "\"x\":NaN"));
  out.emplace_back("err_bad_escape", with_first(samples::minimal_hb(), "\"x\":\"\\x41\""));
  out.emplace_back("err_lone_surrogate", with_first(samples::minimal_hb(), "\"x\":\"\\ud800\""));
  out.emplace_back("err_raw_control", with_first(samples::minimal_hb(), "\"x\":\"a\nb\""));
  out.emplace_back("err_invalid_utf8", with_first(samples::minimal_hb(), "\"x\":\"\xc0\xaf\""));
  out.emplace_back("err_too_deep", with_first(samples::minimal_hb(), "\"x\":[[[[[[[[1]]]]]]]]"));
  out.emplace_back("err_float_overflow", replaced(samples::full_host(), "\"load1\":6.25", "\"load1\":1e400"));
  // Rejected by the shared decoder.
  out.emplace_back("err_top_array", "[1,2]");
  out.emplace_back("err_duplicate_key", with_first(samples::minimal_hb(), "\"\\u0076ms\":1"));
  out.emplace_back("err_null_score", replaced(samples::full_decision(), "\"score\":0.82", "\"score\":null"));
  out.emplace_back("err_uint_as_float", replaced(samples::minimal_hb(), "\"vms\":0", "\"vms\":1.0"));
  out.emplace_back("err_missing_seq", replaced(samples::minimal_hb(), "\"seq\":3,", ""));
  out.emplace_back("err_version_2", replaced(samples::minimal_hb(), "\"v\":1", "\"v\":2"));
  out.emplace_back("err_range_outcome",
                   replaced(samples::full_decision(), "\"outcome\":\"recommended\"", "\"outcome\":\"maybe\""));
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUTPUT_DIR\n", argv[0]);
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  std::filesystem::create_directories(dir);
  for (const auto& [name, text] : seeds()) {
    std::ofstream f(dir / (name + ".json"), std::ios::binary | std::ios::trunc);
    f.write(text.data(), static_cast<std::streamsize>(text.size()));
    if (!f) {
      std::fprintf(stderr, "writing %s failed\n", (dir / name).c_str());
      return 1;
    }
  }
  return 0;
}
