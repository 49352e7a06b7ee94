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
#include "source.h"
#include "vmtide/result.h"

namespace vmtide::discovery {

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
  wire::DirtySource dirty_rate_source() const override { return wire::DirtySource::kLibvirt; }
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
