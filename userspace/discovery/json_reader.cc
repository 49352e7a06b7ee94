// SPDX-License-Identifier: Apache-2.0
// The JSON reader (json_reader.h): recursive descent over a string_view,
// every read bounds-checked, every limit counted.
#include "json_reader.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <system_error>

namespace vmtide::discovery::json {

Value Value::boolean(bool b) {
  Value v;
  v.type_ = Type::kBool;
  v.bool_ = b;
  return v;
}
Value Value::number(double d, std::optional<std::int64_t> exact) {
  Value v;
  v.type_ = Type::kNumber;
  v.number_ = d;
  v.int_ = exact;
  return v;
}
Value Value::string(std::string s) {
  Value v;
  v.type_ = Type::kString;
  v.string_ = std::move(s);
  return v;
}
Value Value::array(std::vector<Value> items) {
  Value v;
  v.type_ = Type::kArray;
  v.items_ = std::move(items);
  return v;
}
Value Value::object(std::vector<Member> members) {
  Value v;
  v.type_ = Type::kObject;
  v.members_ = std::move(members);
  return v;
}

std::optional<bool> Value::as_bool() const { return type_ == Type::kBool ? std::optional(bool_) : std::nullopt; }
std::optional<double> Value::as_double() const {
  return type_ == Type::kNumber ? std::optional(number_) : std::nullopt;
}
std::optional<std::int64_t> Value::as_int() const { return type_ == Type::kNumber ? int_ : std::nullopt; }
const std::string* Value::as_string() const { return type_ == Type::kString ? &string_ : nullptr; }
const std::vector<Value>* Value::as_array() const { return type_ == Type::kArray ? &items_ : nullptr; }
const std::vector<Value::Member>* Value::as_object() const { return type_ == Type::kObject ? &members_ : nullptr; }

const Value* Value::find(std::string_view key) const {
  if (type_ != Type::kObject) return nullptr;
  for (const auto& [k, v] : members_) {
    if (k == key) return &v;
  }
  return nullptr;
}

namespace {

class Reader {
 public:
  Reader(std::string_view text, const Limits& limits) : s_(text), limits_(limits) {}

  Result<Value> value(std::size_t depth) {
    skip_ws();
    if (at_end()) return truncated("a value");
    if (++values_ > limits_.max_values) {
      return make_error(Errc::kWireOversize, "json: more than " + std::to_string(limits_.max_values) + " values");
    }
    const char c = s_[pos_];
    if (c == '{' || c == '[') {
      if (depth >= limits_.max_depth) {
        return make_error(Errc::kWireTooDeep, "json: nested deeper than " + std::to_string(limits_.max_depth));
      }
      return c == '{' ? object(depth + 1) : array(depth + 1);
    }
    if (c == '"') {
      auto str = string();
      if (!str) return str.error();
      return Value::string(std::move(*str));
    }
    if (c == 't') return literal("true", Value::boolean(true));
    if (c == 'f') return literal("false", Value::boolean(false));
    if (c == 'n') return literal("null", Value());
    if (c == '-' || (c >= '0' && c <= '9')) return number();
    return malformed(std::string("unexpected '") + printable(c) + "'");
  }

  void skip_ws() {
    while (!at_end() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
  }
  bool at_end() const { return pos_ >= s_.size(); }
  std::size_t pos() const { return pos_; }

 private:
  static std::string printable(char c) {
    if (c >= 0x20 && c < 0x7f) return std::string(1, c);
    char buf[8];
    std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(c));
    return buf;
  }
  Error truncated(const char* what) const {
    return make_error(Errc::kWireTruncated, std::string("json: input ends inside ") + what);
  }
  Error malformed(const std::string& what) const {
    return make_error(Errc::kWireMalformed, "json: " + what + " at byte " + std::to_string(pos_));
  }

  Result<Value> literal(std::string_view word, Value v) {
    for (std::size_t i = 0; i < word.size(); ++i, ++pos_) {
      if (at_end()) return truncated("a literal");
      if (s_[pos_] != word[i]) return malformed("bad literal");
    }
    return v;
  }

