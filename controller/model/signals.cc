// SPDX-License-Identifier: Apache-2.0
// EWMA, sustained-condition and hysteresis helpers (signals.h).
#include "signals.h"

#include <algorithm>
#include <cmath>

namespace vmtide::model {

Ewma ewma_update(Ewma s, double sample, TimeNs now, std::chrono::nanoseconds tau) noexcept {
  if (!s.primed || tau.count() <= 0) return Ewma{sample, now, true};
  const auto dt = now - s.last;
  if (dt.count() < 0) return s;
  const double alpha = 1.0 - std::exp(-static_cast<double>(dt.count()) / static_cast<double>(tau.count()));
  s.value += alpha * (sample - s.value);
  s.last = now;
  return s;
}

CurveEwma curve_ewma_update(CurveEwma s, const std::vector<DirtyPoint>& sample, TimeNs now,
                            std::chrono::nanoseconds tau) {
  bool same = s.tau.size() == sample.size();
  for (std::size_t i = 0; same && i < sample.size(); ++i) {
    const double a = static_cast<double>(s.tau[i].count()), b = static_cast<double>(sample[i].tau.count());
    same = std::abs(a - b) <= 0.1 * std::max(a, b);
  }
  if (!same) s = CurveEwma{};
  s.tau.resize(sample.size());
  s.bytes.resize(sample.size());
  for (std::size_t i = 0; i < sample.size(); ++i) {
    s.tau[i] = sample[i].tau;
    s.bytes[i] = ewma_update(s.bytes[i], static_cast<double>(sample[i].bytes), now, tau);
  }
  return s;
}

std::vector<DirtyPoint> curve_value(const CurveEwma& s) {
  std::vector<DirtyPoint> out;
  out.reserve(s.tau.size());
  for (std::size_t i = 0; i < s.tau.size(); ++i) {
    // Clamped below 2^64: a cast from a double beyond it is undefined.
    const double v = std::clamp(std::round(s.bytes[i].value), 0.0, 1.8e19);
    out.push_back(DirtyPoint{s.tau[i], static_cast<std::uint64_t>(v)});
  }
  return out;
}

Sustained sustained_update(Sustained s, bool condition, TimeNs now) noexcept {
  if (!condition) return Sustained{};
  if (!s.active) return Sustained{true, now};
  return s;
}

std::chrono::nanoseconds sustained_for(const Sustained& s, TimeNs now) noexcept {
  if (!s.active || now < s.since) return std::chrono::nanoseconds{0};
  return now - s.since;
}

bool sustained_at_least(const Sustained& s, TimeNs now, std::chrono::nanoseconds min) noexcept {
  return s.active && sustained_for(s, now) >= min;
}

Zone zone_update(Zone prev, double load_frac, const Band& band) noexcept {
  if (prev == Zone::kHot && load_frac > band.high_exit) return Zone::kHot;
  if (prev == Zone::kCold && load_frac < band.low_exit) return Zone::kCold;
  if (load_frac >= band.high_enter) return Zone::kHot;
  if (load_frac <= band.low_enter) return Zone::kCold;
  return Zone::kNormal;
}

const char* zone_name(Zone z) noexcept {
  switch (z) {
    case Zone::kNormal:
      return "normal";
    case Zone::kHot:
      return "hot";
    case Zone::kCold:
      return "cold";
  }
  return "unknown";
}

}  // namespace vmtide::model
