// SPDX-License-Identifier: Apache-2.0
// IoCollector: block I/O per VM process from bpf/io.bpf.c (bytes, requests,
// issue-to-completion latency histogram), plus the io/cpu pressure of the
// VM's cgroup where it has one (libvirt puts VMs under machine.slice).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "procfs_stats.h"
#include "bpf_support.h"
#include "vmtide/bpf/skeleton.h"
#include "vmtide/bpf_abi.h"
#include "vmtide/result.h"

struct io_bpf;

namespace vmtide::collectors {

struct IoDelta {
  std::uint64_t rd_bytes = 0;
  std::uint64_t wr_bytes = 0;
  std::uint64_t rd_ops = 0;  // requests completed
  std::uint64_t wr_ops = 0;
  std::vector<std::uint64_t> lat_hist;  // requests by log2(latency µs), VMTIDE_IO_HIST_SLOTS slots
  // Stall time of the VM's cgroup over the interval (absent without one).
  std::optional<std::uint64_t> io_some_us, io_full_us, cpu_some_us, cpu_full_us;
};

// The cgroup v2 directory of a process (from /proc/<pid>/cgroup), or
// nullopt if it has none of its own (the root cgroup).
[[nodiscard]] std::optional<std::string> cgroup_dir_of(std::uint32_t pid,
                                                       const std::string& cgroup_root = "/sys/fs/cgroup");

// Not thread-safe: one owner (the agent's tick) calls it.
class IoCollector {
 public:
  struct Options {
    std::uint32_t max_tracked = VMTIDE_IO_MAX_TRACKED_DEFAULT;
  };
  [[nodiscard]] static Result<std::unique_ptr<IoCollector>> create(const Options& opts);
  [[nodiscard]] static Result<std::unique_ptr<IoCollector>> create() { return create(Options{}); }
  ~IoCollector();

  // Starts counting the I/O that process `tgid` submits, as VM `vm_id`.
  [[nodiscard]] Status track(const std::string& vm_id, std::uint32_t tgid);
  [[nodiscard]] Status untrack(const std::string& vm_id);
  std::size_t tracked_count() const { return vms_.size(); }

  // Deltas since the previous read (since track() for the first).
  [[nodiscard]] Result<std::map<std::string, IoDelta>> read();

  // Entries left in the kernel's maps (tests check nothing leaks).
  [[nodiscard]] Result<std::size_t> kernel_tracked_entries() const;

 private:
  struct Vm {
    std::uint32_t tgid = 0;
    std::uint32_t slot = 0;
    vmtide_io_counts last{};
    std::optional<std::string> cgroup;
    std::optional<Pressure> last_io, last_cpu;
  };
  IoCollector(bpf::Skeleton<io_bpf> skel, std::uint32_t max_tracked);
  [[nodiscard]] Result<vmtide_io_counts> read_slot(std::uint32_t slot) const;

  bpf::Skeleton<io_bpf> skel_;
  int ncpus_;
  std::map<std::string, Vm> vms_;
  bpf::SlotPool slots_;
  std::vector<vmtide_io_counts> rows_;  // read()'s buffer, kept between ticks
};

}  // namespace vmtide::collectors
