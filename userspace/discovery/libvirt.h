// SPDX-License-Identifier: Apache-2.0
// libvirt discovery: the running domains (name, UUID, memory, vCPUs) and
// their lifecycle events, from a libvirt daemon; each domain's QEMU process
// and vCPU threads from /proc, matched by the `-uuid` libvirt puts on every
// QEMU command line (libvirt's API does not expose thread ids). Survives a
// daemon restart: the connection is reopened when it closes.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "procfs.h"
#include "vmtide/result.h"

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
// page-sampling): the fallback where the kernel has no soft-dirty.
struct HypervisorDirtyRate {
  double mib_per_s = 0;
  std::int64_t start_time_s = 0;  // when the measurement started (identifies it)
  std::int64_t period_s = 0;
};

// A source of the VMs running on this host: the seam between the agent's
// sampler and libvirt or /proc (and fakes in tests).
class VmSource {
 public:
  virtual ~VmSource() = default;
  virtual const char* name() const = 0;
  // The VMs running now. A VM whose process cannot be found (yet) is left out.
  [[nodiscard]] virtual Result<std::vector<QemuProcess>> scan() = 0;
  // Lifecycle events since the last call (libvirt only).
  virtual std::vector<LifecycleEvent> drain_events() { return {}; }
  // The hypervisor's dirty-rate estimate (libvirt only): start a
  // measurement of `seconds`, then poll until it is measured.
  virtual bool supports_dirty_rate() const { return false; }
  [[nodiscard]] virtual Status start_dirty_rate(const std::string& /*uuid*/, int /*seconds*/) {
    return make_error(Errc::kUnsupported, "no hypervisor dirty rate from this source");
  }
  // nullopt while unstarted or measuring.
  [[nodiscard]] virtual Result<std::optional<HypervisorDirtyRate>> dirty_rate(const std::string& /*uuid*/) {
    return make_error(Errc::kUnsupported, "no hypervisor dirty rate from this source");
  }
};

class ProcfsSource final : public VmSource {
 public:
  explicit ProcfsSource(std::vector<std::uint32_t> extra_pids = {}) : extra_pids_(std::move(extra_pids)) {}
  const char* name() const override { return "procfs"; }
  Result<std::vector<QemuProcess>> scan() override { return scan_qemu_processes("/proc", extra_pids_); }

 private:
  std::vector<std::uint32_t> extra_pids_;
};

class LibvirtSource final : public VmSource {
 public:
  // Opens `uri` (e.g. "qemu:///system"), read-write if allowed (for
  // dirty-rate measurements), else read-only, and subscribes to lifecycle
  // events. kIo with libvirt's message on failure.
  [[nodiscard]] static Result<std::unique_ptr<LibvirtSource>> open(const std::string& uri);
  ~LibvirtSource() override;

  const char* name() const override { return "libvirt"; }
  // Reconnects first if the daemon went away; kIo if it is still gone.
  Result<std::vector<QemuProcess>> scan() override;
  std::vector<LifecycleEvent> drain_events() override;
  // Needs a read-write connection (as root): open() tries one first.
  bool supports_dirty_rate() const override;
  Status start_dirty_rate(const std::string& uuid, int seconds) override;
  Result<std::optional<HypervisorDirtyRate>> dirty_rate(const std::string& uuid) override;

  // Waits up to `timeout` for the next lifecycle event (tests, tools).
  std::optional<LifecycleEvent> wait_event(std::chrono::milliseconds timeout);
  bool connected() const;
  std::uint64_t reconnects() const;

  struct Impl;

 private:
  explicit LibvirtSource(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace vmtide::discovery
