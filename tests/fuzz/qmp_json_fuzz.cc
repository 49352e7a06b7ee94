// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for what QEMU's monitor sends (userspace/discovery
// json_reader.cc and qmp.cc, controller/executor/qmp_executor.cc): the
// input is a monitor stream. It is framed the way QmpClient frames it
// (parse_prefix, consume, repeat), and every reply's "return" goes through
// parse_query_dirty_rate, parse_query_migrate and the executor's state
// logic. Framing must be split-proof: a cut anywhere inside a value reads
// as "need more bytes", never as malformed or as another value, or a reply
// split across two reads would drop the connection.
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "json_reader.h"
#include "qmp.h"
#include "qmp_executor.h"

namespace {

using namespace vmtide;
namespace json = discovery::json;

void require(bool ok, const char* invariant) {
  if (!ok) {
    std::fprintf(stderr, "qmp invariant violated: %s\n", invariant);
    std::abort();
  }
}

void check_split(std::string_view text, std::size_t consumed, std::size_t cut) {
  if (cut >= consumed) return;
  auto part = json::parse_prefix(text.substr(0, cut));
  require(!part.ok(), "a cut inside a value parsed as a value");
  require(part.error().code == Errc::kWireTruncated, "a cut inside a value was not kWireTruncated");
}

void replies(const json::Value& v, std::uint8_t knob) {
  const json::Value* ret = v.find("return");
  if (ret == nullptr) return;
  if (auto rate = discovery::parse_query_dirty_rate(*ret); rate && *rate) {
    require((*rate)->mib_per_s >= 0 && std::isfinite((*rate)->mib_per_s), "dirty rate negative or not finite");
    require((*rate)->period_ns > 0 && (*rate)->period_ns <= 3600ULL * 1'000'000'000ULL, "period out of range");
  }
  auto q = executor::parse_query_migrate(*ret);
  if (!q) return;
  executor::Tracked t;
  t.req.vm_id = "vm";
  t.req.timeout = std::chrono::seconds{knob % 64};
  t.aborted = (knob & 0x40) != 0;
  const auto t0 = discovery::QmpClock::time_point{} + std::chrono::hours{1};
  t.started = t0;
  const executor::Step s = executor::advance(t, *q, t0 + std::chrono::seconds{knob});
  require(s.progress.elapsed_s >= 0 && std::isfinite(s.progress.elapsed_s), "elapsed negative or not finite");
  if (s.progress.state != executor::State::kRunning) {
    require(t.final.has_value(), "an ended migration left no final progress");
    require(!s.cancel, "cancel asked for a migration that ended");
    const executor::Step again = executor::advance(t, *q, t0 + std::chrono::seconds{knob + 1});
    require(again.progress.state == s.progress.state, "an ended migration changed state on the next poll");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  const std::uint8_t knob = size > 0 ? data[size - 1] : 0;
  if (auto whole = json::parse(text); whole) {
    // A number at the very end may go on in the next read: only a
    // delimiter after it completes it for the prefix parser.
    auto first = json::parse_prefix(std::string(text) + "\n");
    require(first.ok(), "parse() accepted what parse_prefix() rejects");
  }
  for (int values = 0; values < 64 && !text.empty(); ++values) {
    auto p = json::parse_prefix(text);
    if (!p) {
      const Errc c = p.error().code;
      require(c == Errc::kWireTruncated || c == Errc::kWireMalformed || c == Errc::kWireTooDeep ||
                  c == Errc::kWireOversize,
              "parse_prefix failed with an undocumented code");
      return 0;
    }
    require(p->consumed > 0 && p->consumed <= text.size(), "consumed out of range");
    check_split(text, p->consumed, p->consumed / 2);
    check_split(text, p->consumed, p->consumed - 1);
    replies(p->value, knob);
    text.remove_prefix(p->consumed);
  }
  return 0;
}
