// SPDX-License-Identifier: Apache-2.0
// Least privilege for the daemons (docs/security.md, "Least privilege"):
// read a process's capability sets, and keep only the ones it still needs
// once start-up is done. Plain capset(2) and prctl(2), no libcap.
// Capabilities belong to threads: drop before starting any (ZeroMQ's I/O
// threads start with the first socket, the metrics server with its port).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "vmtide/result.h"

namespace vmtide::caps {

// Bit n is capability n (linux/capability.h; CAP_PERFMON 38, CAP_BPF 39
// are missing from older headers, so the numbers are spelled here).
inline constexpr int kDacOverride = 1;
inline constexpr int kDacReadSearch = 2;
inline constexpr int kSetpcap = 8;
inline constexpr int kSysPtrace = 19;
inline constexpr int kSysAdmin = 21;
inline constexpr int kSysResource = 24;
inline constexpr int kPerfmon = 38;
inline constexpr int kBpf = 39;
constexpr std::uint64_t bit(int cap) { return 1ULL << cap; }

struct Sets {
  std::uint64_t effective = 0, permitted = 0, inheritable = 0, bounding = 0, ambient = 0;
};

// The sets of a thread as /proc/<tid>/status shows them (0: this thread).
[[nodiscard]] Result<Sets> read(pid_t tid = 0);

// Keeps `keep` (what of it the thread has) in the effective and permitted
// sets, empties the inheritable and ambient sets, and removes every other
// capability from the bounding set, so not even an execve of a setuid or
// file-capability binary gets them back. The bounding set needs
// CAP_SETPCAP to shrink: without it (a non-root daemon given a few ambient
// capabilities) that part is skipped, and the service manager's
// CapabilityBoundingSet= does it. Returns the sets afterwards.
[[nodiscard]] Result<Sets> keep_only(std::uint64_t keep);

// "dac_override,sys_ptrace", or "none".
[[nodiscard]] std::string names(std::uint64_t set);

}  // namespace vmtide::caps
