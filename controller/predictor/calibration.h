// SPDX-License-Identifier: Apache-2.0
// Online calibration of the pre-copy predictor per host pair: after each
// finished migration, learn the bandwidth QEMU really achieved against the
// one the prediction assumed (CPU-bound senders, TCP, contention) and the
// rate of the stop-and-copy (the per-page cost while the guest is stopped),
// so the next prediction for the same pair starts from what the link did.
// Pure: values in, values out (DESIGN.md, "Pre-copy prediction").
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>

#include "precopy.h"

namespace vmtide::predictor {

// A finished migration's figures (QMP query-migrate or libvirt's job
// statistics), and the bandwidth its prediction assumed.
struct MigrationFigures {
  double assumed_bw_bytes_per_s = 0;    // Inputs::bandwidth_bytes_per_s of the prediction
  double assumed_stop_bytes_per_s = 0;  // its stop-and-copy rate (Inputs::link_bytes_per_s; 0: unknown)
  double total_ms = 0;
  double setup_ms = 0;
  double downtime_ms = 0;
  double bytes = 0;           // RAM bytes sent, all passes and the stop-and-copy
  double downtime_bytes = 0;  // of which sent while the guest was stopped (0: unknown)
  double page_bytes = 4096;
  bool succeeded = false;
};

// What a host pair's past migrations taught.
struct LinkCalibration {
  double bw_factor = 1;         // achieved / assumed bandwidth while iterating
  double stop_bytes_per_s = 0;  // stop-and-copy rate, bytes/s (0: not learnt yet)
  int migrations = 0;           // how many taught it
};

// Folds one migration into `prior` with weight `alpha` for the new
// evidence (the first one is taken whole). Failed or implausible figures
// (no time, no bytes) leave it unchanged. The stop-and-copy rate needs
// downtime_bytes: the time per page is (downtime - device state) / pages,
// with the device state time the predictor assumes (Inputs::device_state_ms).
// A downtime is a few milliseconds, so one stall on a busy host can read
// ten times slower: the stop-and-copy rate moves geometrically, from the
// assumed link rate when nothing was learnt, by at most 4x per migration.
[[nodiscard]] LinkCalibration calibrate(const LinkCalibration& prior, const MigrationFigures& f, double alpha = 0.5,
                                        double default_device_state_ms = 5);

// `in` with the pair's calibration applied: the effective bandwidth and,
// when learnt, the stop-and-copy rate.
[[nodiscard]] Inputs apply(Inputs in, const LinkCalibration& c);

// Calibration per (source, destination) host pair.
class CalibrationTable {
 public:
  void record(const std::string& src, const std::string& dst, const MigrationFigures& f, double alpha = 0.5);
  [[nodiscard]] LinkCalibration get(const std::string& src, const std::string& dst) const;
  [[nodiscard]] std::size_t size() const { return pairs_.size(); }

 private:
  std::map<std::pair<std::string, std::string>, LinkCalibration> pairs_;
};

// What a VM's own migrations showed of its writing. QEMU measures the
// guest's dirty rate during every pass (libvirt memory_dirty_rate, QMP
// ram.dirty-pages-rate), over the pass's own length: the scale the
// prediction needs, measured by the one process that really copies the
// pages. Its ratio to what the telemetry's curve said at that scale scales
// the VM's curve for its next predictions (DESIGN.md: "During a migration,
// the migration's own per-pass statistics are the best signal of all: use
// them to calibrate"). The ratio is bounded to [1/4, 4], since one pass can
// catch a burst, and fades back to 1 with a half-life, since the telemetry
// keeps measuring and the workload keeps changing.
// What a migration's own dirty rate should read if `curve` (the
// telemetry's) is right: QEMU's dirty-pages-rate sums, over a period of at
// least a second, the pages each sync found new, so `syncs` syncs in
// `dt_s` report syncs x D(dt_s / syncs) / dt_s pages/s. For a hot set
// that is many times the telemetry's D(2 s) / 2 s with nothing wrong on
// either side, which is why the ratio is taken against this, not that.
[[nodiscard]] double expected_sync_dirty_pages_per_s(const DirtyCurve& curve, double syncs, double dt_s);

// QEMU's dirty-pages-rate through one migration, as polls see it, each new
// figure paired with the telemetry's expectation over the same period.
// QEMU recomputes the figure at a sync at least a second after its last
// update, over the syncs since (migration_bitmap_sync() in
// migration/ram.c), so a figure covers the time since the previous one,
// or since the setup sync at the start: the first one is pass 0's.
class MigrationDirtyRate {
 public:
  explicit MigrationDirtyRate(double start_s = 0) : start_s_(start_s) {}
  // Whether a poll seeing `syncs` (QEMU's dirty-sync-count) and figure
  // `pages_per_s` brings a new figure (then observe() needs the curve).
  [[nodiscard]] bool is_new(std::uint64_t syncs, double pages_per_s) const {
    return pages_per_s > 0 && pages_per_s != last_ && syncs > start_syncs_;
  }
  void observe(double now_s, std::uint64_t syncs, double pages_per_s, const DirtyCurve& telemetry);
  [[nodiscard]] double measured_pages_per_s() const { return measured_; }  // 0 until a figure came
  [[nodiscard]] double expected_pages_per_s() const { return expected_; }

 private:
  double start_s_;
  std::uint64_t start_syncs_ = 1;  // the setup sync
  double last_ = 0;
  double measured_ = 0, expected_ = 0;
};

class VmDirtyCalibration {
 public:
  explicit VmDirtyCalibration(double half_life_s = 600) : half_life_s_(half_life_s) {}
  // `measured` during the migration and `modelled` by the telemetry, both
  // bytes/s; ignored unless both are > 0 and finite.
  void record(const std::string& vm, double measured_bytes_per_s, double modelled_bytes_per_s, double now_s);
  // The factor for the VM's dirty curve now: 1 when nothing was learnt.
  [[nodiscard]] double factor(const std::string& vm, double now_s) const;
  // Drops what has faded below 1 % of its effect.
  void prune(double now_s);
  [[nodiscard]] std::size_t size() const { return vms_.size(); }

 private:
  struct Evidence {
    double ratio = 1;
    double at_s = 0;
  };
  double half_life_s_;
  std::map<std::string, Evidence> vms_;
};

}  // namespace vmtide::predictor
