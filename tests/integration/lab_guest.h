// SPDX-License-Identifier: Apache-2.0
// The lab guest as tests define it on a lab host (lab/build-guest builds
// its kernel and initramfs into a directory): its libvirt XML, and the
// dirtier's heartbeat on its serial console, a file QEMU appends to.
#pragma once

#include <libvirt/libvirt.h>

#include <fstream>
#include <iterator>
#include <regex>
#include <string>

namespace vmtide::testsupport {

inline std::string read_all(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// The dirtier's last heartbeat second on the console ("dirtier: t=N ..."),
// -1 before the first.
inline int last_heartbeat(const std::string& console) {
  static const std::regex re(R"(dirtier: t=(\d+) )");
  int last = -1;
  for (std::sregex_iterator it(console.begin(), console.end(), re), end; it != end; ++it) {
    last = std::stoi((*it)[1].str());
  }
  return last;
}

// A 1-vCPU TCG guest booting the lab kernel from `dir` (lab/build-guest's
// output), its console appended to `console`; `dirtier` is the kernel
// command line's workload, e.g. "vmtide.ws_mib=32 vmtide.rate=3000".
inline std::string lab_guest_xml(const std::string& name, const std::string& uuid, int ram_mib, const std::string& dir,
                                 const std::string& console, const std::string& dirtier) {
  return "<domain type='qemu'><name>" + name + "</name><uuid>" + uuid + "</uuid><memory unit='MiB'>" +
         std::to_string(ram_mib) +
         "</memory><vcpu>1</vcpu>"
         "<os><type arch='x86_64' machine='pc'>hvm</type><kernel>" +
         dir + "/guest-vmlinuz</kernel><initrd>" + dir + "/guest-initrd.gz</initrd><cmdline>console=ttyS0 quiet " +
         dirtier +
         "</cmdline></os><on_crash>destroy</on_crash>"
         "<devices><emulator>/usr/bin/qemu-system-x86_64</emulator><serial type='file'><source path='" +
         console + "' append='on'/></serial></devices></domain>";
}

// The state (VIR_DOMAIN_RUNNING, ...) of the domain `uuid` on `conn`; -1
// when it is not defined there.
inline int domain_state(virConnectPtr conn, const std::string& uuid) {
  virDomainPtr d = virDomainLookupByUUIDString(conn, uuid.c_str());
  if (d == nullptr) return -1;
  int state = -1, reason = 0;
  if (virDomainGetState(d, &state, &reason, 0) != 0) state = -1;
  virDomainFree(d);
  return state;
}

}  // namespace vmtide::testsupport
