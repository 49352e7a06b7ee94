// SPDX-License-Identifier: Apache-2.0
// ProcfsSource: VMs found in /proc (hosts without libvirt, and the lab),
// and, when enabled, QEMU's own dirty-rate estimate over each VM's QMP
// socket (calc-dirty-rate page-sampling) for kernels without soft-dirty.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "json_reader.h"
#include "procfs.h"
#include "source.h"

namespace vmtide::discovery {

struct ProcfsOptions {
  std::vector<std::uint32_t> extra_pids;  // also VMs, besides qemu-system-* processes
  // Measure dirty rates through the QMP sockets found on the VMs' command
  // lines ([discovery] qmp_sockets). Off by default: the agent then talks
  // to monitors that belong to whoever started the VM.
  bool qmp = false;
  // One whole exchange (connect, greeting, capabilities, command) must fit
  // in this, or it is abandoned: the agent's tick waits for no VM.
  std::chrono::milliseconds qmp_timeout{250};
  int sample_pages_per_gib = 4096;  // kQmpSamplePagesPerGiB
  std::string proc_root = "/proc";
};

class ProcfsSource final : public VmSource {
 public:
  explicit ProcfsSource(ProcfsOptions opts = {}) : opts_(std::move(opts)) {}
  const char* name() const override { return "procfs"; }
  Result<std::vector<QemuProcess>> scan() override;

  bool supports_dirty_rate() const override { return opts_.qmp; }
  wire::DirtySource dirty_rate_source() const override { return wire::DirtySource::kQemu; }
  // By the VM id of the last scan. kUnsupported for a VM without a QMP
  // socket, kNotFound for one whose process is gone, kBusy when every
  // socket of the VM serves another client.
  Status start_dirty_rate(const std::string& id, int seconds) override;
  Result<std::optional<HypervisorDirtyRate>> dirty_rate(const std::string& id) override;

 private:
  struct Vm {
    std::uint32_t pid = 0;
    std::vector<std::string> qmp_sockets;
  };
  // Connects to the VM's sockets in turn and runs `command` on the first
  // that answers.
  Result<json::Value> qmp(const std::string& id, const char* command, const std::string& arguments);

  ProcfsOptions opts_;
  std::map<std::string, Vm> vms_;  // by id, from the last scan
  ScanCache cache_;                // what earlier scans read
};

}  // namespace vmtide::discovery
