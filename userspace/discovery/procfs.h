// SPDX-License-Identifier: Apache-2.0
// procfs discovery: finds QEMU processes (hosts without libvirt, the lab)
// and reads what the agent needs from their command line and threads.
// Parsers are pure functions over text so they are tested on fixtures.
#pragma once

#include <cstdint>
#include <optional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "vmtide/result.h"

namespace vmtide::discovery {

// What a QEMU command line says about its VM.
struct QemuCmdline {
  std::string name;          // -name guest=NAME or -name NAME; empty if absent
  std::string uuid;          // -uuid; empty if absent
  std::uint64_t ram_bytes;   // -m; QEMU's default (128 MiB) if absent
  bool debug_threads;        // -name ...,debug-threads=on: vCPU threads are named "CPU n/<accel>"
  // QMP monitors QEMU listens on, as unix socket paths in command-line
  // order: `-qmp unix:PATH,server=on` (also `unix:path=PATH`, the legacy
  // `server` flag, `-qmp-pretty`) and `-chardev socket,id=X,path=PATH,
  // server=on` used by `-mon chardev=X,mode=control`. Sockets QEMU
  // connects out of (no server), abstract sockets, TCP and passed file
  // descriptors (libvirt's `fd=N`) are left out. Relative paths are as
  // written (relative to QEMU's working directory).
  std::vector<std::string> qmp_sockets;
};

// Parses a NUL-separated argv (the contents of /proc/<pid>/cmdline).
[[nodiscard]] Result<QemuCmdline> parse_qemu_cmdline(std::string_view argv);

// Parses QEMU's -m argument: "512" (MiB), "512M", "2G", "524036k",
// "size=1G,slots=2,maxmem=4G".
[[nodiscard]] Result<std::uint64_t> parse_qemu_mem(std::string_view arg);

// QEMU's option syntax (util/qemu-option.c): "a=1,b=x,,y,flag,noflag".
// ",," is a literal comma; a first item without '=' is the value of
// `implied` (e.g. "path" after "unix:"); a later bare "flag" means flag=on
// and "noflag" flag=off. Later keys override earlier ones.
std::vector<std::pair<std::string, std::string>> parse_qemu_opts(std::string_view s, std::string_view implied);

// vCPU index from a thread name "CPU 3/KVM" or "CPU 0/TCG", else nullopt.
std::optional<unsigned> vcpu_index_from_comm(std::string_view comm);

struct QemuProcess {
  std::uint32_t pid = 0;
  std::string id;    // "uuid" if the command line has one, else "proc:<pid>"
  std::string name;  // -name, else "pid<pid>"
  std::string uuid;
  std::uint64_t ram_bytes = 0;
  std::vector<std::uint32_t> vcpu_tids;  // by vCPU index; empty without debug-threads
  std::vector<std::string> qmp_sockets;  // absolute paths (QemuCmdline::qmp_sockets)
};

// What a scan learned about each QEMU process, so the next scan of the
// same process reads only its task list: a VM's command line and its vCPU
// threads' names do not change while it runs. A process whose threads are
// all new is taken for a new process with a reused pid and read again.
// Processes that are not QEMU are not read again either, once two scans in
// a row saw them so (a fork that has not yet exec'd QEMU is caught by the
// second look); every `full_every` scans everything is read again anyway.
struct ScanCache {
  std::map<std::uint32_t, int> not_qemu;  // pid -> scans in a row it was not QEMU
  unsigned scans = 0;
  unsigned full_every = 12;  // with the agent's 5 s rescans: once a minute
  struct Entry {
    QemuProcess proc;
    std::vector<std::uint32_t> tids;             // every thread seen, sorted
    std::map<unsigned, std::uint32_t> vcpus;      // vCPU index -> tid
    int unchanged = 0;  // scans in a row that listed the same threads
  };
  std::map<std::uint32_t, Entry> by_pid;
};

// Scans `proc_root` (normally /proc) for processes whose comm starts with
// "qemu-system" or whose pid is in `extra_pids`. A process that vanishes
// while being read is skipped silently: VMs come and go.
std::vector<QemuProcess> scan_qemu_processes(const std::string& proc_root = "/proc",
                                             const std::vector<std::uint32_t>& extra_pids = {},
                                             ScanCache* cache = nullptr);

}  // namespace vmtide::discovery
