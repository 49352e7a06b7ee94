// SPDX-License-Identifier: Apache-2.0
// Wire protocol v1: the strict decoder. Input comes from the network, so
// msgpack parses under explicit limits and every exception it throws becomes
// a distinct Errc here; the schema walk then checks every known key's type.
#include <msgpack.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <exception>
#include <limits>
#include <new>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "schema.h"
#include "vmtide/wire/codec.h"

namespace vmtide::wire {
namespace {

using msgpack::object;
namespace mtype = msgpack::type;

// Where in the message a value sits, for error contexts such as
// "vm.dirty.curve[3]". Lives on the stack; rendered only on error.
struct Path {
  const Path* parent = nullptr;
  std::string_view key;  // unused for an index step
  std::size_t index = 0;
  bool is_index = false;

  Path child(std::string_view k) const { return Path{this, k, 0, false}; }
  Path at(std::size_t i) const { return Path{this, {}, i, true}; }

  std::string str() const {
    std::string s = parent ? parent->str() : std::string();
    if (is_index) {
      s += '[' + std::to_string(index) + ']';
    } else if (!key.empty()) {
      if (!s.empty()) s += '.';
      s += key;
    }
    return s;
  }
};

std::string_view type_name(const object& o) {
  switch (o.type) {
    case mtype::NIL:
      return "nil";
    case mtype::BOOLEAN:
      return "bool";
    case mtype::POSITIVE_INTEGER:
      return "unsigned integer";
    case mtype::NEGATIVE_INTEGER:
      return "negative integer";
    case mtype::FLOAT32:
      return "float32";
    case mtype::FLOAT64:
      return "float64";
    case mtype::STR:
      return "string";
    case mtype::BIN:
      return "bin";
    case mtype::ARRAY:
      return "array";
    case mtype::MAP:
      return "map";
    case mtype::EXT:
      return "ext";
  }
  return "unknown";
}

std::string_view as_view(const object& o) {
  return o.via.str.size == 0 ? std::string_view() : std::string_view(o.via.str.ptr, o.via.str.size);
}

// A validated map: string keys, no duplicates.
struct MapView {
  const msgpack::object_kv* kv = nullptr;
  std::uint32_t size = 0;

  // Maps hold at most DecodeLimits::max_map pairs, so a scan is cheap.
  // Length and first byte are compared inline before the bytes: most
  // keys differ there, and a call to memcmp per key was the decoder's
  // biggest cost after msgpack's own parse.
  const object* find(std::string_view key) const {
    for (std::uint32_t i = 0; i < size; ++i) {
      const auto& k = kv[i].key.via.str;
      if (k.size != key.size()) continue;
      // v1 keys are a few bytes: a plain loop beats a call to memcmp.
      std::uint32_t j = 0;
      while (j < k.size && k.ptr[j] == key[j]) ++j;
      if (j == k.size) return &kv[i].val;
    }
    return nullptr;
  }
};

// Walks a parsed msgpack tree into the message structs. Each step returns
// false after recording the first error, which ends the walk.
class Reader {
 public:
  [[nodiscard]] bool message(const object& root, Message& out);
  Error take_error() && { return std::move(err_); }

 private:
  bool fail(Errc code, const Path& p, std::string_view what) {
    std::string context = p.str();
    if (!context.empty()) context += ": ";
    context += what;
    err_ = make_error(code, std::move(context));
    return false;
  }
  bool type_error(const Path& p, std::string_view expected, const object& got) {
    std::string what = "expected ";
    what += expected;
    what += ", got ";
    what += type_name(got);
    return fail(Errc::kWireType, p, what);
  }

  bool open_map(const object& o, const Path& p, MapView& out);
  bool read_u64(const object& o, const Path& p, std::uint64_t& out);

  template <class T>
  bool read(const object& o, const Path& p, T& out, std::size_t max_items);
  template <class S>
  bool read_fields(const MapView& m, const Path& p, S& out);
  template <class T>
  bool read_field(const MapView& m, const Path& parent, std::string_view key, T& member, std::size_t max_items);

  bool check(const Envelope& e, const Path& p);
  bool check(const Prediction& pr, const Path& p);
  template <class S>
  bool check(const S&, const Path&) {
    return true;
  }

