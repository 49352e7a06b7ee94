// SPDX-License-Identifier: Apache-2.0
// Wire protocol v1 codec: topics, msgpack encoding, the strict decoder, and
// JSON rendering and parsing (docs/wire-protocol.md). The decoders never
// throw; the others only throw std::bad_alloc, like any std::string function.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "vmtide/result.h"
#include "vmtide/wire/messages.h"

namespace vmtide::wire {

// Bounds on what the decoder accepts from the network. msgpack's own defaults
// are 2^32-1 each, i.e. a 5-byte header could make it allocate gigabytes.
// Under these, msgpack-c's object tree takes at most ~24 bytes (one
// msgpack::object) per input byte, plus max_array objects per nesting level
// for headers whose elements never arrive.
struct DecodeLimits {
  std::size_t max_bytes = std::size_t{1} << 20;  // whole body; kWireTooLarge
  std::size_t max_depth = 8;                     // nested containers; kWireTooDeep
  std::size_t max_array = 4096;                  // elements; kWireOversize
  std::size_t max_map = 256;                     // key/value pairs; kWireOversize
  std::size_t max_str = 4096;                    // bytes; kWireOversize
  std::size_t max_bin = 0;                       // v1 has no bin values
  std::size_t max_ext = 0;                       // v1 has no ext values
};

// A parsed topic frame.
struct Topic {
  Kind kind = Kind::kVm;
  std::string host;
};

// "vmtide.v1.<kind>.<host>".
[[nodiscard]] std::string topic(const Message& m);

// Splits a topic frame; kWireKind if it is not "vmtide.v1.<known kind>.<host>"
// with a non-empty host.
[[nodiscard]] Result<Topic> parse_topic(std::string_view topic);

// The msgpack body: a map holding the envelope, the body's required keys and
// only the optional keys that are present (an empty array or map is absent).
[[nodiscard]] std::string encode(const Message& m);

// Strict decoding of a body; errors are kWire* codes with the key path in the
// context ("vm.dirty.curve[3]: expected [tau_ns, pages]").
[[nodiscard]] Result<Message> decode(std::span<const std::uint8_t> body, const DecodeLimits& limits = {});

// As above, and the topic must name the body's kind and host (kWireKind).
[[nodiscard]] Result<Message> decode(std::string_view topic, std::span<const std::uint8_t> body,
                                     const DecodeLimits& limits = {});

// One line of JSON with the wire's key names, as `vmtide tap` prints it.
// Strings that are not valid UTF-8 get U+FFFD for each bad byte; non-finite
// floats (which the decoder never produces) render as null.
[[nodiscard]] std::string to_json(const Message& m);

// `s` as a JSON string literal, quotes included, escaped as to_json does
// (for other JSON documents the tools print).
[[nodiscard]] std::string json_string(std::string_view s);

// The inverse of to_json, for the controller's decision log and other JSON
// input: a strict RFC 8259 parser (UTF-8 only, every escape including
// surrogate pairs, no trailing bytes) converts the text to msgpack, which
// then goes through decode() with the same limits, so the JSON form gets
// every check of the wire form. limits.max_bytes bounds the text; depth,
// element, pair and string limits apply while parsing, with the same codes.
// Integers become msgpack integers (negative ones negative); numbers with a
// fraction or exponent, or outside 64-bit integer range, become float64, so
// "1.0" is not a uint. null becomes nil, which no known key accepts: the
// null to_json writes for a non-finite float is rejected (wire_type), as
// decode() rejects the float itself. Syntax errors are kWireMalformed and
// input ending early kWireTruncated, with the byte offset in the context.
// from_json(to_json(m)) == m for every m decode() accepts whose strings are
// valid UTF-8 (to_json replaces invalid bytes with U+FFFD).
[[nodiscard]] Result<Message> from_json(std::string_view text, const DecodeLimits& limits = {});

// Views a std::string / zmq frame as the decoder's input.
inline std::span<const std::uint8_t> as_bytes(std::string_view s) noexcept {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

}  // namespace vmtide::wire
