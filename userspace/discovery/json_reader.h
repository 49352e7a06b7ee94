// SPDX-License-Identifier: Apache-2.0
// A small, strict JSON reader (RFC 8259) for what QEMU's monitor sends: a
// value tree with limits on size and depth, and a prefix parser that tells
// "need more bytes" from "malformed" so a socket reader can frame a stream
// of values. Debian 12 packages no JSON library the agent may use, and the
// wire code only renders JSON (userspace/wire/json.cc).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "vmtide/result.h"

namespace vmtide::discovery::json {

class Value {
 public:
  enum class Type : std::uint8_t { kNull, kBool, kNumber, kString, kArray, kObject };
  using Member = std::pair<std::string, Value>;

  Value() = default;
  static Value boolean(bool b);
  static Value number(double d, std::optional<std::int64_t> exact);
  static Value string(std::string s);
  static Value array(std::vector<Value> items);
  static Value object(std::vector<Member> members);

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::kNull; }
  bool is_object() const { return type_ == Type::kObject; }

  // Typed reads: nullopt when the value has another type. as_int() also
  // needs an integer literal that fits int64 ("5", not "5.0" or "1e3").
  std::optional<bool> as_bool() const;
  std::optional<double> as_double() const;
  std::optional<std::int64_t> as_int() const;
  const std::string* as_string() const;
  const std::vector<Value>* as_array() const;
  const std::vector<Member>* as_object() const;

  // Member `key` of an object; nullptr if absent or not an object.
  const Value* find(std::string_view key) const;

 private:
  Type type_ = Type::kNull;
  bool bool_ = false;
  double number_ = 0;
  std::optional<std::int64_t> int_;
  std::string string_;
  std::vector<Value> items_;
  std::vector<Member> members_;
};

struct Limits {
  std::size_t max_depth = 32;          // nested arrays/objects
  std::size_t max_values = 100'000;    // values in one document
  std::size_t max_string = 64 * 1024;  // bytes in one string, after unescaping
};

struct Parsed {
  Value value;
  std::size_t consumed = 0;  // bytes of the input the value used, leading whitespace included
};

// Parses the first value in `text`, after optional whitespace; what follows
// it is left alone. Errors: kWireTruncated if `text` ends before the value
// does (more bytes may complete it; a number running to the end counts as
// unfinished), kWireMalformed for bytes that are not JSON (including raw
// control characters in strings, bad escapes, lone surrogates, duplicate
// keys), kWireTooDeep and kWireOversize past `limits`. Other bytes >= 0x80
// in strings pass through unchecked: nothing here interprets text.
[[nodiscard]] Result<Parsed> parse_prefix(std::string_view text, const Limits& limits = {});

// Parses a whole document: one value, optionally surrounded by whitespace.
[[nodiscard]] Result<Value> parse(std::string_view text, const Limits& limits = {});

}  // namespace vmtide::discovery::json
