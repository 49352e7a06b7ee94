// SPDX-License-Identifier: Apache-2.0
// Pure signal helpers for the model: an EWMA over irregular sample intervals,
// a "condition held for N seconds" tracker, and a hysteresis band. Each is a
// value type updated by a pure function that takes `now`, so the daemon, the
// planner and the simulator replay identically.
#pragma once

#include <chrono>
#include <vector>

#include "cluster.h"

namespace vmtide::model {

// Exponentially weighted moving average with a time constant tau: a sample
// after a gap dt gets weight alpha = 1 - exp(-dt / tau), so irregular or
// missed ticks weigh what their time span is worth (a fixed alpha per
// sample would over-weigh bursts of samples).
struct Ewma {
  double value = 0.0;
  TimeNs last{0};
  bool primed = false;  // false until the first sample, which is taken as is
  bool operator==(const Ewma&) const = default;
};

// Returns the updated average. A sample older than the last one (dt < 0) is
// ignored; tau <= 0 means no smoothing (the sample replaces the value).
[[nodiscard]] Ewma ewma_update(Ewma s, double sample, TimeNs now, std::chrono::nanoseconds tau) noexcept;

// A VM's dirty curve D(tau) averaged over its samples, point by point with
// the EWMA above. One sample catches one moment of the guest: a VM that
// alternates busy and quiet phases, measured in a busy one and migrated in
// a quiet one, was predicted 45 % too long from its last sample
// (docs/prediction-accuracy.md); the average is the mixture of its phases,
// and it also averages out QEMU's page-sampling noise. Points are matched
// by window (within 10 %); a sample with other windows restarts the
// average, since the curve's shape is what the windows sample.
struct CurveEwma {
  std::vector<std::chrono::nanoseconds> tau;  // the windows of the last sample, ascending
  std::vector<Ewma> bytes;                    // one average per window
  bool operator==(const CurveEwma&) const = default;
};

[[nodiscard]] CurveEwma curve_ewma_update(CurveEwma s, const std::vector<DirtyPoint>& sample, TimeNs now,
                                          std::chrono::nanoseconds tau);
// The averaged curve (empty before the first sample). Averages of
// non-decreasing curves taken with the same weights are non-decreasing.
[[nodiscard]] std::vector<DirtyPoint> curve_value(const CurveEwma& s);

// "Condition true continuously since `since`". Sampled at the caller's
// cadence: a false sample resets it.
struct Sustained {
  bool active = false;
  TimeNs since{0};
  bool operator==(const Sustained&) const = default;
};

[[nodiscard]] Sustained sustained_update(Sustained s, bool condition, TimeNs now) noexcept;
// How long the condition has held at `now` (0 when not active).
[[nodiscard]] std::chrono::nanoseconds sustained_for(const Sustained& s, TimeNs now) noexcept;
[[nodiscard]] bool sustained_at_least(const Sustained& s, TimeNs now, std::chrono::nanoseconds min) noexcept;

// Hysteresis band on a load fraction: a host enters kHot at >= high_enter
// and stays hot while > high_exit; it enters kCold at <= low_enter and stays
// cold while < low_exit. Separate enter/exit levels keep a load hovering
// around one threshold from flapping the state (and the planner) each round.
enum class Zone { kNormal, kHot, kCold };

struct Band {
  double high_enter = 0.85;
  double high_exit = 0.75;
  double low_enter = 0.20;
  double low_exit = 0.30;
};

[[nodiscard]] Zone zone_update(Zone prev, double load_frac, const Band& band) noexcept;
[[nodiscard]] const char* zone_name(Zone z) noexcept;

}  // namespace vmtide::model
