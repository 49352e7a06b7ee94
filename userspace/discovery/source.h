// SPDX-License-Identifier: Apache-2.0
// VmSource: the seam between the agent's sampler and whatever says which
// VMs run here (libvirt, /proc, fakes in tests), with the hypervisor's
// dirty-rate estimate where the kernel has no soft-dirty.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "procfs.h"
#include "vmtide/result.h"
#include "vmtide/wire/messages.h"

namespace vmtide::discovery {

enum class Lifecycle { kStarted, kStopped, kSuspended, kResumed, kMigrated, kOther };
const char* lifecycle_name(Lifecycle l) noexcept;  // "vm_started", "vm_stopped", ...

struct LifecycleEvent {
  std::string uuid;
  std::string name;
  Lifecycle kind = Lifecycle::kOther;
  int libvirt_event = 0;   // virDomainEventType
  int libvirt_detail = 0;  // its detail code
};

// A finished hypervisor dirty-rate measurement (QEMU calc-dirty-rate,
// page-sampling, asked directly over QMP or through libvirt): the fallback
// where the kernel has no soft-dirty.
struct HypervisorDirtyRate {
  double mib_per_s = 0;           // QEMU's "MB/s" are MiB/s (migration/dirtyrate.c shifts by 20)
  std::int64_t start_time_s = 0;  // when the measurement started (identifies it)
  std::uint64_t period_ns = 0;    // how long it sampled
};

class VmSource {
 public:
  virtual ~VmSource() = default;
  virtual const char* name() const = 0;
  // The VMs running now. A VM whose process cannot be found (yet) is left out.
  [[nodiscard]] virtual Result<std::vector<QemuProcess>> scan() = 0;
  // Lifecycle events since the last call (libvirt only).
  virtual std::vector<LifecycleEvent> drain_events() { return {}; }
  // The hypervisor's dirty-rate estimate: start a measurement of `seconds`
  // for VM `id`, then poll until it is measured. Errors the caller treats
  // specially: kUnsupported, this VM has no way to measure (e.g. no QMP
  // socket); kNotFound, the VM is gone.
  virtual bool supports_dirty_rate() const { return false; }
  // What samples name as their source when the estimate comes from here.
  virtual wire::DirtySource dirty_rate_source() const { return wire::DirtySource::kNone; }
  [[nodiscard]] virtual Status start_dirty_rate(const std::string& /*id*/, int /*seconds*/) {
    return make_error(Errc::kUnsupported, "no hypervisor dirty rate from this source");
  }
  // nullopt while unstarted or measuring.
  [[nodiscard]] virtual Result<std::optional<HypervisorDirtyRate>> dirty_rate(const std::string& /*id*/) {
    return make_error(Errc::kUnsupported, "no hypervisor dirty rate from this source");
  }
};

}  // namespace vmtide::discovery
