// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for the controller's config file
// (controller/daemon/controller_config.cc): any text parses or fails with an
// error naming the file and line; a configuration that also validates
// prints (to_toml, what --check-config shows) as TOML that reads back and
// prints the same.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "controller_config.h"

namespace {

void require(bool ok, const char* invariant) {
  if (!ok) {
    std::fprintf(stderr, "controller config invariant violated: %s\n", invariant);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace vmtide::controller;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto c = parse_config(text, "controller.toml");
  if (!c) {
    require(c.error().context.rfind("controller.toml:", 0) == 0,
            "a parse error does not start with controller.toml:");
    return 0;
  }
  if (!validate(*c)) return 0;
  const std::string shown = to_toml(*c);
  auto back = parse_config(shown, "effective");
  if (!back) std::fprintf(stderr, "%s\n---\n%s\n", back.error().message().c_str(), shown.c_str());
  require(back.ok(), "to_toml output does not parse");
  require(validate(*back).ok(), "to_toml output does not validate");
  require(to_toml(*back) == shown, "to_toml -> parse -> to_toml changed the configuration");
  return 0;
}
