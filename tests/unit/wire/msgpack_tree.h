// SPDX-License-Identifier: Apache-2.0
// A small msgpack value tree for building hostile inputs in tests: load a
// valid encoded message, change one key (or its encoding), pack it again
// with msgpack::packer. Maps keep order and allow duplicate keys on purpose.
#pragma once

#include <msgpack.hpp>

#include <bit>
#include <concepts>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace vmtide::wire::testing {

// Bytes written verbatim, for encodings msgpack-c's packer would not choose.
struct Raw {
  std::string bytes;
};

struct Value {
  using Array = std::vector<Value>;
  using Map = std::vector<std::pair<std::string, Value>>;

  std::variant<std::nullptr_t, bool, std::uint64_t, std::int64_t, double, float, std::string, Array, Map, Raw> v;

  Value(std::nullptr_t) : v(nullptr) {}  // NOLINT: implicit so trees read like literals
  template <std::integral T>
  Value(T x) {  // NOLINT
    if constexpr (std::is_same_v<T, bool>) {
      v = x;
    } else if constexpr (std::is_signed_v<T>) {
      if (x < 0) {
        v = static_cast<std::int64_t>(x);
      } else {
        v = static_cast<std::uint64_t>(x);
      }
    } else {
      v = static_cast<std::uint64_t>(x);
    }
  }
  Value(double x) : v(x) {}                    // NOLINT
  Value(float x) : v(x) {}                     // NOLINT
  Value(const char* s) : v(std::string(s)) {}  // NOLINT
  Value(std::string s) : v(std::move(s)) {}    // NOLINT
  Value(Array a) : v(std::move(a)) {}          // NOLINT
  Value(Map m) : v(std::move(m)) {}            // NOLINT
  Value(Raw r) : v(std::move(r)) {}            // NOLINT

  Map& map() { return std::get<Map>(v); }
  const Map& map() const { return std::get<Map>(v); }
  Array& array() { return std::get<Array>(v); }

  // The value of `key` in this map; throws (failing the test) if absent.
  Value& operator[](std::string_view key) {
    for (auto& [k, val] : map()) {
      if (k == key) return val;
    }
    throw std::out_of_range("no key " + std::string(key));
  }
  Value& operator[](std::size_t i) { return array().at(i); }

  // Replaces `key`'s value, or appends the key.
  void set(std::string_view key, Value val) {
    for (auto& [k, old] : map()) {
      if (k == key) {
        old = std::move(val);
        return;
      }
    }
    map().emplace_back(std::string(key), std::move(val));
  }
  void erase(std::string_view key) {
    auto& m = map();
    std::erase_if(m, [&](const auto& kv) { return kv.first == key; });
  }
};

using Array = Value::Array;
using Map = Value::Map;

// msgpack-c's pack_double/pack_float write integral values as integers; a
// test that says 1.0 means a float on the wire.
inline void put_float(msgpack::sbuffer& buf, char tag, std::uint64_t bits, int bytes) {
  buf.write(&tag, 1);
  for (int i = bytes - 1; i >= 0; --i) {
    const char b = static_cast<char>(bits >> (8 * i));
    buf.write(&b, 1);
  }
}

inline void pack(msgpack::packer<msgpack::sbuffer>& pk, msgpack::sbuffer& buf, const Value& val) {
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::nullptr_t>) {
          pk.pack_nil();
        } else if constexpr (std::is_same_v<T, bool>) {
          x ? pk.pack_true() : pk.pack_false();
        } else if constexpr (std::is_same_v<T, std::uint64_t>) {
          pk.pack_uint64(x);
        } else if constexpr (std::is_same_v<T, std::int64_t>) {
          pk.pack_int64(x);
        } else if constexpr (std::is_same_v<T, double>) {
          put_float(buf, '\xcb', std::bit_cast<std::uint64_t>(x), 8);
        } else if constexpr (std::is_same_v<T, float>) {
          put_float(buf, '\xca', std::bit_cast<std::uint32_t>(x), 4);
        } else if constexpr (std::is_same_v<T, std::string>) {
          pk.pack_str(static_cast<std::uint32_t>(x.size()));
          pk.pack_str_body(x.data(), static_cast<std::uint32_t>(x.size()));
        } else if constexpr (std::is_same_v<T, Array>) {
          pk.pack_array(static_cast<std::uint32_t>(x.size()));
          for (const auto& e : x) pack(pk, buf, e);
        } else if constexpr (std::is_same_v<T, Map>) {
          pk.pack_map(static_cast<std::uint32_t>(x.size()));
          for (const auto& [k, e] : x) {
            pk.pack_str(static_cast<std::uint32_t>(k.size()));
            pk.pack_str_body(k.data(), static_cast<std::uint32_t>(k.size()));
            pack(pk, buf, e);
          }
        } else {
          buf.write(x.bytes.data(), x.bytes.size());
        }
      },
      val.v);
}

inline std::string pack(const Value& val) {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pack(pk, buf, val);
  return std::string(buf.data(), buf.size());
}

inline Value from_object(const msgpack::object& o) {
  switch (o.type) {
    case msgpack::type::NIL:
      return nullptr;
    case msgpack::type::BOOLEAN:
      return o.via.boolean;
    case msgpack::type::POSITIVE_INTEGER:
      return o.via.u64;
    case msgpack::type::NEGATIVE_INTEGER:
      return o.via.i64;
    case msgpack::type::FLOAT32:
      return static_cast<float>(o.via.f64);
    case msgpack::type::FLOAT64:
      return o.via.f64;
    case msgpack::type::STR:
      return std::string(o.via.str.ptr, o.via.str.size);
    case msgpack::type::ARRAY: {
      Array a;
      for (std::uint32_t i = 0; i < o.via.array.size; ++i) a.push_back(from_object(o.via.array.ptr[i]));
      return a;
    }
    case msgpack::type::MAP: {
      Map m;
      for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
        const auto& key = o.via.map.ptr[i].key;
        m.emplace_back(std::string(key.via.str.ptr, key.via.str.size), from_object(o.via.map.ptr[i].val));
      }
      return m;
    }
    default:
      throw std::invalid_argument("unsupported msgpack type in test tree");
  }
}

// The tree of an encoded message (trusted input: our own encoder's output).
inline Value unpack(std::string_view bytes) {
  const auto handle = msgpack::unpack(bytes.data(), bytes.size());
  return from_object(handle.get());
}

}  // namespace vmtide::wire::testing
