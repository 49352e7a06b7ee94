// SPDX-License-Identifier: Apache-2.0
// The libvirt executor: live migrations with virDomainMigrateToURI3, peer to
// peer (the source libvirtd drives the destination; the controller only
// starts, follows and aborts), pre-copy only, so that a VM always runs on
// exactly one host (docs/controller.md, "Executor").
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "executor.h"

// libvirt's typed parameters, without pulling libvirt.h into every user.
struct _virTypedParameter;

namespace vmtide::executor {

// How the controller and the source host's libvirtd reach one host.
struct LibvirtHost {
  // The controller connects here (e.g. qemu+tcp://10.77.0.11/system).
  std::string uri;
  // A source libvirtd connects here when this host is the destination (the
  // p2p "dconnuri"); it resolves in the source's network, not the
  // controller's. Empty: `uri`.
  std::string peer_uri;
  // Where QEMU sends the migration stream (VIR_MIGRATE_PARAM_URI, e.g.
  // tcp://10.77.0.12 for a dedicated migration network). Empty: the
  // destination's choice (its qemu.conf migration_host / hostname).
  std::string migrate_uri;
};

struct LibvirtExecutorOptions {
  // libvirt keepalive on every connection (needs libvirt's event loop,
  // which the executor starts): a host that stops answering fails the
  // calls in flight after about interval * count instead of hanging.
  std::chrono::seconds keepalive_interval{5};
  unsigned keepalive_count = 3;
  // How often the monitor looks for the migration job to appear (to set the
  // downtime limit) and retries an abort the hypervisor refused because the
  // job had not started yet.
  std::chrono::milliseconds job_poll{50};
};

// The flags every migration uses (see docs/controller.md, "Executor").
[[nodiscard]] unsigned long migration_flags(const MigrationRequest& req) noexcept;
// MiB/s for VIR_MIGRATE_PARAM_BANDWIDTH, rounded up (0: unlimited).
[[nodiscard]] std::uint64_t bandwidth_mib_per_s(double bytes_per_s) noexcept;
// Progress from virDomainGetJobStats' typed parameters; `completed` for
// VIR_DOMAIN_JOB_STATS_COMPLETED (downtime and total time are final then).
[[nodiscard]] Progress progress_from_job_stats(const _virTypedParameter* params, int n, bool completed);

class LibvirtExecutor final : public Executor {
 public:
  // Connects to nothing yet: each host's connection opens on first use and
  // reopens when libvirt reports it dead.
  explicit LibvirtExecutor(std::map<std::string, LibvirtHost> hosts, LibvirtExecutorOptions opts = {});
  // Leaves migrations in flight to libvirt (p2p: the source daemon finishes
  // or fails them on its own); a new executor's running() adopts them.
  ~LibvirtExecutor() override;
  LibvirtExecutor(const LibvirtExecutor&) = delete;
  LibvirtExecutor& operator=(const LibvirtExecutor&) = delete;

  [[nodiscard]] Result<std::string> start(const MigrationRequest& req) override;
  [[nodiscard]] Result<Progress> poll(const std::string& handle) override;
  [[nodiscard]] Status abort(const std::string& handle) override;
  void forget(const std::string& handle) override;
  // Every domain with a migration job on any configured host (job
  // operation migration_out on the source, paired with the host where the
  // same domain waits paused for the incoming migration), plus the
  // migrations this executor started whose job is not visible yet. One unreachable host makes it fail
  // (kIo): an in-flight list with a host missing would be a guess.
  [[nodiscard]] Result<std::vector<Running>> running() override;
  [[nodiscard]] const char* name() const noexcept override { return "libvirt"; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vmtide::executor
