// SPDX-License-Identifier: Apache-2.0
// The v1 schema as code: for each struct, its keys in wire order. The encoder,
// the decoder and the JSON renderer all walk these lists, so they cannot
// disagree about a key's name, type or presence.
#pragma once

#include <concepts>
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include "vmtide/wire/messages.h"

namespace vmtide::wire::schema {

// fields(s, f) calls f(key, member) for each key of `s` in wire order, and
// f(key, member, max_items) for arrays and maps, whose caps are part of the
// contract. Members are std::optional for optional scalars and structs; an
// empty vector or map is absent on the wire. `S` may be const (encoding) or
// not (decoding).
template <class S, class T>
concept Is = std::same_as<std::remove_const_t<S>, T>;

template <Is<Envelope> S, class F>
void fields(S& s, F&& f) {
  f("host", s.host);
  f("epoch", s.epoch);
  f("seq", s.seq);
  f("ts_ns", s.ts_ns);
  f("mono_ns", s.mono_ns);
  f("interval_ns", s.interval_ns);
}

template <Is<Psi> S, class F>
void fields(S& s, F&& f) {
  f("cpu_some_us", s.cpu_some_us);
  f("cpu_full_us", s.cpu_full_us);
  f("io_some_us", s.io_some_us);
  f("io_full_us", s.io_full_us);
  f("mem_some_us", s.mem_some_us);
  f("mem_full_us", s.mem_full_us);
}

template <Is<Preemptor> S, class F>
void fields(S& s, F&& f) {
  f("tgid", s.tgid);
  f("comm", s.comm);
  f("ns", s.ns);
}

// DirtyPoint is not a map: it travels as the 2-element array [tau_ns, pages].

template <Is<Dirty> S, class F>
void fields(S& s, F&& f) {
  f("src", s.src);
  f("window_ns", s.window_ns);
  f("pages", s.pages);
  f("page_bytes", s.page_bytes);
  f("curve", s.curve, kMaxDirtyCurve);
}

template <Is<Io> S, class F>
void fields(S& s, F&& f) {
  f("rd_bytes", s.rd_bytes);
  f("wr_bytes", s.wr_bytes);
  f("rd_ops", s.rd_ops);
  f("wr_ops", s.wr_ops);
  f("dstate_ns", s.dstate_ns);
  f("lat_hist", s.lat_hist, kMaxHistSlots);
}

template <Is<VmSample> S, class F>
void fields(S& s, F&& f) {
  f("id", s.id);
  f("name", s.name);
  f("pid", s.pid);
  f("vcpus", s.vcpus);
  f("cpu_ns", s.cpu_ns);
  f("steal_ns", s.steal_ns);
  f("ram_bytes", s.ram_bytes);
  f("rss_bytes", s.rss_bytes);
  f("steal_hist", s.steal_hist, kMaxHistSlots);
  f("preempt", s.preempt, kMaxPreempt);
  f("dirty", s.dirty);
  f("io", s.io);
  f("psi", s.psi);
}

template <Is<HostSample> S, class F>
void fields(S& s, F&& f) {
  f("cpus", s.cpus);
  f("cpu_busy_ns", s.cpu_busy_ns);
  f("mem_total_bytes", s.mem_total_bytes);
  f("mem_avail_bytes", s.mem_avail_bytes);
  f("load1", s.load1);
  f("load5", s.load5);
  f("load15", s.load15);
  f("vms", s.vms);
  f("psi", s.psi);
  f("link_bps", s.link_bps);
  f("cpu_steal_ns", s.cpu_steal_ns);
}

template <Is<Heartbeat> S, class F>
void fields(S& s, F&& f) {
  f("vms", s.vms);
  f("uptime_ns", s.uptime_ns);
  f("dropped", s.dropped);
  f("errors", s.errors);
}

template <Is<Prediction> S, class F>
void fields(S& s, F&& f) {
  f("total_ms", s.total_ms);
  f("downtime_ms", s.downtime_ms);
  f("bytes", s.bytes);
  f("passes", s.passes);
  f("converges", s.converges);
  f("need_bw_bps", s.need_bw_bps);
  f("need_throttle_pct", s.need_throttle_pct);
}

template <Is<Candidate> S, class F>
void fields(S& s, F&& f) {
  f("vm", s.vm);
  f("dst", s.dst);
  f("score", s.score);
  f("gain", s.gain);
  f("cost_s", s.cost_s);
  f("rejected", s.rejected);
}

template <Is<Decision> S, class F>
void fields(S& s, F&& f) {
  f("id", s.id);
  f("mode", s.mode);
  f("strategy", s.strategy);
  f("vm", s.vm);
  f("src", s.src);
  f("dst", s.dst);
  f("reason", s.reason);
  f("outcome", s.outcome);
  f("vm_name", s.vm_name);
  f("score", s.score);
  f("entropy_before", s.entropy_before);
  f("entropy_after", s.entropy_after);
  f("predict", s.predict);
  f("candidates", s.candidates, kMaxCandidates);
  f("detail", s.detail);
}

template <Is<Event> S, class F>
void fields(S& s, F&& f) {
  f("type", s.type);
  f("detail", s.detail);
  f("vm", s.vm);
  f("fields", s.fields, kMaxEventFields);
}

// Every top-level key of a message for the writers: `v`, `kind`, the envelope,
// then the body. (The decoder reads `v` and `kind` first, by hand.)
template <class F>
void fields(const Message& m, F&& f) {
  f("v", kVersion);
  f("kind", m.kind());
  fields(m.env, f);
  std::visit([&f](const auto& body) { fields(body, f); }, m.body);
}

// ---- type traits the walkers dispatch on -----------------------------------

template <class T>
inline constexpr bool kIsOptional = false;
template <class T>
inline constexpr bool kIsOptional<std::optional<T>> = true;

template <class T>
inline constexpr bool kIsVector = false;
template <class T>
inline constexpr bool kIsVector<std::vector<T>> = true;

using StringMap = std::map<std::string, std::string>;

// Whether a member is written: optionals when set, arrays and maps when
// non-empty, everything else always.
template <class T>
bool present(const T& member) {
  if constexpr (kIsOptional<T>) {
    return member.has_value();
  } else if constexpr (kIsVector<T> || std::is_same_v<T, StringMap>) {
    return !member.empty();
  } else {
    return true;
  }
}

// The value behind a present member.
template <class T>
const auto& unwrap(const T& member) {
  if constexpr (kIsOptional<T>) {
    return *member;
  } else {
    return member;
  }
}

// Number of keys `s` puts on the wire.
template <class S>
std::size_t count_present(const S& s) {
  std::size_t n = 0;
  fields(s, [&n](std::string_view, const auto& member, std::size_t = 0) { n += present(member) ? 1 : 0; });
  return n;
}

constexpr std::string_view enum_name(Kind v) noexcept { return kind_name(v); }
constexpr std::string_view enum_name(DirtySource v) noexcept { return dirty_source_name(v); }
constexpr std::string_view enum_name(Mode v) noexcept { return mode_name(v); }
constexpr std::string_view enum_name(Outcome v) noexcept { return outcome_name(v); }

inline std::optional<DirtySource> parse_enum(std::string_view s, DirtySource*) noexcept {
  return parse_dirty_source(s);
}
inline std::optional<Mode> parse_enum(std::string_view s, Mode*) noexcept { return parse_mode(s); }
inline std::optional<Outcome> parse_enum(std::string_view s, Outcome*) noexcept { return parse_outcome(s); }

}  // namespace vmtide::wire::schema
