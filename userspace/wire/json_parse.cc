// SPDX-License-Identifier: Apache-2.0
// Wire protocol v1: reading the JSON form back (the controller's decision
// log, hand-written input). A strict, bounded RFC 8259 parser turns the text
// into msgpack and hands it to decode(), so one schema walk checks both forms.
#include <msgpack.hpp>

#include <algorithm>
#include <bit>
#include <charconv>
#include <cstdint>
#include <limits>
#include <new>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "utf8.h"
#include "vmtide/wire/codec.h"

namespace vmtide::wire {
namespace {

constexpr bool is_digit(char c) { return c >= '0' && c <= '9'; }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void append_utf8(std::string& s, std::uint32_t cp) {
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    s += static_cast<char>(0xE0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xF0 | (cp >> 18));
    s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Decimal exponent of a number token's first significant digit: 2 for
// "123.4", -3 for "0.00123e0". Only called for tokens std::from_chars found
// out of range, i.e. with a significant digit; the exponent saturates.
long long decimal_magnitude(std::string_view token) {
  std::size_t i = token.front() == '-' ? 1 : 0;
  long long mag = 0;
  if (token[i] != '0') {
    const std::size_t start = i;
    while (i < token.size() && is_digit(token[i])) ++i;
    mag = static_cast<long long>(i - start) - 1;
  } else {
    ++i;
    if (i < token.size() && token[i] == '.') {
      ++i;
      long long zeros = 0;
      while (i < token.size() && token[i] == '0') {
        ++i;
        ++zeros;
      }
      mag = -zeros - 1;
    }
  }
  const std::size_t e = token.find_first_of("eE");
  if (e != std::string_view::npos) {
    std::size_t k = e + 1;
    const bool neg = token[k] == '-';
    if (token[k] == '-' || token[k] == '+') ++k;
    long long exp = 0;
    for (; k < token.size(); ++k) exp = std::min(exp * 10 + (token[k] - '0'), 1'000'000'000LL);
    mag += neg ? -exp : exp;
  }
  return mag;
}

// msgpack::packer's output stream, appending to a std::string.
struct StringSink {
  std::string& s;
  void write(const char* p, std::size_t n) { s.append(p, n); }
};

// Converts one JSON text to one msgpack object. Containers get a 5-byte
// header (array 32 / map 32) patched with the count when they close, so the
// conversion is a single pass with no tree; msgpack allows a non-minimal
// header and decode() reads it like any other.
class JsonToMsgpack {
 public:
  JsonToMsgpack(std::string_view in, const DecodeLimits& limits) : in_(in), limits_(limits) {
    out_.reserve(in.size() + 16);
  }

  [[nodiscard]] bool run();
  std::string& msgpack() { return out_; }
  Error take_error() && { return std::move(err_); }

 private:
  struct Open {
    std::size_t header_at = 0;  // offset of the placeholder header in out_
    std::size_t count = 0;      // elements, or key/value pairs
    bool is_map = false;
  };

  bool fail(Errc code, std::string what) {
    err_ = make_error(code, "JSON at offset " + std::to_string(pos_) + ": " + std::move(what));
    return false;
  }
  bool malformed(std::string what) { return fail(Errc::kWireMalformed, std::move(what)); }
  bool truncated(std::string_view inside) {
    err_ = make_error(Errc::kWireTruncated, "JSON ends inside " + std::string(inside));
    return false;
  }

  bool at_end() const { return pos_ >= in_.size(); }
  char peek() const { return in_[pos_]; }
  void skip_ws() {
    while (!at_end() && (peek() == ' ' || peek() == '\t' || peek() == '\n' || peek() == '\r')) ++pos_;
  }

  bool open(bool is_map);
  void close();
  bool key();
  bool scalar();
  bool literal(std::string_view word);
  bool string(std::string& s);
  bool escape(std::string& s);
  bool hex4(std::uint32_t& out);
  bool number();

  void raw(std::uint8_t b) { out_ += static_cast<char>(b); }
  void be32(std::size_t at, std::uint32_t v) {
    for (int k = 0; k < 4; ++k) out_[at + k] = static_cast<char>(v >> (24 - 8 * k));
  }
  void pack_str(std::string_view s);
  void pack_uint(std::uint64_t v);
  void pack_negative(std::int64_t v);
  void pack_float64(double v);

  std::string_view in_;
  const DecodeLimits& limits_;
  std::size_t pos_ = 0;
  std::string out_;
  std::vector<Open> stack_;
  std::string scratch_;
  Error err_;
};

bool JsonToMsgpack::run() {
  if (in_.starts_with("\xEF\xBB\xBF")) return malformed("byte order mark (RFC 8259 forbids one)");
  bool want_value = true;
  for (;;) {
    skip_ws();
    if (want_value) {
      if (at_end()) {
        if (!stack_.empty()) return truncated("a container: expected a value");
        err_ = make_error(Errc::kWireTruncated, "no JSON value: the input is empty or blank");
        return false;
      }
      if (peek() == '{' || peek() == '[') {
        if (!open(peek() == '{')) return false;
        skip_ws();
        if (at_end()) return truncated("a container");
        if (peek() == (stack_.back().is_map ? '}' : ']')) {
          ++pos_;
          close();
          want_value = false;
        } else if (stack_.back().is_map && !key()) {
          return false;
        }
        continue;
      }
      if (!scalar()) return false;
      want_value = false;
      continue;
    }
    // After a complete value: the end, or a separator or a closing bracket.
    if (stack_.empty()) {
      if (!at_end()) return malformed(std::to_string(in_.size() - pos_) + " trailing bytes after the value");
      return true;
    }
    Open& top = stack_.back();
    const std::size_t cap = std::min<std::size_t>(top.is_map ? limits_.max_map : limits_.max_array,
                                                  std::numeric_limits<std::uint32_t>::max());
    if (++top.count > cap) {
      return fail(Errc::kWireOversize, std::string(top.is_map ? "object" : "array") + " with more than " +
                                           std::to_string(cap) + (top.is_map ? " members" : " elements"));
    }
    if (at_end()) return truncated(top.is_map ? "an object" : "an array");
    if (peek() == ',') {
      ++pos_;
      want_value = true;
      if (top.is_map && !key()) return false;
    } else if (peek() == (top.is_map ? '}' : ']')) {
      ++pos_;
      close();
    } else {
      return malformed(top.is_map ? "expected ',' or '}'" : "expected ',' or ']'");
    }
  }
}

// Same rule as msgpack's unpack_limit depth: the top-level container is
// depth 1, and a container deeper than max_depth is an error.
bool JsonToMsgpack::open(bool is_map) {
  if (stack_.size() >= limits_.max_depth) {
    return fail(Errc::kWireTooDeep, "nesting deeper than " + std::to_string(limits_.max_depth));
  }
  ++pos_;
  stack_.push_back(Open{out_.size(), 0, is_map});
  raw(is_map ? 0xdf : 0xdd);
  out_.append(4, '\0');
  return true;
}

void JsonToMsgpack::close() {
  const Open o = stack_.back();
  stack_.pop_back();
  be32(o.header_at + 1, static_cast<std::uint32_t>(o.count));
}

// An object member's key and the colon after it; the value follows.
bool JsonToMsgpack::key() {
  skip_ws();
  if (at_end()) return truncated("an object: expected a key");
  if (peek() != '"') return malformed("expected a string key");
  if (!string(scratch_)) return false;
  pack_str(scratch_);
  skip_ws();
  if (at_end()) return truncated("an object: expected ':'");
  if (peek() != ':') return malformed("expected ':' after an object key");
  ++pos_;
  return true;
}

bool JsonToMsgpack::scalar() {
  switch (peek()) {
    case '"':
      if (!string(scratch_)) return false;
      pack_str(scratch_);
      return true;
    case 't':
      return literal("true");
    case 'f':
      return literal("false");
    case 'n':
      return literal("null");
    default:
      if (peek() == '-' || is_digit(peek())) return number();
      return malformed("expected a value");
  }
}

bool JsonToMsgpack::literal(std::string_view word) {
  const std::string_view rest = in_.substr(pos_, word.size());
  if (rest != word) {
    if (word.starts_with(rest)) return truncated(word);
    return malformed("expected " + std::string(word));
  }
  pos_ += word.size();
  // msgpack: nil 0xc0, false 0xc2, true 0xc3. A null reaches decode() as nil,
  // which no known key accepts (docs/wire-protocol.md, "JSON form").
  raw(word == "null" ? 0xc0 : word == "false" ? 0xc2 : 0xc3);
  return true;
}

// A string from its opening quote, unescaped into `s`: valid UTF-8 only,
// no raw control characters, at most max_str bytes after unescaping.
bool JsonToMsgpack::string(std::string& s) {
  s.clear();
  ++pos_;
  for (;;) {
    if (at_end()) return truncated("a string");
    const auto c = static_cast<unsigned char>(peek());
    if (c == '"') {
      ++pos_;
      return true;
    }
    if (c == '\\') {
      if (!escape(s)) return false;
    } else if (c < 0x20) {
      return malformed("raw control character in a string (RFC 8259 requires \\u escapes)");
    } else if (c < 0x80) {
      s += static_cast<char>(c);
      ++pos_;
    } else {
      const std::size_t len = utf8::sequence_length(in_, pos_);
      if (len == 0) return malformed("invalid UTF-8 in a string");
      s.append(in_.substr(pos_, len));
      pos_ += len;
    }
    if (s.size() > limits_.max_str) {
      return fail(Errc::kWireOversize, "string longer than " + std::to_string(limits_.max_str) + " bytes");
    }
  }
}

bool JsonToMsgpack::escape(std::string& s) {
  ++pos_;  // the backslash
  if (at_end()) return truncated("a string escape");
  const char c = peek();
  ++pos_;
  switch (c) {
    case '"':
    case '\\':
    case '/':
      s += c;
      return true;
    case 'b':
      s += '\b';
      return true;
    case 'f':
      s += '\f';
      return true;
    case 'n':
      s += '\n';
      return true;
    case 'r':
      s += '\r';
      return true;
    case 't':
      s += '\t';
      return true;
    case 'u':
      break;
    default:
      --pos_;
      return malformed("invalid escape \\" + std::string(1, c));
  }
  std::uint32_t cp = 0;
  if (!hex4(cp)) return false;
  if (cp >= 0xDC00 && cp <= 0xDFFF) return malformed("unpaired low surrogate \\u escape");
  if (cp >= 0xD800 && cp <= 0xDBFF) {
    // A high surrogate must be followed by an escaped low one (RFC 8259 §7).
    for (const char want : {'\\', 'u'}) {
      if (at_end()) return truncated("a surrogate pair");
      if (peek() != want) return malformed("unpaired high surrogate \\u escape");
      ++pos_;
    }
    std::uint32_t lo = 0;
    if (!hex4(lo)) return false;
    if (lo < 0xDC00 || lo > 0xDFFF) return malformed("high surrogate \\u escape not followed by a low one");
    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
  }
  append_utf8(s, cp);
  return true;
}

bool JsonToMsgpack::hex4(std::uint32_t& out) {
  out = 0;
  for (int k = 0; k < 4; ++k) {
    if (at_end()) return truncated("a \\u escape");
    const int h = hex_value(peek());
    if (h < 0) return malformed("\\u needs four hex digits");
    out = out * 16 + static_cast<std::uint32_t>(h);
    ++pos_;
  }
  return true;
}

// RFC 8259 §6: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?. Integers
// become msgpack integers (negative ones negative); a fraction or an
// exponent makes a float64, as does an integer outside the int64/uint64
// range (JSON has no such limit, and to_json prints doubles such as 2^64
// in integer form).
bool JsonToMsgpack::number() {
  const std::size_t start = pos_;
  const bool negative = peek() == '-';
  if (negative) ++pos_;
  const auto digits = [this](std::string_view what) {
    if (at_end()) return truncated("a number");
    if (!is_digit(peek())) return malformed("expected a digit " + std::string(what));
    while (!at_end() && is_digit(peek())) ++pos_;
    return true;
  };
  if (!at_end() && peek() == '0') {
    ++pos_;
  } else if (!digits("in a number")) {
    return false;
  }
  bool integer = true;
  if (!at_end() && peek() == '.') {
    ++pos_;
    integer = false;
    if (!digits("after '.'")) return false;
  }
  if (!at_end() && (peek() == 'e' || peek() == 'E')) {
    ++pos_;
    integer = false;
    if (!at_end() && (peek() == '+' || peek() == '-')) ++pos_;
    if (!digits("in an exponent")) return false;
  }
  const std::string_view token = in_.substr(start, pos_ - start);

  if (integer) {
    const std::string_view magnitude_digits = token.substr(negative ? 1 : 0);
    std::uint64_t magnitude = 0;
    const auto [end, ec] =
        std::from_chars(magnitude_digits.data(), magnitude_digits.data() + magnitude_digits.size(), magnitude);
    constexpr std::uint64_t kMinInt64Magnitude = std::uint64_t{1} << 63;
    if (ec == std::errc() && end == magnitude_digits.data() + magnitude_digits.size()) {
      if (!negative || magnitude == 0) {  // "-0" is 0
        pack_uint(magnitude);
        return true;
      }
      if (magnitude <= kMinInt64Magnitude) {
        pack_negative(magnitude == kMinInt64Magnitude ? std::numeric_limits<std::int64_t>::min()
                                                      : -static_cast<std::int64_t>(magnitude));
        return true;
      }
    }
  }
  double d = 0;
  const auto [end, ec] = std::from_chars(token.data(), token.data() + token.size(), d);
  if (ec == std::errc::result_out_of_range) {
    // Too small rounds to zero, as every JSON reader does; too large would be
    // an infinity, which no v1 value may be.
    if (decimal_magnitude(token) >= 0) {
      pos_ = start;
      return fail(Errc::kWireRange, "number " + std::string(token.substr(0, 32)) + " is too large for float64");
    }
    d = negative ? -0.0 : 0.0;
  } else if (ec != std::errc() || end != token.data() + token.size()) {
    pos_ = start;
    return malformed("unreadable number");
  }
  pack_float64(d);
  return true;
}

void JsonToMsgpack::pack_str(std::string_view s) {
  StringSink sink{out_};
  msgpack::packer<StringSink>(sink).pack_str(static_cast<std::uint32_t>(s.size()));
  out_.append(s);
}

void JsonToMsgpack::pack_uint(std::uint64_t v) {
  StringSink sink{out_};
  msgpack::packer<StringSink>(sink).pack_uint64(v);
}

void JsonToMsgpack::pack_negative(std::int64_t v) {
  StringSink sink{out_};
  msgpack::packer<StringSink>(sink).pack_int64(v);
}

// As encode.cc: always float64 (msgpack-c's pack_double writes integral
// values as integers).
void JsonToMsgpack::pack_float64(double v) {
  const auto bits = std::bit_cast<std::uint64_t>(v);
  raw(0xcb);
  for (int i = 0; i < 8; ++i) raw(static_cast<std::uint8_t>(bits >> (56 - 8 * i)));
}

Result<Message> from_json_body(std::string_view text, const DecodeLimits& limits) {
  if (text.size() > limits.max_bytes) {
    return make_error(Errc::kWireTooLarge,
                      std::to_string(text.size()) + " bytes, limit " + std::to_string(limits.max_bytes));
  }
  JsonToMsgpack conv(text, limits);
  if (!conv.run()) return std::move(conv).take_error();
  // The size limit applies to the text; its msgpack form may be larger
  // (a 4-byte "1e1," becomes a 9-byte float64), up to ~2.25 times.
  DecodeLimits inner = limits;
  inner.max_bytes = conv.msgpack().size();
  return decode(as_bytes(conv.msgpack()), inner);
}

}  // namespace

Result<Message> from_json(std::string_view text, const DecodeLimits& limits) {
  try {
    return from_json_body(text, limits);
  } catch (const std::bad_alloc&) {
    return make_error(Errc::kWireTooLarge, "out of memory while parsing JSON");
  }
}

}  // namespace vmtide::wire
