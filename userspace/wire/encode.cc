// SPDX-License-Identifier: Apache-2.0
// Wire protocol v1: names, topics and the msgpack encoder.
#include <msgpack.hpp>

#include <array>
#include <bit>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include "schema.h"
#include "vmtide/wire/codec.h"

namespace vmtide::wire {
namespace {

template <class E, std::size_t N>
std::optional<E> find_name(const std::array<std::string_view, N>& names, std::string_view s) noexcept {
  for (std::size_t i = 0; i < N; ++i) {
    if (names[i] == s) return static_cast<E>(i);
  }
  return std::nullopt;
}

// Writes integers with their smallest msgpack encoding and floats always as
// float64, which the contract promises.
class Packer {
 public:
  explicit Packer(msgpack::sbuffer& buf) : buf_(buf), pk_(buf) {}

  template <class T>
  void value(const T& v) {
    if constexpr (std::is_same_v<T, bool>) {
      v ? pk_.pack_true() : pk_.pack_false();
    } else if constexpr (std::is_enum_v<T>) {
      str(schema::enum_name(v));
    } else if constexpr (std::is_unsigned_v<T>) {
      pk_.pack_uint64(v);
    } else if constexpr (std::is_same_v<T, std::int64_t>) {
      pk_.pack_int64(v);
    } else if constexpr (std::is_same_v<T, double>) {
      float64(v);
    } else if constexpr (std::is_same_v<T, std::string>) {
      str(v);
    } else if constexpr (std::is_same_v<T, DirtyPoint>) {
      pk_.pack_array(2);
      value(v.tau_ns);
      value(v.pages);
    } else if constexpr (schema::kIsVector<T>) {
      pk_.pack_array(static_cast<std::uint32_t>(v.size()));
      for (const auto& e : v) value(e);
    } else if constexpr (std::is_same_v<T, schema::StringMap>) {
      pk_.pack_map(static_cast<std::uint32_t>(v.size()));
      for (const auto& [key, val] : v) {
        str(key);
        str(val);
      }
    } else {
      pk_.pack_map(static_cast<std::uint32_t>(schema::count_present(v)));
      schema::fields(v, [this](std::string_view key, const auto& member, std::size_t = 0) {
        if (!schema::present(member)) return;
        str(key);
        value(schema::unwrap(member));
      });
    }
  }

 private:
  // Not pack_double: msgpack-c 4.x writes integral doubles as integers (so a
  // load of 2.0 would reach a Python subscriber as int) and converts values
  // up to 2^64 to uint64_t, which is undefined behaviour at 2^64.
  void float64(double v) {
    const auto bits = std::bit_cast<std::uint64_t>(v);
    char out[9];
    out[0] = static_cast<char>(0xcb);
    for (int i = 0; i < 8; ++i) out[1 + i] = static_cast<char>(bits >> (56 - 8 * i));
    buf_.write(out, sizeof(out));
  }

  void str(std::string_view s) {
    pk_.pack_str(static_cast<std::uint32_t>(s.size()));
    pk_.pack_str_body(s.data(), static_cast<std::uint32_t>(s.size()));
  }

  msgpack::sbuffer& buf_;
  msgpack::packer<msgpack::sbuffer> pk_;
};

}  // namespace

std::optional<Kind> parse_kind(std::string_view s) noexcept { return find_name<Kind>(kKindNames, s); }
std::optional<DirtySource> parse_dirty_source(std::string_view s) noexcept {
  return find_name<DirtySource>(kDirtySourceNames, s);
}
std::optional<Mode> parse_mode(std::string_view s) noexcept { return find_name<Mode>(kModeNames, s); }
std::optional<Outcome> parse_outcome(std::string_view s) noexcept { return find_name<Outcome>(kOutcomeNames, s); }

std::string topic(const Message& m) {
  std::string t(kTopicPrefix);
  t += kind_name(m.kind());
  t += '.';
  t += m.env.host;
  return t;
}

Result<Topic> parse_topic(std::string_view t) {
  if (!t.starts_with(kTopicPrefix)) {
    return make_error(Errc::kWireKind, "topic does not start with \"vmtide.v1.\"");
  }
  const std::string_view rest = t.substr(kTopicPrefix.size());
  const std::size_t dot = rest.find('.');
  if (dot == std::string_view::npos) return make_error(Errc::kWireKind, "topic has no host");
  const auto kind = parse_kind(rest.substr(0, dot));
  if (!kind) return make_error(Errc::kWireKind, "topic names an unknown kind");
  const std::string_view host = rest.substr(dot + 1);
  if (host.empty()) return make_error(Errc::kWireKind, "topic has an empty host");
  return Topic{*kind, std::string(host)};
}

std::string encode(const Message& m) {
  msgpack::sbuffer buf(512);
  Packer(buf).value(m);
  return std::string(buf.data(), buf.size());
}

}  // namespace vmtide::wire
