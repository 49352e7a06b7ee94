// SPDX-License-Identifier: Apache-2.0
// DirtyCollector: the dirty-page curve D(tau) of each VM process, from
// soft-dirty tracking. A window resets the process's soft-dirty bits
// (/proc/<pid>/clear_refs = 4); BPF (bpf/dirty.bpf.c) times each first write
// fault after it; at the window's end /proc/<pid>/pagemap gives the exact
// number of distinct 4 KiB pages written, which also corrects for huge pages
// (one fault dirties 512 small pages). Windows are duty-cycled because
// tracking costs the guest one fault per first write.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "vmtide/bpf/skeleton.h"
#include "vmtide/bpf_abi.h"
#include "vmtide/result.h"

struct dirty_bpf;

namespace vmtide::collectors {

// Checks that the kernel keeps soft-dirty bits (CONFIG_MEM_SOFT_DIRTY), by
// writing a page of this process after a reset and reading pagemap bit 55.
// kUnsupported with the reason when it does not.
[[nodiscard]] Status probe_soft_dirty();

struct DirtyPoint {
  std::uint64_t tau_ns = 0;  // time since the reset
  std::uint64_t pages = 0;   // distinct 4 KiB pages written within tau_ns
};

struct DirtyWindow {
  std::uint64_t window_ns = 0;       // from the reset to the pagemap read
  std::uint64_t pages = 0;           // distinct 4 KiB pages written in the window (exact, from pagemap)
  std::uint64_t page_bytes = 4096;
  std::uint64_t write_faults = 0;    // write faults BPF counted (1 per huge page: fewer than pages)
  std::uint64_t resident_pages = 0;  // pages present or swapped in the scanned (writable) mappings
  std::vector<DirtyPoint> curve;     // cumulative, scaled so the last point equals `pages`; empty without BPF
};

// Reads the soft-dirty and present bits of every writable mapping of `pid`:
// returns {soft-dirty pages, resident pages}, in 4 KiB pages.
[[nodiscard]] Result<std::pair<std::uint64_t, std::uint64_t>> scan_soft_dirty(std::uint32_t pid);

// Not thread-safe: one owner (the agent's tick) calls it.
class DirtyCollector {
 public:
  struct Options {
    std::uint64_t window_ns = 2'000'000'000;   // tracking window
    std::uint64_t period_ns = 30'000'000'000;  // one window per VM every period
    bool bpf = true;                           // time the faults (the curve's shape)
    std::uint32_t max_tracked = VMTIDE_DIRTY_MAX_TRACKED_DEFAULT;
  };

  // kUnsupported when the kernel lacks soft-dirty; if only BPF is missing
  // the collector still measures D(window) exactly, without the curve.
  [[nodiscard]] static Result<std::unique_ptr<DirtyCollector>> create(const Options& opts);
  ~DirtyCollector();

  [[nodiscard]] Status track(const std::string& vm_id, std::uint32_t tgid);
  [[nodiscard]] Status untrack(const std::string& vm_id);
  std::size_t tracked_count() const { return vms_.size(); }

  // One window, by hand: reset now; read after.
  [[nodiscard]] Status begin_window(const std::string& vm_id);
  [[nodiscard]] Result<DirtyWindow> end_window(const std::string& vm_id);

  // The duty cycle: at monotonic time now_ns, closes the windows that ran
  // for window_ns (returned) and opens one for each VM whose period came.
  // A VM that vanished is untracked and reported with kNotFound.
  std::vector<std::pair<std::string, Result<DirtyWindow>>> poll(std::uint64_t now_ns);

  // Why the curve is missing, if BPF is off.
  const std::string& bpf_disabled_reason() const { return bpf_disabled_reason_; }
  // Entries in the kernel's tracking map (tests check nothing leaks).
  [[nodiscard]] Result<std::size_t> kernel_entries() const;

 private:
  struct Vm {
    std::uint32_t tgid = 0;
    std::uint32_t slot = 0;
    std::optional<std::uint64_t> window_start_ns;  // open window
    std::uint64_t next_start_ns = 0;               // duty cycle
    std::vector<std::uint64_t> baseline;           // bucket counts at the reset
  };
  DirtyCollector(const Options& opts, std::unique_ptr<bpf::Skeleton<dirty_bpf>> skel, std::string bpf_reason);
  [[nodiscard]] Result<std::vector<std::uint64_t>> read_buckets(std::uint32_t slot) const;

  Options opts_;
  std::unique_ptr<bpf::Skeleton<dirty_bpf>> skel_;  // null without BPF
  std::string bpf_disabled_reason_;
  int ncpus_ = 1;
  std::map<std::string, Vm> vms_;
  std::vector<std::uint32_t> free_slots_;
};

std::uint64_t monotonic_ns();

}  // namespace vmtide::collectors
