// SPDX-License-Identifier: Apache-2.0
// The QMP back-end of executor::Executor: drives QEMU's own migration over
// its monitor socket, as Proxmox VE does, for QEMUs that libvirt does not
// manage (the lab, procfs-discovered guests). start() =
// migrate-set-capabilities (events, auto-converge) + migrate-set-parameters
// (max-bandwidth, downtime-limit) + migrate; poll() = query-migrate;
// abort() = migrate_cancel; a migration past its timeout is cancelled and
// reported kFailed "timeout". The reply parsing and the state logic are pure
// functions below, so unit tests drive them without QEMU.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "executor.h"
#include "json_reader.h"
#include "qmp.h"
#include "vmtide/result.h"

namespace vmtide::executor {

using QmpClock = discovery::QmpClock;

// query-migrate's reply: the MigrationInfo fields vmtide uses (QEMU's
// qapi/migration.json). Times in ms, sizes in bytes, as QEMU reports them.
struct QueryMigrate {
  std::string status;  // none, setup, active, device, completed, failed, cancelling, cancelled, ...
  std::optional<std::int64_t> total_time_ms;  // so far while active; final once completed
  std::optional<std::int64_t> downtime_ms;    // once completed
  std::optional<std::int64_t> setup_time_ms;
  std::optional<std::int64_t> expected_downtime_ms;
  std::uint64_t transferred = 0;       // ram.transferred: RAM bytes sent, all passes
  std::uint64_t remaining = 0;         // ram.remaining: dirty RAM bytes not yet sent
  std::uint64_t ram_total = 0;         // ram.total
  std::uint64_t dirty_sync_count = 0;  // ram.dirty-sync-count: bitmap syncs (setup and final one included)
  std::uint64_t downtime_bytes = 0;    // ram.downtime-bytes: sent while the guest was stopped (QEMU >= 8.1)
  std::uint64_t normal_pages = 0;      // ram.normal: full pages sent
  std::uint64_t zero_pages = 0;        // ram.duplicate: zero pages sent as headers
  double dirty_pages_rate = 0;         // ram.dirty-pages-rate: pages/s over the last sync period
  double mbps = 0;                     // ram.mbps: Mbit/s (10^6) over the last 100 ms window
  double throttle_pct = 0;             // cpu-throttle-percentage (auto-converge)
  std::string error_desc;              // error-desc, when failed
};

// Reads query-migrate's return value. kWireMissingKey without "status"
// (QEMU always sends it... except before any migration, where the reply is
// {} and the status is taken as "none"), kWireType for a field of the wrong
// type. Unknown fields are ignored.
[[nodiscard]] Result<QueryMigrate> parse_query_migrate(const discovery::json::Value& ret);

// Statuses in which QEMU is still moving (or unwinding) the migration.
[[nodiscard]] bool migration_in_progress(const std::string& status);

// The arguments of the three commands start() sends (JSON object text).
std::string migrate_capabilities_arguments(bool auto_converge);
std::string migrate_parameters_arguments(const MigrationRequest& req);
std::string migrate_arguments(const std::string& uri);

// What the executor knows of one migration between polls.
struct Tracked {
  MigrationRequest req;
  QmpClock::time_point started{};
  bool aborted = false;           // abort() was called
  bool timed_out = false;         // the timeout passed: cancelled by the executor
  Progress last;                  // the last progress reported while it ran
  std::optional<Progress> final;  // once it ended; polls then return it as is
};

// One poll's outcome: what to report, and whether to send migrate_cancel now.
struct Step {
  Progress progress;
  bool cancel = false;
};

// The state logic, pure: QEMU's answer `q` for migration `t` at `now`.
// completed -> kSucceeded with the final figures; failed -> kFailed with
// QEMU's error; cancelled -> kFailed ("timeout: aborted after N s",
// "aborted", or "cancelled outside vmtide"); "none" -> kFailed (the source
// QEMU knows of no migration: restarted?); every other status -> kRunning,
// and past the request's timeout the first such poll asks to cancel.
// Records the final progress in `t`.
Step advance(Tracked& t, const QueryMigrate& q, QmpClock::time_point now);

struct QmpExecutorOptions {
  // The QMP socket of VM `vm_id` on `host` (the source's monitor).
  // kInvalidArgument for an unknown host, kNotFound for a VM not there.
  std::function<Result<std::string>(const std::string& host, const std::string& vm_id)> qmp_socket;
  // Where the destination QEMU for `vm_id` on `host` listens for the
  // incoming migration (started with -incoming), e.g. "tcp:10.0.0.2:4444".
  std::function<Result<std::string>(const std::string& host, const std::string& vm_id)> incoming_uri;
  // Optional: every (host, vm id) the executor may ask, for running() to
  // find migrations it did not start. Empty: only its own.
  std::function<std::vector<std::pair<std::string, std::string>>()> known_vms;
  // Each monitor exchange is bounded by this, so every call returns quickly.
  std::chrono::milliseconds qmp_timeout{3000};
  std::function<QmpClock::time_point()> now = [] { return QmpClock::now(); };
};

// A sync seen while following a migration: when QEMU reported a new
// dirty-sync-count, and how much had been sent then.
struct SyncMark {
  double t_s = 0;  // since start()
  std::uint64_t sync_count = 0;
  std::uint64_t transferred = 0;
  double throttle_pct = 0;  // auto-converge's throttle then
  double dirty_pages_per_s = 0;  // QEMU's dirty-pages-rate then
};

class QmpExecutor final : public Executor {
 public:
  explicit QmpExecutor(QmpExecutorOptions opts);
  ~QmpExecutor() override;

  [[nodiscard]] Result<std::string> start(const MigrationRequest& req) override;
  [[nodiscard]] Result<Progress> poll(const std::string& handle) override;
  [[nodiscard]] Status abort(const std::string& handle) override;
  void forget(const std::string& handle) override;
  [[nodiscard]] Result<std::vector<Running>> running() override;
  [[nodiscard]] const char* name() const noexcept override { return "qmp"; }

  // Not part of the interface, for callers that can block (the lab, tests):
  // waits until the migration ends or `deadline`, awaiting QEMU's MIGRATION
  // events and polling every `period` in between (for the sync trace and
  // the timeout). Returns the last progress (kRunning at the deadline).
  [[nodiscard]] Result<Progress> wait(const std::string& handle, QmpClock::time_point deadline,
                                      std::chrono::milliseconds period = std::chrono::milliseconds{100});
  // QEMU's last query-migrate answer and the syncs seen, for calibration.
  [[nodiscard]] std::optional<QueryMigrate> last_query(const std::string& handle) const;
  [[nodiscard]] std::vector<SyncMark> syncs(const std::string& handle) const;

 private:
  struct Migration;
  Result<Progress> poll_locked(Migration& m);
  Status ensure_connected(Migration& m);

  QmpExecutorOptions opts_;
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Migration>> migrations_;
  std::uint64_t next_ = 1;
};

}  // namespace vmtide::executor
