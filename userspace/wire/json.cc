// SPDX-License-Identifier: Apache-2.0
// Wire protocol v1: one-line JSON rendering for `vmtide tap` and logs, with
// the wire's key names so the output reads like the contract.
#include <charconv>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>

#include "schema.h"
#include "utf8.h"
#include "vmtide/wire/codec.h"

namespace vmtide::wire {
namespace {

class JsonWriter {
 public:
  std::string take() && { return std::move(out_); }

  template <class T>
  void value(const T& v) {
    if constexpr (std::is_same_v<T, bool>) {
      out_ += v ? "true" : "false";
    } else if constexpr (std::is_enum_v<T>) {
      str(schema::enum_name(v));
    } else if constexpr (std::is_integral_v<T>) {
      number(v);
    } else if constexpr (std::is_same_v<T, double>) {
      // Shortest form that reads back as the same double.
      if (std::isfinite(v)) {
        number(v);
      } else {
        out_ += "null";
      }
    } else if constexpr (std::is_same_v<T, std::string>) {
      str(v);
    } else if constexpr (std::is_same_v<T, DirtyPoint>) {
      out_ += '[';
      value(v.tau_ns);
      out_ += ',';
      value(v.pages);
      out_ += ']';
    } else if constexpr (schema::kIsVector<T>) {
      out_ += '[';
      for (std::size_t i = 0; i < v.size(); ++i) {
        if (i > 0) out_ += ',';
        value(v[i]);
      }
      out_ += ']';
    } else if constexpr (std::is_same_v<T, schema::StringMap>) {
      out_ += '{';
      bool first = true;
      for (const auto& [key, val] : v) {
        if (!first) out_ += ',';
        first = false;
        str(key);
        out_ += ':';
        str(val);
      }
      out_ += '}';
    } else {
      out_ += '{';
      bool first = true;
      schema::fields(v, [&](std::string_view key, const auto& member, std::size_t = 0) {
        if (!schema::present(member)) return;
        if (!first) out_ += ',';
        first = false;
        str(key);
        out_ += ':';
        value(schema::unwrap(member));
      });
      out_ += '}';
    }
  }

 private:
  template <class N>
  void number(N v) {
    char buf[32];
    const auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
    if (ec == std::errc()) out_.append(buf, end);
  }

  // RFC 8259 string: escapes quote, backslash and control characters; keeps
  // valid UTF-8; replaces each byte of an invalid sequence (kernel comm
  // names are cut at 15 bytes, possibly mid-character) with U+FFFD.
  void str(std::string_view s) {
    static constexpr char kHex[] = "0123456789abcdef";
    out_ += '"';
    for (std::size_t i = 0; i < s.size();) {
      const auto c = static_cast<unsigned char>(s[i]);
      if (c >= 0x80) {
        const std::size_t len = utf8::sequence_length(s, i);
        if (len == 0) {
          out_ += "\\ufffd";
          ++i;
        } else {
          out_.append(s.substr(i, len));
          i += len;
        }
        continue;
      }
      switch (c) {
        case '"':
          out_ += "\\\"";
          break;
        case '\\':
          out_ += "\\\\";
          break;
        case '\b':
          out_ += "\\b";
          break;
        case '\f':
          out_ += "\\f";
          break;
        case '\n':
          out_ += "\\n";
          break;
        case '\r':
          out_ += "\\r";
          break;
        case '\t':
          out_ += "\\t";
          break;
        default:
          if (c < 0x20 || c == 0x7f) {
            out_ += "\\u00";
            out_ += kHex[c >> 4];
            out_ += kHex[c & 0xf];
          } else {
            out_ += static_cast<char>(c);
          }
      }
      ++i;
    }
    out_ += '"';
  }

  std::string out_;
};

}  // namespace

std::string to_json(const Message& m) {
  JsonWriter w;
  w.value(m);
  return std::move(w).take();
}

std::string json_string(std::string_view s) {
  JsonWriter w;
  w.value(std::string(s));
  return std::move(w).take();
}

}  // namespace vmtide::wire
