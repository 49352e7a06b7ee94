// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for from_json: parsing arbitrary text must not crash, and
// whatever it accepts must survive to_json -> from_json unchanged and agree
// with the msgpack path (encode -> decode).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "vmtide/wire/codec.h"

namespace {

using namespace vmtide::wire;

void require(bool ok, const char* invariant) {
  if (!ok) {
    std::fprintf(stderr, "wire JSON invariant violated: %s\n", invariant);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto m = from_json(text);
  if (!m) {
    require(m.error().code != vmtide::Errc::kOk, "an error without a code");
    return 0;
  }
  // to_json escapes what the input may have sent raw (0x7f as \u007f), so
  // the text may grow past the default size cap.
  const std::string json = to_json(*m);
  const auto back = from_json(json, DecodeLimits{.max_bytes = json.size()});
  require(back && *back == *m, "from_json -> to_json -> from_json round trip");
  require(to_json(*back) == json, "to_json is not deterministic");

  const std::string bytes = encode(*m);
  const auto via_msgpack = decode(as_bytes(bytes), DecodeLimits{.max_bytes = bytes.size()});
  require(via_msgpack && *via_msgpack == *m, "JSON and msgpack forms disagree");
  return 0;
}
