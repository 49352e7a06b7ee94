// SPDX-License-Identifier: Apache-2.0
// StealCollector: CPU steal per VM and per vCPU thread from bpf/steal.bpf.c.
// Tier 1 (always on) reads the kernel's schedstat counters of every tracked
// thread through one task-iterator read per tick; detail mode (tp_btf
// sched_wakeup/switch) adds a per-VM log2 wait histogram and the processes
// that held the CPU meanwhile (noisy neighbours), and the time every thread
// of the VM process spent in D state (uninterruptible sleep). Without BPF it
// polls /proc/<pid>/task/<tid>/schedstat and says so in every reading.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bpf_support.h"
#include "vmtide/bpf/skeleton.h"
#include "vmtide/bpf_abi.h"
#include "vmtide/result.h"

struct bpf_map;
struct steal_bpf;

namespace vmtide::collectors {

enum class StealSource : std::uint8_t {
  kBpfIter,  // the iter/task program (tier 1)
  kProcfs,   // polling /proc/<pid>/task/<tid>/schedstat (fallback)
};
const char* to_string(StealSource s);

// What the kernel offers, found at create(). `missing` is a sentence naming
// every absent piece, empty when all is there.
struct StealProbe {
  bool bpf_ok = false;  // BTF present and privileges sufficient (bpf::preflight)
  bool iter_task = false;
  bool tp_sched_switch = false;
  bool tp_sched_wakeup = false;
  bool tp_sched_wakeup_new = false;
  bool prev_state_arg = false;  // sched_switch passes prev_state (>= 5.18)
  std::string missing;
};

struct VcpuSteal {
  std::uint32_t tid = 0;
  std::uint64_t steal_ns = 0;    // schedstat run_delay delta: runnable, waiting for a CPU
  std::uint64_t run_ns = 0;      // sum_exec_runtime delta (completed slices)
  std::uint64_t timeslices = 0;  // pcount delta: times it got a CPU
};

struct Preemptor {
  std::uint32_t tgid = 0;
  std::string comm;
  std::uint64_t steal_ns = 0;  // VM wait attributed to this process
  std::uint64_t waits = 0;
};

struct VmSteal {
  std::string vm_id;
  std::uint32_t tgid = 0;
  StealSource source = StealSource::kBpfIter;
  std::uint64_t steal_ns = 0;  // sum over vcpus
  std::uint64_t run_ns = 0;
  std::uint64_t timeslices = 0;
  std::vector<VcpuSteal> vcpus;  // in tid order; a vCPU thread that exited is dropped
  // Detail mode (has_detail): waits timed by the tp_btf programs.
  bool has_detail = false;
  std::uint64_t hist_wait_ns = 0;  // exact sum of the timed waits
  std::uint64_t hist_waits = 0;
  std::uint64_t hist_self_wait_ns = 0;                                     // part spent behind the VM's own threads
  std::array<std::uint64_t, VMTIDE_STEAL_HIST_SLOTS> wait_hist_log2_us{};  // [i]: waits in [2^i, 2^(i+1)) µs
  std::vector<Preemptor> top_preemptors;                                   // other processes, most steal first
  // The whole process from the same iterator read: CPU time of every thread,
  // live and exited, so far (ns, monotonic; what /proc/<pid>/stat's
  // utime + stime approximate in clock ticks) and resident bytes (its field
  // 24). nullopt with the procfs source, or when the read did not see the
  // process's leader thread.
  std::optional<std::uint64_t> process_cpu_ns;
  std::optional<std::uint64_t> rss_bytes;
  // D-state sleep of all the VM process's threads (vCPUs and I/O threads),
  // counted when each sleep ends. Only detail mode measures it: nullopt
  // without it (not zero: nobody looked).
  std::optional<std::uint64_t> dstate_ns;
};

struct StealReading {
  std::uint64_t interval_ns = 0;         // since the previous read()
  std::vector<VmSteal> vms;              // in vm_id order
  std::vector<std::string> dropped_vms;  // processes that exited: untracked by this read
  std::uint64_t preempt_map_full = 0;    // detail-mode drops since the previous read
  std::uint64_t dsleep_map_full = 0;     // D-state sleeps not timed (steal_dsleep full) since the previous read
};

// Not thread-safe: one owner calls track/untrack/read (the agent's tick).
class StealCollector {
 public:
  struct Options {
    bool detail = true;  // the tp_btf programs; tier 1 is always on
    std::uint32_t max_vms = VMTIDE_STEAL_MAX_VMS_DEFAULT;
    std::uint32_t max_tids = VMTIDE_STEAL_MAX_TIDS_DEFAULT;
    std::uint32_t max_preemptors = VMTIDE_STEAL_MAX_PREEMPTORS_DEFAULT;
    std::uint32_t max_dsleep = VMTIDE_STEAL_MAX_DSLEEP_DEFAULT;  // threads in D state at once, all VMs
    std::size_t top_preemptors = 5;
    bool allow_procfs_fallback = true;  // when BPF cannot run
    bool procfs_only = false;           // configuration: never load BPF
  };

