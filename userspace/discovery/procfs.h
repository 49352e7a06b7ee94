// SPDX-License-Identifier: Apache-2.0
// procfs discovery: finds QEMU processes (hosts without libvirt, the lab)
// and reads what the agent needs from their command line and threads.
// Parsers are pure functions over text so they are tested on fixtures.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vmtide/result.h"

namespace vmtide::discovery {

// What a QEMU command line says about its VM.
struct QemuCmdline {
  std::string name;          // -name guest=NAME or -name NAME; empty if absent
  std::string uuid;          // -uuid; empty if absent
  std::uint64_t ram_bytes;   // -m; QEMU's default (128 MiB) if absent
  bool debug_threads;        // -name ...,debug-threads=on: vCPU threads are named "CPU n/<accel>"
};

// Parses a NUL-separated argv (the contents of /proc/<pid>/cmdline).
[[nodiscard]] Result<QemuCmdline> parse_qemu_cmdline(std::string_view argv);

// Parses QEMU's -m argument: "512" (MiB), "512M", "2G", "524036k",
// "size=1G,slots=2,maxmem=4G".
[[nodiscard]] Result<std::uint64_t> parse_qemu_mem(std::string_view arg);

// vCPU index from a thread name "CPU 3/KVM" or "CPU 0/TCG", else nullopt.
std::optional<unsigned> vcpu_index_from_comm(std::string_view comm);

struct QemuProcess {
  std::uint32_t pid = 0;
  std::string id;    // "uuid" if the command line has one, else "proc:<pid>"
  std::string name;  // -name, else "pid<pid>"
  std::string uuid;
  std::uint64_t ram_bytes = 0;
  std::vector<std::uint32_t> vcpu_tids;  // by vCPU index; empty without debug-threads
};

// Scans `proc_root` (normally /proc) for processes whose comm starts with
// "qemu-system" or whose pid is in `extra_pids`. A process that vanishes
// while being read is skipped silently: VMs come and go.
std::vector<QemuProcess> scan_qemu_processes(const std::string& proc_root = "/proc",
                                             const std::vector<std::uint32_t>& extra_pids = {});

}  // namespace vmtide::discovery
