// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for the agent's config file (userspace/agent/config.cc):
// any text parses or fails with an error naming the file and line; a
// configuration that also validates survives to_toml -> parse unchanged
// (what --check-config prints reads back as the same configuration).
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "config.h"

namespace {

void require(bool ok, const char* invariant) {
  if (!ok) {
    std::fprintf(stderr, "agent config invariant violated: %s\n", invariant);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace vmtide::agent;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto c = parse_config(text, "agent.toml");
  if (!c) {
    require(c.error().context.rfind("agent.toml:", 0) == 0, "a parse error does not start with agent.toml:");
    return 0;
  }
  if (!validate(*c)) return 0;
  // The agent turns each into nanoseconds with static_cast<uint64_t>
  // (main.cc): past 2^64 ns (584 years) or not finite, that is undefined.
  for (const double sec : {c->interval_s, c->rescan_interval_s, c->dirty_window_s, c->dirty_period_s}) {
    require(std::isfinite(sec) && sec >= 0 && sec * 1e9 < 1.8e19, "a valid configuration has a duration "
                                                                  "that does not fit the agent's nanoseconds");
  }
  const std::string shown = to_toml(*c);
  auto back = parse_config(shown, "effective");
  require(back.ok(), "to_toml output does not parse");
  require(*back == *c, "to_toml -> parse changed the configuration");
  require(to_toml(*back) == shown, "to_toml is not deterministic");
  return 0;
}