  Result<Value> number() {
    const std::size_t start = pos_;
    auto digits = [&] {
      const std::size_t from = pos_;
      while (!at_end() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
      return pos_ - from;
    };
    if (s_[pos_] == '-') ++pos_;
    if (at_end()) return truncated("a number");
    if (s_[pos_] == '0') {
      ++pos_;
    } else if (digits() == 0) {
      return malformed("a number needs digits");
    }
    bool integral = true;
    if (!at_end() && s_[pos_] == '.') {
      integral = false;
      ++pos_;
      if (digits() == 0) return at_end() ? truncated("a number") : malformed("a fraction needs digits");
    }
    if (!at_end() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      integral = false;
      ++pos_;
      if (!at_end() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
      if (digits() == 0) return at_end() ? truncated("a number") : malformed("an exponent needs digits");
    }
    // A number that runs to the end of the input may go on in bytes not
    // read yet ("12" of "123").
    if (at_end()) return truncated("a number");
    const char* b = s_.data() + start;
    const char* e = s_.data() + pos_;
    double d = 0;
    auto [pd, ecd] = std::from_chars(b, e, d);
    if (ecd == std::errc::result_out_of_range || (ecd == std::errc() && !std::isfinite(d))) {
      return malformed("number out of range");
    }
    if (ecd != std::errc() || pd != e) return malformed("bad number");
    std::optional<std::int64_t> exact;
    if (integral) {
      std::int64_t i = 0;
      auto [pi, eci] = std::from_chars(b, e, i);
      if (eci == std::errc() && pi == e) exact = i;
    }
    return Value::number(d, exact);
  }

  // Four hex digits after "\u".
  Result<std::uint32_t> hex4() {
    if (pos_ + 4 > s_.size()) return truncated("a \\u escape");
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = s_[pos_++];
      v <<= 4;
      if (c >= '0' && c <= '9') {
        v |= static_cast<std::uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        v |= static_cast<std::uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        v |= static_cast<std::uint32_t>(c - 'A' + 10);
      } else {
        return malformed("bad \\u escape");
      }
    }
    return v;
  }

  static void append_utf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  Result<std::string> string() {
    ++pos_;  // the opening quote
    std::string out;
    while (true) {
      if (at_end()) return truncated("a string");
      if (out.size() > limits_.max_string) {
        return make_error(Errc::kWireOversize,
                          "json: a string longer than " + std::to_string(limits_.max_string) + " bytes");
      }
      const char c = s_[pos_];
      if (c == '"') {
        ++pos_;
        return out;
      }
      if (static_cast<unsigned char>(c) < 0x20) return malformed("control character in a string");
      if (c != '\\') {
        out += c;
        ++pos_;
        continue;
      }
      ++pos_;
      if (at_end()) return truncated("a string escape");
      const char e = s_[pos_++];
      // The two-character escapes, and their meaning.
      static constexpr std::string_view kEscapes = "\"\\/bfnrt";
      static constexpr std::string_view kMeanings = "\"\\/\b\f\n\r\t";
      if (const auto k = kEscapes.find(e); k != std::string_view::npos) {
        out += kMeanings[k];
      } else if (e == 'u') {
        auto hi = hex4();
        if (!hi) return hi.error();
        std::uint32_t cp = *hi;
        if (cp >= 0xDC00 && cp <= 0xDFFF) return malformed("lone low surrogate");
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          // A high surrogate must be followed by "\u" and a low one.
          if (pos_ + 2 > s_.size()) return truncated("a surrogate pair");
          if (s_[pos_] != '\\' || s_[pos_ + 1] != 'u') return malformed("lone high surrogate");
          pos_ += 2;
          auto lo = hex4();
          if (!lo) return lo.error();
          if (*lo < 0xDC00 || *lo > 0xDFFF) return malformed("bad surrogate pair");
          cp = 0x10000 + ((cp - 0xD800) << 10) + (*lo - 0xDC00);
        }
        append_utf8(out, cp);
      } else {
        --pos_;
        return malformed("bad escape");
      }
    }
  }

  Result<Value> array(std::size_t depth) {
    ++pos_;  // '['
    std::vector<Value> items;
    skip_ws();
    if (at_end()) return truncated("an array");
    if (s_[pos_] == ']') {
      ++pos_;
      return Value::array(std::move(items));
    }
    while (true) {
      auto v = value(depth);
      if (!v) return v.error();
      items.push_back(std::move(*v));
      skip_ws();
      if (at_end()) return truncated("an array");
      const char c = s_[pos_++];
      if (c == ']') return Value::array(std::move(items));
      if (c != ',') {
        --pos_;
        return malformed("expected ',' or ']'");
      }
    }
  }

  Result<Value> object(std::size_t depth) {
    ++pos_;  // '{'
    std::vector<Value::Member> members;
    skip_ws();
    if (at_end()) return truncated("an object");
    if (s_[pos_] == '}') {
      ++pos_;
      return Value::object(std::move(members));
    }
    while (true) {
      skip_ws();
      if (at_end()) return truncated("an object");
      if (s_[pos_] != '"') return malformed("expected a key");
      if (++values_ > limits_.max_values) {
        return make_error(Errc::kWireOversize, "json: more than " + std::to_string(limits_.max_values) + " values");
      }
      auto key = string();
      if (!key) return key.error();
      skip_ws();
      if (at_end()) return truncated("an object");
      if (s_[pos_] != ':') return malformed("expected ':'");
      ++pos_;
      auto v = value(depth);
      if (!v) return v.error();
      members.emplace_back(std::move(*key), std::move(*v));
      skip_ws();
      if (at_end()) return truncated("an object");
      const char c = s_[pos_++];
      if (c == '}') break;
      if (c != ',') {
        --pos_;
        return malformed("expected ',' or '}'");
      }
    }
    // Duplicate keys make "which one counts" ambiguous: refuse them.
    std::vector<std::string_view> keys;
    keys.reserve(members.size());
    for (const auto& m : members) keys.push_back(m.first);
    std::sort(keys.begin(), keys.end());
    if (std::adjacent_find(keys.begin(), keys.end()) != keys.end()) return malformed("duplicate key");
    return Value::object(std::move(members));
  }

  std::string_view s_;
  const Limits& limits_;
  std::size_t pos_ = 0;
  std::size_t values_ = 0;
};

}  // namespace

Result<Parsed> parse_prefix(std::string_view text, const Limits& limits) {
  Reader r(text, limits);
  auto v = r.value(0);
  if (!v) return std::move(v).error();
  return Parsed{std::move(*v), r.pos()};
}

Result<Value> parse(std::string_view text, const Limits& limits) {
  // A whole document ends where the text does: a trailing newline lets a
  // final number finish.
  std::string padded(text);
  padded += '\n';
  Reader r(padded, limits);
  auto v = r.value(0);
  if (!v) return std::move(v).error();
  r.skip_ws();
  if (!r.at_end()) {
    return make_error(Errc::kWireMalformed, "json: trailing bytes at byte " + std::to_string(r.pos()));
  }
  return v;
}

}  // namespace vmtide::discovery::json
