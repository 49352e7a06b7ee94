// SPDX-License-Identifier: Apache-2.0
// CtxswCounter: per-process context-switch counts from bpf/ctxsw.bpf.c. The
// first collector, and the shape the others follow: it owns its skeleton,
// tracks processes by tgid, and reads monotonic per-CPU counters as
// deltas from a baseline taken when tracking starts.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "bpf_support.h"
#include "vmtide/bpf/skeleton.h"
#include "vmtide/bpf_abi.h"
#include "vmtide/result.h"

struct ctxsw_bpf;

namespace vmtide::collectors {

struct CtxswCounts {
  std::uint64_t out_voluntary = 0;    // like /proc/<pid>/status voluntary_ctxt_switches
  std::uint64_t out_involuntary = 0;  // like nonvoluntary_ctxt_switches
  std::uint64_t in = 0;               // times a thread of the process was switched in

  std::uint64_t out_total() const { return out_voluntary + out_involuntary; }
  CtxswCounts operator-(const CtxswCounts& o) const {
    return {out_voluntary - o.out_voluntary, out_involuntary - o.out_involuntary, in - o.in};
  }
  bool operator==(const CtxswCounts&) const = default;
};

// Not thread-safe: one owner calls track/untrack/read (the agent's tick).
class CtxswCounter {
 public:
  struct Options {
    std::uint32_t max_tracked = VMTIDE_CTXSW_MAX_TRACKED_DEFAULT;
  };

  // Checks privileges, loads and attaches the program. Errors explain what
  // is missing (no BTF, no CAP_BPF, verifier rejection).
  [[nodiscard]] static Result<std::unique_ptr<CtxswCounter>> create(const Options& opts);
  [[nodiscard]] static Result<std::unique_ptr<CtxswCounter>> create() { return create(Options{}); }
  ~CtxswCounter();

  // Starts counting the process `tgid`; counts start at zero now.
  [[nodiscard]] Status track(std::uint32_t tgid);
  [[nodiscard]] Status untrack(std::uint32_t tgid);
  bool is_tracked(std::uint32_t tgid) const { return entries_.count(tgid) != 0; }
  std::size_t tracked_count() const { return entries_.size(); }

  // Counts since track(tgid), summed over CPUs.
  [[nodiscard]] Result<CtxswCounts> read(std::uint32_t tgid) const;
  // Every tracked process, in tgid order, from one batched map read (the
  // agent's tick: one bpf() call, not one per VM).
  // Slots released since the previous read_all() become reusable here.
  [[nodiscard]] Result<std::vector<std::pair<std::uint32_t, CtxswCounts>>> read_all();

  // True when the kernel passes prev_state to sched_switch (>= 5.18), so the
  // voluntary/involuntary split matches the kernel's own counters exactly.
  bool exact_voluntary_split() const { return has_prev_state_; }

 private:
  struct Entry {
    std::uint32_t slot;
    CtxswCounts baseline;
  };
  CtxswCounter(bpf::Skeleton<ctxsw_bpf> skel, std::uint32_t max_tracked, bool has_prev_state);
  [[nodiscard]] Result<CtxswCounts> read_slot(std::uint32_t slot) const;

  bpf::Skeleton<ctxsw_bpf> skel_;
  std::uint32_t max_tracked_;
  bool has_prev_state_;
  int ncpus_;
  std::map<std::uint32_t, Entry> entries_;  // tgid -> slot
  bpf::SlotPool slots_;
  std::vector<vmtide_ctxsw_counts> rows_;  // read_all()'s buffer, kept between ticks
};

}  // namespace vmtide::collectors
