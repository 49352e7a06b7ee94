// SPDX-License-Identifier: Apache-2.0
// Pre-copy live-migration prediction (DESIGN.md "Pre-copy prediction"):
// QEMU's loop over the VM's measured dirty curve D(tau), with auto-converge,
// and the constant-dirty-rate textbook baseline. Pure: values in, values out.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "vmtide/result.h"

namespace vmtide::predictor {

// D(tau): distinct pages dirtied within tau of a reset, as measured points,
// non-decreasing in both coordinates. Between points: linear. Beyond the
// last, where a pass longer than the longest window reads it (pass 0 of
// any large VM): the slope as it was decaying over the last two
// half-spans of the curve, e^(-k tau), a uniform writer's exact form; or
// the last slope held, when it was not decaying (or the mean rate through
// the origin for a single point). Capped at `ceiling_pages` (the writable
// working set, or RAM).
class DirtyCurve {
 public:
  struct Point {
    double tau_s = 0;
    double pages = 0;
  };
  // kInvalidArgument if points decrease, are negative or not finite.
  [[nodiscard]] static Result<DirtyCurve> make(std::vector<Point> points, double ceiling_pages);
  // A writer of `rate` pages/s spread uniformly over `ws_pages`:
  // W (1 - e^(-r tau / W)), sampled finely enough to interpolate.
  static DirtyCurve uniform_random(double rate_pages_per_s, double ws_pages);
  // A writer sweeping `ws_pages` sequentially: min(r tau, W).
  static DirtyCurve sequential(double rate_pages_per_s, double ws_pages);
  static DirtyCurve none() { return {}; }

  double at(double tau_s) const;
  // The most pages the curve ever reaches (the writable set).
  double ceiling() const { return ceiling_; }
  // Whether the curve is already flat at its shortest window (its first
  // point >= 90 % of its last, a window at least twice as long): the
  // writer rewrote its set within that window, so the curve bounds its
  // speed from below only, and linear interpolation from the origin below
  // it would be a guess that can be far too low (a CPU-bound writer on the
  // lab's 0.5 s window: 32 000 pages/s read for ~3 million). at() is then
  // flat below the first window too.
  bool saturated_at_first() const;

 private:
  // Sets tail_slope_ and tail_k_ from pts_ (at()'s extension).
  void fit_tail();

