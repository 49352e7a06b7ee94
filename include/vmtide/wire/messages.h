// SPDX-License-Identifier: Apache-2.0
// Wire protocol v1 message types: what agents and the controller publish
// (docs/wire-protocol.md is the contract; key names there match the members).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

namespace vmtide::wire {

inline constexpr std::uint64_t kVersion = 1;
inline constexpr std::string_view kTopicPrefix = "vmtide.v1.";

// Per-field caps, part of the contract: a decoder rejects longer arrays and
// maps with Errc::kWireOversize, so a publisher must truncate to these.
inline constexpr std::size_t kMaxHistSlots = 64;    // steal_hist, io.lat_hist (log2 µs)
inline constexpr std::size_t kMaxPreempt = 16;      // vm.preempt
inline constexpr std::size_t kMaxDirtyCurve = 256;  // vm.dirty.curve
inline constexpr std::size_t kMaxCandidates = 256;  // decision.candidates
inline constexpr std::size_t kMaxEventFields = 64;  // event.fields

// Order matches Message::Body, so kind is the variant index.
enum class Kind : std::uint8_t { kVm, kHost, kHb, kDecision, kEvent };
enum class DirtySource : std::uint8_t { kSoftDirty, kQemu, kLibvirt, kNone };
enum class Mode : std::uint8_t { kObserve, kRecommend, kEnforce };
enum class Outcome : std::uint8_t { kRecommended, kPending, kStarted, kSucceeded, kFailed, kSkipped };

// Wire spellings, indexed by the enum value.
inline constexpr std::array<std::string_view, 5> kKindNames = {"vm", "host", "hb", "decision", "event"};
inline constexpr std::array<std::string_view, 4> kDirtySourceNames = {"softdirty", "qemu", "libvirt", "none"};
inline constexpr std::array<std::string_view, 3> kModeNames = {"observe", "recommend", "enforce"};
inline constexpr std::array<std::string_view, 6> kOutcomeNames = {"recommended", "pending", "started",
                                                                  "succeeded",   "failed",  "skipped"};

constexpr std::string_view kind_name(Kind k) noexcept { return kKindNames[static_cast<std::size_t>(k)]; }
constexpr std::string_view dirty_source_name(DirtySource s) noexcept {
  return kDirtySourceNames[static_cast<std::size_t>(s)];
}
constexpr std::string_view mode_name(Mode m) noexcept { return kModeNames[static_cast<std::size_t>(m)]; }
constexpr std::string_view outcome_name(Outcome o) noexcept { return kOutcomeNames[static_cast<std::size_t>(o)]; }

// Inverse of the *_name functions; nullopt for a spelling v1 does not define.
[[nodiscard]] std::optional<Kind> parse_kind(std::string_view s) noexcept;
[[nodiscard]] std::optional<DirtySource> parse_dirty_source(std::string_view s) noexcept;
[[nodiscard]] std::optional<Mode> parse_mode(std::string_view s) noexcept;
[[nodiscard]] std::optional<Outcome> parse_outcome(std::string_view s) noexcept;

// Keys every message carries besides `v` and `kind` (the kind is the type of
// Message::body, so the two cannot disagree).
struct Envelope {
  std::string host;               // publisher's host name
  std::uint64_t epoch = 0;        // chosen at publisher start; a new epoch restarts seq
  std::uint64_t seq = 0;          // per publisher+epoch, from 1; a gap means loss
  std::int64_t ts_ns = 0;         // wall clock (CLOCK_REALTIME)
  std::uint64_t mono_ns = 0;      // publisher's CLOCK_MONOTONIC
  std::uint64_t interval_ns = 0;  // what the deltas cover; 0 where not applicable
  bool operator==(const Envelope&) const = default;
};

// Pressure stall time (/proc/pressure, cgroup *.pressure) over the interval.
struct Psi {
  std::optional<std::uint64_t> cpu_some_us;
  std::optional<std::uint64_t> cpu_full_us;
  std::optional<std::uint64_t> io_some_us;
  std::optional<std::uint64_t> io_full_us;
  std::optional<std::uint64_t> mem_some_us;
  std::optional<std::uint64_t> mem_full_us;
  bool operator==(const Psi&) const = default;
};

// A task that ran while the VM's vCPUs waited in the run queue.
struct Preemptor {
  std::uint32_t tgid = 0;
  std::string comm;      // kernel task name: up to 15 bytes, not necessarily UTF-8
  std::uint64_t ns = 0;  // how long it ran while a vCPU waited
  bool operator==(const Preemptor&) const = default;
};

// One point of the dirty-page curve: pages dirtied within tau_ns.
struct DirtyPoint {
  std::uint64_t tau_ns = 0;
  std::uint64_t pages = 0;
  bool operator==(const DirtyPoint&) const = default;
};

struct Dirty {
  DirtySource src = DirtySource::kNone;
  std::uint64_t window_ns = 0;
  std::uint64_t pages = 0;  // distinct pages dirtied in the window
  std::uint64_t page_bytes = 0;
  std::vector<DirtyPoint> curve;  // <= kMaxDirtyCurve; empty: absent on the wire
  bool operator==(const Dirty&) const = default;
};

struct Io {
  std::uint64_t rd_bytes = 0;
  std::uint64_t wr_bytes = 0;
  std::uint64_t rd_ops = 0;
  std::uint64_t wr_ops = 0;
  std::uint64_t dstate_ns = 0;          // uninterruptible sleep of the VM's threads
  std::vector<std::uint64_t> lat_hist;  // log2 µs slots, <= kMaxHistSlots; empty: absent
  bool operator==(const Io&) const = default;
};

// kind "vm": one VM, one tick; counters are deltas over Envelope::interval_ns.
struct VmSample {
  std::string id;  // libvirt UUID, or "proc:<pid>" for procfs discovery
  std::string name;
  std::uint32_t pid = 0;
  std::uint32_t vcpus = 0;
  std::uint64_t cpu_ns = 0;    // CPU time of all VM threads
  std::uint64_t steal_ns = 0;  // run-queue wait of the vCPU threads
  std::uint64_t ram_bytes = 0;
  std::uint64_t rss_bytes = 0;
  std::vector<std::uint64_t> steal_hist;  // log2 µs slots, <= kMaxHistSlots; empty: absent
  std::vector<Preemptor> preempt;         // <= kMaxPreempt; empty: absent
  std::optional<Dirty> dirty;
  std::optional<Io> io;
  std::optional<Psi> psi;
  bool operator==(const VmSample&) const = default;
};

// kind "host": the publisher's machine over the interval.
struct HostSample {
  std::uint32_t cpus = 0;
  std::uint64_t cpu_busy_ns = 0;  // summed over CPUs
  std::uint64_t mem_total_bytes = 0;
  std::uint64_t mem_avail_bytes = 0;
  double load1 = 0;
  double load5 = 0;
  double load15 = 0;
  std::uint32_t vms = 0;
  std::optional<Psi> psi;
  std::optional<std::uint64_t> link_bps;
  std::optional<std::uint64_t> cpu_steal_ns;  // when the host is itself a guest
  bool operator==(const HostSample&) const = default;
};

// kind "hb": publisher liveness and its own loss and error counters.
struct Heartbeat {
  std::uint32_t vms = 0;
  std::uint64_t uptime_ns = 0;
  std::uint64_t dropped = 0;  // messages dropped at the send high-water mark since epoch start
  std::uint64_t errors = 0;   // errors counted since epoch start
  bool operator==(const Heartbeat&) const = default;
};

// Pre-copy migration prediction for a decision.
struct Prediction {
  double total_ms = 0;
  double downtime_ms = 0;
  std::uint64_t bytes = 0;
  std::uint64_t passes = 0;
  bool converges = false;
  std::optional<std::uint64_t> need_bw_bps;
  std::optional<std::uint32_t> need_throttle_pct;  // 0..100
  bool operator==(const Prediction&) const = default;
};

struct Candidate {
  std::string vm;
  std::string dst;
  double score = 0;
  double gain = 0;
  double cost_s = 0;
  std::optional<std::string> rejected;  // why it was not chosen
  bool operator==(const Candidate&) const = default;
};

// kind "decision": one placement decision of the controller.
struct Decision {
  std::string id;
  Mode mode = Mode::kObserve;
  std::string strategy;  // "push", "pull", "adaptive", "maintenance", ...
  std::string vm;        // VmSample::id
  std::string src;       // host
  std::string dst;       // host
  std::string reason;    // one human sentence
  Outcome outcome = Outcome::kRecommended;
  std::optional<std::string> vm_name;
  std::optional<double> score;
  std::optional<double> entropy_before;
  std::optional<double> entropy_after;
  std::optional<Prediction> predict;
  std::vector<Candidate> candidates;  // <= kMaxCandidates; empty: absent
  std::optional<std::string> detail;
  bool operator==(const Decision&) const = default;
};

// kind "event": something happened (VM or migration life cycle, errors).
struct Event {
  std::string type;  // "vm_started", "migration_failed", "error", ...
  std::string detail;
  std::optional<std::string> vm;              // VmSample::id
  std::map<std::string, std::string> fields;  // <= kMaxEventFields; empty: absent
  bool operator==(const Event&) const = default;
};

struct Message {
  using Body = std::variant<VmSample, HostSample, Heartbeat, Decision, Event>;
  Envelope env;
  Body body;

  Kind kind() const noexcept { return static_cast<Kind>(body.index()); }
  bool operator==(const Message&) const = default;
};

static_assert(std::is_same_v<std::variant_alternative_t<static_cast<std::size_t>(Kind::kVm), Message::Body>, VmSample>);
static_assert(std::is_same_v<std::variant_alternative_t<static_cast<std::size_t>(Kind::kEvent), Message::Body>, Event>);
static_assert(std::variant_size_v<Message::Body> == kKindNames.size());

}  // namespace vmtide::wire
