// SPDX-License-Identifier: Apache-2.0
// The seam between the controller and the hypervisors: start a live
// migration without blocking, follow it, abort it, and after a restart ask
// which migrations are still running. Two back-ends implement it: libvirt
// (virDomainMigrateToURI3, peer-to-peer; the production path) and QMP (QEMU
// driven directly, as Proxmox VE does). Every call returns quickly; a
// back-end that needs blocking library calls runs them on its own threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "vmtide/result.h"

namespace vmtide::executor {

struct MigrationRequest {
  std::string vm_id;    // libvirt UUID (wire VmSample::id)
  std::string vm_name;  // for logs
  std::string src;      // controller host names (agents' `host`)
  std::string dst;
  double max_bandwidth_bytes_per_s = 0;  // 0: the hypervisor's default (unlimited)
  double downtime_limit_ms = 300;        // QEMU's downtime-limit
  bool auto_converge = false;
  // Abort (and report kFailed, "timeout") when not finished by then.
  std::chrono::nanoseconds timeout = std::chrono::minutes{10};
};

enum class State : std::uint8_t { kRunning, kSucceeded, kFailed };

// A migration's figures, live while it runs and final when it ended: what
// the controller records on the decision and calibrates its predictor with.
struct Progress {
  State state = State::kRunning;
  double elapsed_s = 0;
  std::uint64_t bytes = 0;            // RAM bytes sent so far (all passes)
  std::uint64_t remaining_bytes = 0;  // RAM still to send in this pass
  std::uint64_t passes = 0;           // dirty-bitmap syncs (libvirt "memory_iteration", QMP "dirty-sync-count")
  double dirty_pages_per_s = 0;       // as the hypervisor measures it during the migration
  double bandwidth_bytes_per_s = 0;   // as measured (QMP "mbps" / libvirt "memory_bps")
  double downtime_ms = 0;             // final; 0 while running
  double total_ms = 0;                // final; 0 while running
  double setup_ms = 0;                // before the first pass (QMP "setup-time", libvirt "setup_time"); 0: unknown
  std::uint64_t downtime_bytes = 0;   // final: RAM sent while the guest was stopped (QMP only); 0: unknown
  std::string error;                  // kFailed: what happened (e.g. "timeout: aborted after 600 s")
};

// A migration the hypervisor reports as running (after a controller restart
// the controller rebuilds its in-flight list from this before deciding).
struct Running {
  std::string vm_id;
  std::string src;
  std::string dst;  // empty when the back-end cannot tell
  std::string handle;
};

class Executor {
 public:
  virtual ~Executor() = default;

  // Starts a migration; returns a handle for poll/abort. Errors: unknown
  // host (kInvalidArgument), VM not on src (kNotFound), a migration of this
  // VM already running (kInvalidArgument), hypervisor refused (kIo).
  [[nodiscard]] virtual Result<std::string> start(const MigrationRequest& req) = 0;
  // The migration's state; once it reports kSucceeded or kFailed the handle
  // stays valid until forget().
  [[nodiscard]] virtual Result<Progress> poll(const std::string& handle) = 0;
  // Asks the hypervisor to cancel; the migration then ends kFailed.
  [[nodiscard]] virtual Status abort(const std::string& handle) = 0;
  virtual void forget(const std::string& handle) = 0;
  // Migrations the hypervisors report as running now, including ones this
  // process did not start (a previous controller's).
  [[nodiscard]] virtual Result<std::vector<Running>> running() = 0;
  [[nodiscard]] virtual const char* name() const noexcept = 0;
};

}  // namespace vmtide::executor
