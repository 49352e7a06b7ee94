// SPDX-License-Identifier: Apache-2.0
// Capability sets through capset(2) and prctl(2) (capabilities.h).
#include "capabilities.h"

#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>

namespace vmtide::caps {
namespace {

// Names for `names()`, by number (capability(7)); later ones print as cap_N.
constexpr const char* kNames[] = {
    "chown",        "dac_override",    "dac_read_search", "fowner",       "fsetid",         "kill",
    "setgid",       "setuid",          "setpcap",         "linux_immutable", "net_bind_service", "net_broadcast",
    "net_admin",    "net_raw",         "ipc_lock",        "ipc_owner",    "sys_module",     "sys_rawio",
    "sys_chroot",   "sys_ptrace",      "sys_pacct",       "sys_admin",    "sys_boot",       "sys_nice",
    "sys_resource", "sys_time",        "sys_tty_config",  "mknod",        "lease",          "audit_write",
    "audit_control", "setfcap",        "mac_override",    "mac_admin",    "syslog",         "wake_alarm",
    "block_suspend", "audit_read",     "perfmon",         "bpf",          "checkpoint_restore"};

int last_cap() {
  std::ifstream in("/proc/sys/kernel/cap_last_cap");
  int n = 40;
  in >> n;
  return n > 0 && n < 64 ? n : 40;
}

}  // namespace

Result<Sets> read(pid_t tid) {
  const std::string path = tid == 0 ? "/proc/thread-self/status" : "/proc/" + std::to_string(tid) + "/status";
  std::ifstream in(path);
  if (!in) return make_error(Errc::kIo, "cannot read " + path);
  Sets s;
  int found = 0;
  std::string line;
  const std::pair<const char*, std::uint64_t Sets::*> fields[] = {{"CapInh:", &Sets::inheritable},
                                                                  {"CapPrm:", &Sets::permitted},
                                                                  {"CapEff:", &Sets::effective},
                                                                  {"CapBnd:", &Sets::bounding},
                                                                  {"CapAmb:", &Sets::ambient}};
  while (std::getline(in, line)) {
    for (const auto& [key, member] : fields) {
      if (line.rfind(key, 0) == 0) {
        s.*member = std::stoull(line.substr(std::strlen(key)), nullptr, 16);
        ++found;
      }
    }
  }
  if (found != 5) return make_error(Errc::kIo, "no capability sets in " + path);
  return s;
}

Result<Sets> keep_only(std::uint64_t keep) {
  auto before = read();
  if (!before) return before.error();
  keep &= before->permitted;
  // Already there (e.g. the controller started by its unit as an
  // unprivileged user): no system call at all. The controller's unit denies
  // @privileged, capset included, with EPERM.
  if (before->effective == keep && before->permitted == keep && before->inheritable == 0 && before->ambient == 0 &&
      (before->effective & bit(kSetpcap)) == 0) {
    return *before;
  }
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
    return make_error(Errc::kIo, std::string("clearing the ambient capabilities: ") + std::strerror(errno));
  }
  // The bounding set first: shrinking it needs CAP_SETPCAP, which goes next.
  if (before->effective & bit(kSetpcap)) {
    for (int cap = 0; cap <= last_cap(); ++cap) {
      if ((keep & bit(cap)) == 0 && (before->bounding & bit(cap)) != 0 && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
        return make_error(Errc::kIo, "dropping " + names(bit(cap)) + " from the bounding set: " + std::strerror(errno));
      }
    }
  }
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  for (int i = 0; i < 2; ++i) {
    const auto word = static_cast<std::uint32_t>(keep >> (32 * i));
    data[i].effective = word;
    data[i].permitted = word;
    data[i].inheritable = 0;
  }
  if (syscall(SYS_capset, &hdr, data) != 0) {
    return make_error(Errc::kIo, std::string("capset: ") + std::strerror(errno));
  }
  return read();
}

std::string names(std::uint64_t set) {
  std::string out;
  for (int cap = 0; cap < 64; ++cap) {
    if ((set & bit(cap)) == 0) continue;
    if (!out.empty()) out += ',';
    out += cap < static_cast<int>(std::size(kNames)) ? kNames[cap] : "cap_" + std::to_string(cap);
  }
  return out.empty() ? "none" : out;
}

}  // namespace vmtide::caps