  Error err_;
};

bool Reader::open_map(const object& o, const Path& p, MapView& out) {
  if (o.type != mtype::MAP) return type_error(p, "map", o);
  out = MapView{o.via.map.ptr, o.via.map.size};
  for (std::uint32_t i = 0; i < out.size; ++i) {
    const object& k = out.kv[i].key;
    if (k.type != mtype::STR) return type_error(p, "string keys", k);
  }
  // A duplicate would let two readers of the same bytes see different
  // values. Small maps (every v1 map): a 64-slot signature of each key
  // (length, first and last byte) finds candidates without allocating, and
  // only keys whose signatures collide are compared.
  if (out.size <= 64) {
    std::uint8_t sig[64];
    std::uint64_t seen = 0;
    for (std::uint32_t i = 0; i < out.size; ++i) {
      const std::string_view k = as_view(out.kv[i].key);
      const unsigned h =
          k.empty() ? 0u
                    : (static_cast<unsigned>(k.size()) * 31u + static_cast<unsigned char>(k.front()) * 7u +
                       static_cast<unsigned char>(k.back())) & 63u;
      if ((seen >> h) & 1u) {
        for (std::uint32_t j = 0; j < i; ++j) {
          if (sig[j] == h && as_view(out.kv[j].key) == k) return fail(Errc::kWireMalformed, p.child(k), "duplicate key");
        }
      }
      seen |= std::uint64_t{1} << h;
      sig[i] = static_cast<std::uint8_t>(h);
    }
    return true;
  }
  std::vector<std::string_view> keys;
  keys.reserve(out.size);
  for (std::uint32_t i = 0; i < out.size; ++i) keys.push_back(as_view(out.kv[i].key));
  std::sort(keys.begin(), keys.end());
  const auto dup = std::adjacent_find(keys.begin(), keys.end());
  if (dup != keys.end()) return fail(Errc::kWireMalformed, p.child(*dup), "duplicate key");
  return true;
}

bool Reader::read_u64(const object& o, const Path& p, std::uint64_t& out) {
  if (o.type == mtype::POSITIVE_INTEGER) {
    out = o.via.u64;
    return true;
  }
  return type_error(p, "unsigned integer", o);
}

template <class T>
bool Reader::read(const object& o, const Path& p, T& out, std::size_t max_items) {
  if constexpr (std::is_same_v<T, bool>) {
    if (o.type != mtype::BOOLEAN) return type_error(p, "bool", o);
    out = o.via.boolean;
    return true;
  } else if constexpr (std::is_same_v<T, std::uint64_t>) {
    return read_u64(o, p, out);
  } else if constexpr (std::is_same_v<T, std::uint32_t>) {
    std::uint64_t v = 0;
    if (!read_u64(o, p, v)) return false;
    if (v > std::numeric_limits<std::uint32_t>::max()) return fail(Errc::kWireRange, p, "exceeds 2^32-1");
    out = static_cast<std::uint32_t>(v);
    return true;
  } else if constexpr (std::is_same_v<T, std::int64_t>) {
    if (o.type == mtype::NEGATIVE_INTEGER) {
      out = o.via.i64;
      return true;
    }
    if (o.type != mtype::POSITIVE_INTEGER) return type_error(p, "integer", o);
    if (o.via.u64 > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      return fail(Errc::kWireRange, p, "exceeds 2^63-1");
    }
    out = static_cast<std::int64_t>(o.via.u64);
    return true;
  } else if constexpr (std::is_same_v<T, double>) {
    // Publishers in other languages may send 1 for 1.0, or float32.
    switch (o.type) {
      case mtype::FLOAT32:
      case mtype::FLOAT64:
        out = o.via.f64;
        break;
      case mtype::POSITIVE_INTEGER:
        out = static_cast<double>(o.via.u64);
        break;
      case mtype::NEGATIVE_INTEGER:
        out = static_cast<double>(o.via.i64);
        break;
      default:
        return type_error(p, "number", o);
    }
    // JSON cannot carry NaN or infinities, and no v1 quantity is one.
    if (!std::isfinite(out)) return fail(Errc::kWireRange, p, "not a finite number");
    return true;
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (o.type != mtype::STR) return type_error(p, "string", o);
    out.assign(as_view(o));
    return true;
  } else if constexpr (std::is_enum_v<T>) {
    if (o.type != mtype::STR) return type_error(p, "string", o);
    const auto v = schema::parse_enum(as_view(o), static_cast<T*>(nullptr));
    if (!v) return fail(Errc::kWireRange, p, "unknown value \"" + std::string(as_view(o)) + '"');
    out = *v;
    return true;
  } else if constexpr (std::is_same_v<T, DirtyPoint>) {
    if (o.type != mtype::ARRAY || o.via.array.size != 2) return fail(Errc::kWireType, p, "expected [tau_ns, pages]");
    return read_u64(o.via.array.ptr[0], p.child("tau_ns"), out.tau_ns) &&
           read_u64(o.via.array.ptr[1], p.child("pages"), out.pages);
  } else if constexpr (schema::kIsVector<T>) {
    if (o.type != mtype::ARRAY) return type_error(p, "array", o);
    const std::size_t n = o.via.array.size;
    if (n > max_items) {
      return fail(Errc::kWireOversize, p, std::to_string(n) + " entries, at most " + std::to_string(max_items));
    }
    out.assign(n, typename T::value_type{});
    for (std::size_t i = 0; i < n; ++i) {
      if (!read(o.via.array.ptr[i], p.at(i), out[i], 0)) return false;
    }
    return true;
  } else if constexpr (std::is_same_v<T, schema::StringMap>) {
    MapView m;
    if (!open_map(o, p, m)) return false;
    if (m.size > max_items) {
      return fail(Errc::kWireOversize, p, std::to_string(m.size) + " entries, at most " + std::to_string(max_items));
    }
    for (std::uint32_t i = 0; i < m.size; ++i) {
      const std::string_view key = as_view(m.kv[i].key);
      const object& val = m.kv[i].val;
      if (val.type != mtype::STR) return type_error(p.child(key), "string", val);
      out.emplace(key, as_view(val));
    }
    return true;
  } else {
    MapView m;
    return open_map(o, p, m) && read_fields(m, p, out);
  }
}

// Reads the keys schema::fields lists for S; keys it does not list are
// ignored so that a v1 reader accepts additions from a newer v1 publisher.
template <class S>
bool Reader::read_fields(const MapView& m, const Path& p, S& out) {
  bool ok = true;
  schema::fields(out, [&](std::string_view key, auto& member, std::size_t max_items = 0) {
    ok = ok && read_field(m, p, key, member, max_items);
  });
  return ok && check(out, p);
}

template <class T>
bool Reader::read_field(const MapView& m, const Path& parent, std::string_view key, T& member, std::size_t max_items) {
  const Path p = parent.child(key);
  const object* o = m.find(key);
  if constexpr (schema::kIsOptional<T>) {
    if (o == nullptr) return true;
    typename T::value_type v{};
    if (!read(*o, p, v, max_items)) return false;
    member = std::move(v);
    return true;
  } else if constexpr (schema::kIsVector<T> || std::is_same_v<T, schema::StringMap>) {
    return o == nullptr || read(*o, p, member, max_items);
  } else {
    if (o == nullptr) return fail(Errc::kWireMissingKey, p, "required key missing");
    return read(*o, p, member, max_items);
  }
}

bool Reader::check(const Envelope& e, const Path& p) {
  if (e.host.empty()) return fail(Errc::kWireRange, p.child("host"), "empty");
  if (e.seq == 0) return fail(Errc::kWireRange, p.child("seq"), "sequence numbers start at 1");
  return true;
}

bool Reader::check(const Prediction& pr, const Path& p) {
  if (pr.need_throttle_pct && *pr.need_throttle_pct > 100) {
    return fail(Errc::kWireRange, p.child("need_throttle_pct"), "above 100");
  }
  return true;
}

// `v` first, so a newer schema is reported as such whatever else changed;
// then `kind`, which says which body to read.
bool Reader::message(const object& root, Message& out) {
  const Path top;
  MapView m;
  if (!open_map(root, top, m)) return false;

  std::uint64_t version = 0;
  if (!read_field(m, top, "v", version, 0)) return false;
  if (version == 0) return fail(Errc::kWireRange, top.child("v"), "0 is not a version");
  if (version > kVersion) {
    return fail(Errc::kWireVersion, top.child("v"), std::to_string(version) + " is newer than 1");
  }

  std::string kind;
  if (!read_field(m, top, "kind", kind, 0)) return false;
  const auto k = parse_kind(kind);
  if (!k) return fail(Errc::kWireKind, top.child("kind"), "unknown kind \"" + kind + '"');

  switch (*k) {
    case Kind::kVm:
      out.body.emplace<VmSample>();
      break;
    case Kind::kHost:
      out.body.emplace<HostSample>();
      break;
    case Kind::kHb:
      out.body.emplace<Heartbeat>();
      break;
    case Kind::kDecision:
      out.body.emplace<Decision>();
      break;
    case Kind::kEvent:
      out.body.emplace<Event>();
      break;
  }
  const Path root_path = top.child(kind_name(*k));
  return read_fields(m, root_path, out.env) &&
         std::visit([&](auto& body) { return read_fields(m, root_path, body); }, out.body);
}

// Strings are referenced in place rather than copied into msgpack's zone: the
// input outlives the parsed tree, and the walk copies what it keeps.
bool reference_strings(mtype::object_type, std::size_t, void*) { return true; }

Result<Message> decode_body(std::span<const std::uint8_t> body, const DecodeLimits& limits) {
  if (body.size() > limits.max_bytes) {
    return make_error(Errc::kWireTooLarge,
                      std::to_string(body.size()) + " bytes, limit " + std::to_string(limits.max_bytes));
  }
  const msgpack::unpack_limit unpack_limit(limits.max_array, limits.max_map, limits.max_str, limits.max_bin,
                                           limits.max_ext, limits.max_depth);
  // One zone per thread, emptied after each message: its first chunk is
  // reused, so decoding a typical message allocates nothing for the tree.
  thread_local msgpack::zone zone;
  struct Clear {
    ~Clear() { zone.clear(); }
  } clear_after;
  msgpack::object root;
  std::size_t offset = 0;
  try {
    root = msgpack::unpack(zone, reinterpret_cast<const char*>(body.data()), body.size(), offset, reference_strings,
                           nullptr, unpack_limit);
  } catch (const msgpack::insufficient_bytes&) {
    return make_error(Errc::kWireTruncated, "input ends inside a msgpack object");
  } catch (const msgpack::depth_size_overflow&) {  // a size_overflow; catch first
    return make_error(Errc::kWireTooDeep, "nesting deeper than " + std::to_string(limits.max_depth));
  } catch (const msgpack::size_overflow& e) {
    return make_error(Errc::kWireOversize, e.what());
  } catch (const msgpack::unpack_error& e) {
    return make_error(Errc::kWireMalformed, e.what());
  }
  if (offset != body.size()) {
    return make_error(Errc::kWireMalformed, std::to_string(body.size() - offset) + " trailing bytes");
  }
  Reader reader;
  Message m;
  if (!reader.message(root, m)) return std::move(reader).take_error();
  return m;
}

}  // namespace

Result<Message> decode(std::span<const std::uint8_t> body, const DecodeLimits& limits) {
  // Allocation is bounded by the limits; this only keeps the no-throw promise
  // should the process be out of memory anyway.
  try {
    return decode_body(body, limits);
  } catch (const std::bad_alloc&) {
    return make_error(Errc::kWireTooLarge, "out of memory while decoding");
  }
}

Result<Message> decode(std::string_view topic_frame, std::span<const std::uint8_t> body, const DecodeLimits& limits) {
  auto t = parse_topic(topic_frame);
  if (!t) return std::move(t).error();
  auto m = decode(body, limits);
  if (!m) return m;
  if (t->kind != m->kind() || t->host != m->env.host) {
    return make_error(Errc::kWireKind, "topic \"" + std::string(topic_frame) + "\" does not match body kind \"" +
                                           std::string(kind_name(m->kind())) + "\", host \"" + m->env.host + '"');
  }
  return m;
}

}  // namespace vmtide::wire
