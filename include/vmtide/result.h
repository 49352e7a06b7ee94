// SPDX-License-Identifier: Apache-2.0
// Result<T>: a value or an Error (code + context), for failures that are part
// of normal operation (STYLE.md rule 8). C++20 has no std::expected and
// Debian 12 packages no tl-expected; Katran's SystemMaybe<T> and Pixie's
// StatusOr<T> are the models.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace vmtide {

// Error codes. Each one is distinct so callers (and counters) can tell the
// failures apart; keep errc_name() in sync when adding one.
enum class Errc : std::uint16_t {
  kOk = 0,
  kInvalidArgument,
  kNotFound,
  kPermission,    // EPERM/EACCES, missing capability
  kUnsupported,   // kernel or platform lacks a feature (e.g. no BTF)
  kIo,            // read/write/syscall failure
  kBpfOpen,
  kBpfLoad,
  kBpfAttach,
  kBpfMap,
  // Wire protocol decoding (docs/wire-protocol.md, "Errors").
  kWireTooLarge,     // message exceeds the per-message size cap
  kWireTruncated,    // input ends inside a msgpack object
  kWireMalformed,    // not msgpack, or trailing bytes after the object
  kWireTooDeep,      // nesting deeper than the limit
  kWireOversize,     // an array, map, string or binary longer than its limit
  kWireType,         // a known key holds a value of the wrong type
  kWireMissingKey,   // a required key is absent
  kWireVersion,      // `v` is newer than this decoder understands
  kWireKind,         // unknown `kind`, or topic and body disagree
  kWireRange,        // a value outside its documented range
  kTransport,        // ZeroMQ failure
  kBusy,             // the peer serves someone else (a QMP monitor takes one client at a time)
};

constexpr std::string_view errc_name(Errc c) noexcept {
  switch (c) {
    case Errc::kOk: return "ok";
    case Errc::kInvalidArgument: return "invalid_argument";
    case Errc::kNotFound: return "not_found";
    case Errc::kPermission: return "permission";
    case Errc::kUnsupported: return "unsupported";
    case Errc::kIo: return "io";
    case Errc::kBpfOpen: return "bpf_open";
    case Errc::kBpfLoad: return "bpf_load";
    case Errc::kBpfAttach: return "bpf_attach";
    case Errc::kBpfMap: return "bpf_map";
    case Errc::kWireTooLarge: return "wire_too_large";
    case Errc::kWireTruncated: return "wire_truncated";
    case Errc::kWireMalformed: return "wire_malformed";
    case Errc::kWireTooDeep: return "wire_too_deep";
    case Errc::kWireOversize: return "wire_oversize";
    case Errc::kWireType: return "wire_type";
    case Errc::kWireMissingKey: return "wire_missing_key";
    case Errc::kWireVersion: return "wire_version";
    case Errc::kWireKind: return "wire_kind";
    case Errc::kWireRange: return "wire_range";
    case Errc::kTransport: return "transport";
    case Errc::kBusy: return "busy";
  }
  return "unknown";
}

struct Error {
  Errc code = Errc::kOk;
  std::string context;  // what was being done, with the values involved

  // "bpf_load: loading ctxsw: Operation not permitted"
  std::string message() const {
    std::string m(errc_name(code));
    if (!context.empty()) {
      m += ": ";
      m += context;
    }
    return m;
  }
};

inline Error make_error(Errc code, std::string context) { return Error{code, std::move(context)}; }

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const& { return std::get<1>(v_); }
  Error&& error() && { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : err_(std::move(error)) {}  // NOLINT

  bool ok() const noexcept { return err_.code == Errc::kOk; }
  explicit operator bool() const noexcept { return ok(); }
  const Error& error() const& { return err_; }

 private:
  Error err_;
};

using Status = Result<void>;

}  // namespace vmtide
