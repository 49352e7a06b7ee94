// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for the wire decoder: decoding arbitrary bytes must not
// crash, and whatever it accepts must survive encode -> decode unchanged.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <span>
#include <string>
#include <string_view>

#include "vmtide/wire/codec.h"

namespace {

using namespace vmtide::wire;

// Topics the first input byte chooses from: right and wrong kinds and
// hosts, another version, and broken frames.
constexpr std::string_view kTopics[] = {
    "vmtide.v1.vm.node1",
    "vmtide.v1.host.node1",
    "vmtide.v1.hb.node1",
    "vmtide.v1.decision.node1",
    "vmtide.v1.event.node1",
    "vmtide.v1.vm.node2",
    "vmtide.v2.vm.node1",
    "vmtide.v1.vm.",
    "vmtide.v1.",
    "",
};

void require(bool ok, const char* invariant) {
  if (!ok) {
    std::fprintf(stderr, "wire invariant violated: %s\n", invariant);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> body(data, size);
  const auto m = decode(body);
  const std::string_view chosen = size > 0 ? kTopics[data[0] % std::size(kTopics)] : kTopics[0];
  const auto with_topic = decode(chosen, body);
  if (!m) {
    require(!with_topic, "a topic made an invalid body valid");
    return 0;
  }
  require(!with_topic || *with_topic == *m, "decode(topic, body) differs from decode(body)");
  const auto own = decode(topic(*m), body);
  require(own && *own == *m, "decode with the message's own topic failed");

  const std::string again = encode(*m);
  // Re-encoding may grow a little (an integer sent for a float becomes
  // float64), so a 1 MiB input need not fit the default size cap again.
  const auto back = decode(as_bytes(again), DecodeLimits{.max_bytes = again.size()});
  require(back && *back == *m, "encode -> decode round trip");
  require(encode(*back) == again, "encoding is not deterministic");

  const std::string json = to_json(*m);
  require(json.size() > 2 && json.front() == '{' && json.back() == '}', "to_json output is not an object");
  return 0;
}