  std::vector<Point> pts_;
  double ceiling_ = 0;
  double tail_slope_ = 0;  // pages/s at the last point
  double tail_k_ = 0;      // 1/s: the slope's decay beyond it (0: held)
};

struct Inputs {
  double ram_bytes = 0;
  double nonzero_bytes = 0;  // what pass 0 sends in full (zero pages go as headers)
  double page_bytes = 4096;
  double zero_page_header_bytes = 8;  // QEMU sends a zero page as a flagged header
  DirtyCurve dirty;
  double bandwidth_bytes_per_s = 0;  // effective link rate, capped by max-bandwidth
  // The rate of the final stop-and-copy: QEMU sends it without the rate
  // limit ("flush all remaining blocks regardless of rate limiting",
  // ram_save_complete() in migration/ram.c), so at the link's (or the
  // sender's CPU's) own speed. 0: bandwidth_bytes_per_s.
  double link_bytes_per_s = 0;
  double downtime_limit_ms = 300;  // QEMU default (migrate-set-parameters downtime-limit)
  double device_state_ms = 5;      // stop-and-copy of device state, added to downtime
  double setup_ms = 20;            // migration setup before pass 0
  // QEMU's rate-limit period (BUFFER_DELAY, migration/migration.c): the
  // migration thread sends bandwidth x window, then waits for the window's
  // end, and checks for the switchover once per window.
  double window_ms = 100;
  // Share of its vCPU time the guest uses (0, 1]. A throttle of p lets the
  // vCPUs run (1 - p) of the time; a guest that needs only u of it keeps its
  // pace until (1 - p) < u, then slows by (1 - p) / u. 1: every cycle
  // counts (a CPU-bound writer); a wall-clock-paced writer with idle time
  // shrugs small throttles off (shared/notes/lab-facts.md).
  double vcpu_busy_frac = 1;
  // Auto-converge (QEMU: cpu-throttle-initial 20, -increment 10, max 99;
  // throttle when the bytes dirtied in a sync period exceed
  // throttle-trigger-threshold (50 %) of the bytes sent in it, twice).
  bool auto_converge = false;
  double throttle_initial_pct = 20;
  double throttle_increment_pct = 10;
  double throttle_max_pct = 99;
  double throttle_trigger_pct = 50;
  // Share of a throttle slice (10 ms per 10 ms / (1 - p)) the guest's own
  // work gets once the throttle sleeps it for most of each period: it
  // resumes from a long sleep first. 0.55 is what a CPU-bound writer got at
  // 99 % under TCG in the lab (23 MiB per second against 40 from its
  // unthrottled curve; docs/prediction-accuracy.md).
  double throttled_slice_use = 0.55;
  int max_passes = 300;
  double max_total_s = 3600;
};

struct Pass {
  double bytes = 0;
  double seconds = 0;
  double dirtied_pages = 0;  // pages dirtied while this pass ran: the next pass
  double throttle_pct = 0;
};

struct Prediction {
  bool converges = false;
  double total_s = 0;  // setup + passes + downtime
  double downtime_ms = 0;
  double bytes = 0;
  double stop_bytes = 0;  // of `bytes`, those sent while the guest is stopped
  // Iterative passes: the dirty-bitmap syncs QEMU makes while the guest
  // runs, i.e. its dirty-sync-count minus the sync at setup and the final
  // one in the stop-and-copy (passes_from_dirty_syncs). Rounded from
  // `syncs`, the model's expectation.
  int passes = 0;
  double syncs = 0;
  double final_throttle_pct = 0;
  std::vector<Pass> trace;
  // For a VM that does not converge: what would make it.
  std::optional<double> need_bandwidth_bytes_per_s;
  std::optional<double> need_throttle_pct;
};

// QEMU's pre-copy loop as its migration thread runs it (docs/predictor.md,
// "The model"): pass 0 sends every non-zero page (and zero-page headers) in
// rate-limited windows; once per window QEMU compares what is pending with
// the threshold (measured bandwidth x downtime limit) and, when below,
// syncs the dirty bitmap (pending = the leftover plus the pages dirtied
// since the last sync, D(t)) and stops the guest if that is still below
// (migration_iteration_run(), migration/migration.c; ram_state_pending_*()
// in migration/ram.c). So a pass ends with a leftover just under the
// threshold, a VM converges once one window's dirtying fits in one window's
// budget, it then stops with nearly a threshold's worth pending, and that
// stop-and-copy runs at the unthrottled link rate: downtimes far below the
// limit, as measured. A throttle of p makes a guest dirty
// D(min(1, (1 - p) / vcpu_busy_frac) tau) within tau.
[[nodiscard]] Result<Prediction> predict_precopy(const Inputs& in);

// The textbook model with a constant dirty rate R (bytes/s): V_0 = M,
// V_i = M (R/B)^i, stop when V_i <= B L, downtime V/B (Clark et al., NSDI
// 2005; Akoush et al., MASCOTS 2010). `dirty_bytes_per_s` replaces the
// curve; whole passes, no windows, no auto-converge: the baseline vmtide's
// model must beat.
[[nodiscard]] Result<Prediction> predict_constant_rate(const Inputs& in, double dirty_bytes_per_s);

// QEMU's dirty-sync-count (query-migrate, libvirt's memory_iteration)
// counts a sync at setup and one in the stop-and-copy besides the
// iterative passes Prediction::passes counts.
constexpr std::int64_t passes_from_dirty_syncs(std::int64_t dirty_sync_count) {
  return dirty_sync_count > 2 ? dirty_sync_count - 2 : 0;
}

}  // namespace vmtide::predictor