  // Probes the kernel, loads and attaches; falls back to procfs polling
  // (logged once with the reason) when BPF cannot run and that is allowed.
  [[nodiscard]] static Result<std::unique_ptr<StealCollector>> create(const Options& opts);
  [[nodiscard]] static Result<std::unique_ptr<StealCollector>> create() { return create(Options{}); }
  [[nodiscard]] static StealProbe probe();
  ~StealCollector();

  // Starts measuring a VM: steal of `vcpu_tids`, D state of every thread of
  // `tgid`. The first read() reports deltas from now.
  [[nodiscard]] Status track(const std::string& vm_id, std::uint32_t tgid, const std::vector<std::uint32_t>& vcpu_tids);
  [[nodiscard]] Status untrack(const std::string& vm_id);
  bool is_tracked(const std::string& vm_id) const { return vms_.count(vm_id) != 0; }

  // Per-VM deltas since the previous read (or track). A VM whose process
  // exited is untracked here and listed in dropped_vms.
  [[nodiscard]] Result<StealReading> read();

  StealSource source() const { return source_; }
  bool detail_enabled() const { return detail_; }
  const StealProbe& probe_result() const { return probe_; }
  const std::string& fallback_reason() const { return fallback_reason_; }

  // Entries in the kernel maps, for leak checks.
  struct MapStats {
    std::size_t task_entries = 0;     // steal_tasks
    std::size_t tid_bits_set = 0;     // steal_tid_bits
    std::size_t preempt_entries = 0;  // steal_preempt
    std::size_t tgid_bits_set = 0;    // steal_tgid_bits
    std::size_t proc_entries = 0;     // steal_procs
    std::size_t dsleep_entries = 0;   // steal_dsleep: D-state sleeps in progress
  };
  [[nodiscard]] Result<MapStats> map_stats() const;

 private:
  struct Raw {
    std::uint64_t run_delay_ns = 0, pcount = 0, run_ns = 0;
    std::uint32_t tgid = 0;
  };
  // A tracked process, summed over its threads by collect_iter().
  struct ProcRaw {
    std::uint64_t cpu_ns = 0;  // live threads' runtime + the leader's exited_runtime_ns
    std::uint64_t rss_pages = 0;
    bool leader = false;  // cpu_ns is complete
    bool has_mm = false;  // rss_pages is valid
  };
  struct Collected {
    std::map<std::uint32_t, Raw> threads;  // tracked vCPU threads by tid
    std::map<std::uint32_t, ProcRaw> procs;  // by tgid; empty with the procfs source
  };
  struct Vm {
    std::uint32_t tgid = 0;
    std::uint32_t slot = 0;
    std::map<std::uint32_t, Raw> prev;  // tid -> counters at the previous read
    vmtide_steal_hist hist_prev{};
  };

  StealCollector(const Options& opts, StealProbe probe);
  [[nodiscard]] Status load();
  [[nodiscard]] Result<Collected> collect_iter() const;
  [[nodiscard]] Result<Collected> collect_procfs() const;
  [[nodiscard]] Result<Collected> collect() const;
  [[nodiscard]] Result<vmtide_steal_hist> read_hist(std::uint32_t slot) const;
  // Every (VM slot, preempting tgid) row, summed over CPUs, sorted by key.
  // With `consume` the rows are deleted as they are read: the values are
  // then the waits since the previous consuming read.
  [[nodiscard]] Result<std::vector<std::pair<vmtide_steal_preempt_key, vmtide_steal_preempt_val>>> read_preempt(
      bool consume) const;
  [[nodiscard]] Status set_bit(bpf_map* bitmap, std::uint32_t id, bool on);
  [[nodiscard]] Status set_tid_bit(std::uint32_t tid, bool on);
  // Deletes the D-state entries of processes no tracked VM owns.
  void drop_orphan_dsleeps();
  [[nodiscard]] Status forget(const std::string& vm_id);  // removes every map entry of the VM

  Options opts_;
  StealProbe probe_;
  StealSource source_ = StealSource::kProcfs;
  bool detail_ = false;
  std::string fallback_reason_;
  bpf::Skeleton<steal_bpf> skel_;
  int ncpus_ = 1;
  std::uint32_t bitmap_words_ = 0;
  std::map<std::string, Vm> vms_;
  bpf::SlotPool slots_;
  mutable std::vector<char> iter_buf_;         // collect_iter()'s buffer, kept between ticks
  std::vector<vmtide_steal_hist> hist_rows_;  // read()'s buffer, kept between ticks
  std::uint64_t last_read_ns_ = 0;
  std::uint64_t drops_prev_ = 0;
  std::uint64_t dsleep_drops_prev_ = 0;
};

}  // namespace vmtide::collectors
