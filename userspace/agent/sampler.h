// SPDX-License-Identifier: Apache-2.0
// Sampler: one tick of the agent. Discovers VMs, reads their counters and
// the host's, and returns wire message bodies holding the deltas since the
// previous tick. No sockets here: the publisher sends what it returns.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ctxsw.h"
#include "dirty.h"
#include "io.h"
#include "steal.h"
#include "libvirt.h"
#include "procfs.h"
#include "procfs_source.h"
#include "procfs_stats.h"
#include "vmtide/wire/messages.h"

namespace vmtide::agent {

struct SamplerOptions {
  bool bpf = true;                        // load the BPF collectors (needs CAP_BPF + CAP_PERFMON)
  bool steal_detail = true;               // wait histogram, noisy neighbours, D-state time (sched tracepoints)
  bool dirty = true;                      // soft-dirty windows (needs CONFIG_MEM_SOFT_DIRTY)
  std::uint64_t dirty_window_ns = 2'000'000'000;
  std::uint64_t dirty_period_ns = 30'000'000'000;
  // Full discovery rescans (all of /proc, or libvirt's list) this often;
  // libvirt lifecycle events trigger one at once. Between rescans a VM that
  // vanishes is still noticed at the next tick (its reads fail).
  std::uint64_t rescan_ns = 5'000'000'000;
  // Wall time a tick may spend on hypervisor dirty-rate calls (QMP or
  // libvirt); VMs left over are served at the next tick.
  std::uint64_t hv_budget_ns = 300'000'000;
};

struct VmTickInfo {  // for the agent's log line
  std::string name;
  std::uint32_t pid = 0;
  double cpu_pct = 0;
  double steal_pct = 0;  // of the interval, summed over vCPUs
  std::optional<collectors::CtxswCounts> ctxsw;
};

struct Tick {
  std::uint64_t interval_ns = 0;  // 0 on the first tick (baselines only)
  std::vector<wire::Message::Body> bodies;
  std::vector<VmTickInfo> vms;
};

class Sampler {
 public:
  // `source` says which VMs run here (libvirt or /proc).
  Sampler(SamplerOptions opts, std::unique_ptr<discovery::VmSource> source);
  // The discovery source, when it is opened after construction: the agent
  // loads its probes and drops capabilities before it opens libvirt, whose
  // event loop is a thread of its own (capabilities are per thread).
  void set_source(std::unique_ptr<discovery::VmSource> source) { source_ = std::move(source); }
  ~Sampler();

  // Reads everything at monotonic time `mono_ns`. VMs that appeared or
  // vanished since the last tick yield "vm_started"/"vm_stopped" events.
  Tick sample(std::uint64_t mono_ns);

  // Why the BPF collectors are off, if they are.
  const std::string& bpf_disabled_reason() const { return bpf_disabled_reason_; }
  // Why there is no soft-dirty dirty-page curve, if there is none.
  const std::string& dirty_disabled_reason() const { return dirty_disabled_reason_; }
  // Where dirty rates come from: "softdirty", else the hypervisor's
  // page-sampling estimate where the kernel lacks soft-dirty ("libvirt",
  // or "qemu" over QMP with procfs discovery), else "none".
  const char* dirty_source() const;
  std::uint64_t errors() const { return errors_; }
  std::size_t vm_count() const { return vms_.size(); }

 private:
  struct VmState {
    discovery::QemuProcess proc;
    collectors::SchedStat all_threads;
    std::uint64_t stat_cpu_ns = 0;  // /proc/<pid>/stat utime + stime at the last tick
    collectors::SchedStat vcpu_threads;
    std::optional<collectors::CtxswCounts> ctxsw;
    bool baselined = false;  // counters above hold a previous reading
    bool bpf_steal = false;  // tracked by steal_ (else schedstat polling)
    collectors::ProcessStatFile stat;  // its /proc/<pid>/stat, kept open
  };
  struct HostState {
    collectors::CpuTimes cpu;
    std::optional<collectors::Pressure> psi_cpu, psi_io, psi_mem;
  };

  void host_sample(std::uint64_t interval_ns, Tick& out);

  SamplerOptions opts_;
  std::unique_ptr<discovery::VmSource> source_;
  std::unique_ptr<collectors::CtxswCounter> ctxsw_;
  std::unique_ptr<collectors::IoCollector> io_;
  std::unique_ptr<collectors::StealCollector> steal_;  // BPF only; VMs with named vCPUs
  std::unique_ptr<collectors::DirtyCollector> dirty_;
  // The hypervisor fallback, per VM id: start a measurement every period,
  // ask for its result once the window has passed.
  struct HvDirty {
    std::uint64_t next_start_ns = 0;  // when the next measurement is due
    bool measuring = false;
    std::uint64_t query_at_ns = 0;   // measuring: when the window ends
    std::uint64_t give_up_ns = 0;    // measuring: no result by then is a failure
    std::int64_t last_start_s = -1;  // start time of the last result taken
    bool unsupported = false;        // this VM cannot be measured (e.g. no QMP socket)
    std::uint64_t failures = 0;      // in a row; only the first is logged
  };
  std::map<std::string, HvDirty> hv_dirty_;
  void hypervisor_dirty(std::uint64_t mono_ns, std::map<std::string, wire::Dirty>& out);
  void hv_failed(const discovery::QemuProcess& vm, HvDirty& h, const Error& e);
  std::string bpf_disabled_reason_;
  std::string dirty_disabled_reason_;
  std::map<std::uint32_t, VmState> vms_;  // by pid
  std::optional<HostState> host_;
  // The host's files, kept open between ticks.
  collectors::ProcFile proc_stat_{"/proc/stat"}, meminfo_{"/proc/meminfo"}, loadavg_{"/proc/loadavg"};
  collectors::ProcFile psi_cpu_{"/proc/pressure/cpu"}, psi_io_{"/proc/pressure/io"},
      psi_mem_{"/proc/pressure/memory"};
  std::optional<std::uint64_t> last_mono_ns_;
  std::optional<std::uint64_t> last_scan_ns_;
  std::uint64_t errors_ = 0;
  long ticks_per_s_;
};

}  // namespace vmtide::agent
