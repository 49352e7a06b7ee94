// SPDX-License-Identifier: Apache-2.0
// Pre-copy prediction (precopy.h).
#include "precopy.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace vmtide::predictor {
namespace {

bool finite_nonneg(double v) { return std::isfinite(v) && v >= 0; }

Status validate(const Inputs& in) {
  auto bad = [](const std::string& m) { return make_error(Errc::kInvalidArgument, "predictor: " + m); };
  if (!(std::isfinite(in.ram_bytes) && in.ram_bytes > 0)) return bad("ram_bytes must be > 0");
  if (!finite_nonneg(in.nonzero_bytes) || in.nonzero_bytes > in.ram_bytes)
    return bad("nonzero_bytes must be in [0, ram_bytes]");
  if (!(std::isfinite(in.page_bytes) && in.page_bytes > 0)) return bad("page_bytes must be > 0");
  if (!(std::isfinite(in.bandwidth_bytes_per_s) && in.bandwidth_bytes_per_s > 0)) return bad("bandwidth must be > 0");
  for (double v : {in.downtime_limit_ms, in.device_state_ms, in.setup_ms, in.zero_page_header_bytes, in.max_total_s}) {
    if (!finite_nonneg(v)) return bad("times and sizes must be finite and >= 0");
  }
  if (in.max_passes < 1) return bad("max_passes must be >= 1");
  if (!finite_nonneg(in.link_bytes_per_s)) return bad("link_bytes_per_s must be finite and >= 0");
  if (!(std::isfinite(in.window_ms) && in.window_ms > 0)) return bad("window_ms must be > 0");
  if (!(std::isfinite(in.throttled_slice_use) && in.throttled_slice_use > 0 && in.throttled_slice_use <= 1)) {
    return bad("throttled_slice_use must be in (0, 1]");
  }
  if (!(std::isfinite(in.vcpu_busy_frac) && in.vcpu_busy_frac > 0 && in.vcpu_busy_frac <= 1)) {
    return bad("vcpu_busy_frac must be in (0, 1]");
  }
  if (!(in.throttle_max_pct >= 0 && in.throttle_max_pct < 100)) return bad("throttle_max_pct must be in [0, 100)");
  return {};
}

// The textbook loop (the baseline): whole passes, each sending what the
// previous one dirtied, and a stop when the rest fits bandwidth x limit.
// `fixed_throttle_pct` >= 0 pins the throttle from the start (for "which
// throttle would make it converge"); auto-converge then does not change it.
Prediction run_textbook(const Inputs& in, double fixed_throttle_pct) {
  Prediction p;
  const double zero_pages = (in.ram_bytes - in.nonzero_bytes) / in.page_bytes;
  const double threshold = in.bandwidth_bytes_per_s * in.downtime_limit_ms / 1000.0;
  double to_send = in.nonzero_bytes + zero_pages * in.zero_page_header_bytes;
  double throttle = fixed_throttle_pct >= 0 ? fixed_throttle_pct : 0;
  int high = 0;  // QEMU's dirty_rate_high_cnt
  p.total_s = in.setup_ms / 1000.0;
  for (int pass = 0; pass < in.max_passes; ++pass) {
    const double t = to_send / in.bandwidth_bytes_per_s;
    const double dirtied = in.dirty.at((1.0 - throttle / 100.0) * t);
    p.trace.push_back({to_send, t, dirtied, throttle});
    p.total_s += t;
    p.bytes += to_send;
    const double remaining = dirtied * in.page_bytes;
    if (in.auto_converge && fixed_throttle_pct < 0) {
      if (remaining > in.throttle_trigger_pct / 100.0 * to_send) {
        if (++high >= 2) {
          throttle = throttle == 0 ? in.throttle_initial_pct
                                   : std::min(in.throttle_max_pct, throttle + in.throttle_increment_pct);
          high = 0;
        }
      }
    }
    if (remaining <= threshold) {  // stop and copy
      p.converges = true;
      p.passes = pass + 1;
      p.syncs = p.passes;
      p.downtime_ms = remaining / in.bandwidth_bytes_per_s * 1000.0 + in.device_state_ms;
      p.total_s += p.downtime_ms / 1000.0;
      p.bytes += remaining;
      p.stop_bytes = remaining;
      p.final_throttle_pct = throttle;
      return p;
    }
    if (p.total_s > in.max_total_s) break;
    to_send = remaining;
  }
  p.passes = static_cast<int>(p.trace.size());
  p.syncs = p.passes;
  p.final_throttle_pct = throttle;
  return p;
}

// E[n]: the expected number of one-window cycles QEMU runs, after the
// first check that finds the new dirtying y below one window's budget G,
// before it switches over. At that check the leftover L is uniform over
// the window before the threshold, so it switches over when T - L > y,
// with probability (G - y) / G; otherwise each further window sends G and
// brings back yw (one window's dirtying), so the leftover falls by
// s = G - yw per cycle, and the cycles needed are ceil(d / s) for the
// excess d = L + y - T, uniform over (y - G, y]:
//   E[n] = (1/G) integral_0^y ceil(d/s) dd = (s m(m+1)/2 + (m+1) r) / G,
// m = floor(y/s), r = y - m s.
// QEMU's throttle timeslice (CPU_THROTTLE_TIMESLICE_NS, system/cpu-throttle.c).
constexpr double kThrottleSliceS = 0.010;

double end_cycles(double y, double s, double g) {
  if (y <= 0) return 0;
  const double m = std::floor(y / s);
  const double r = y - m * s;
  return (s * m * (m + 1) / 2 + (m + 1) * r) / g;
}

// QEMU's loop as its migration thread runs it (precopy.h). All amounts are
// bytes of pages (what QEMU's estimate counts) unless named *_send.
// `fixed_throttle_pct` as for run_textbook().
Prediction run_qemu(const Inputs& in, double fixed_throttle_pct) {
  Prediction p;
  const double page = in.page_bytes;
  const double bw = in.bandwidth_bytes_per_s;
  const double link = in.link_bytes_per_s > 0 ? in.link_bytes_per_s : bw;
  const double window_s = in.window_ms / 1000.0;
  // migration_update_counters(): threshold_size = measured bandwidth x
  // downtime limit. The window before a check is a full one while there is
  // more than a window's worth to send, so the measured bandwidth is the
  // rate the link is driven at.
  const double threshold = bw * in.downtime_limit_ms / 1000.0;
  const double window = bw * window_s;  // one window's budget
  // A check lands up to a window's budget below the threshold. Under a
  // limit shorter than a window (threshold < budget) the loop is another:
  // a pass runs the bitmap empty within a window (or ends at a window's
  // start below the threshold), syncs at once, and when what that sync
  // finds fits the window's remaining budget it goes at the link's speed
  // and the next sync, milliseconds later, finds next to nothing: QEMU
  // switches over there, far below the limit (QEMU's own trace of a 50 ms
  // limit, docs/predictor.md). Either way a pass's fresh dirt must fit a
  // window's budget, not the threshold.
  const bool quick = threshold < window;
  // The mean leftover when a pass ends.
  const double leftover = quick ? threshold * threshold / (2 * window) : threshold - window / 2;
  const double ram_pages = in.ram_bytes / page;
  const double nonzero_frac = in.nonzero_bytes / in.ram_bytes;
  // Bytes sent per byte of pending pages in pass 0: zero pages go as headers.
  const double pass0_send_frac = nonzero_frac + (1 - nonzero_frac) * in.zero_page_header_bytes / page;
  const double busy = std::clamp(in.vcpu_busy_frac, 1e-3, 1.0);
  auto speed = [&](double throttle_pct) { return std::min(1.0, (1 - throttle_pct / 100) / busy); };
  // The pages dirtied in `t` (guest time) that are new to the bitmap:
  // those landing on pages still pending (the leftover, L pages) were going
  // to be sent anyway. In pass 0 the leftover is the tail of the RAM scan,
  // a random slice of RAM: a share L / RAM of the new pages. Later it is
  // pages dirtied in the previous pass (guest time a); the pages written in
  // both that and this one (b) number D(a) + D(b) - D(a + b) for a steady
  // writer (two adjacent intervals make one), so a page dirtied in both is
  // k = (D(a) + D(b) - D(a + b)) / (D(a) D(b)) times likelier than chance
  // over RAM... and the new pages hit the leftover with probability L k.
  // For a uniform writer over W pages k = 1 / W (share L / W); a hot set
  // makes k, and the overlap, large; a sequential sweep makes it 0.
  auto fresh = [&](double t, double prev_t, bool pass0) {
    const double d = in.dirty.at(t);
    if (!(d > 0)) return 0.0;
    const double lp = leftover / page;
    if (pass0) return d * std::max(0.0, 1 - lp / ram_pages);
    const double da = in.dirty.at(prev_t);
    if (!(da > 0)) return d;
    const double both = std::max(0.0, da + d - in.dirty.at(prev_t + t));
    return d * std::max(0.0, 1 - std::min(1.0, lp * both / (da * d)));
  };

  double throttle = fixed_throttle_pct >= 0 ? fixed_throttle_pct : 0;
  int high = 0;  // dirty_rate_high_cnt (migration_trigger_throttle(), migration/ram.c)
  double period_s = 0, period_dirty = 0, period_sent = 0;
  p.total_s = in.setup_ms / 1000.0;
  // Pass 0 runs until what is left of RAM is below the threshold.
  const double bytes0 = in.ram_bytes * pass0_send_frac;
  double send = std::max(0.0, bytes0 - leftover * pass0_send_frac);
  double leftover_send_frac = pass0_send_frac;
  double prev_t = 0;  // guest time of the previous pass
  for (int pass = 0; pass < in.max_passes; ++pass) {
    const double t = std::max(send / bw, window_s);  // a check comes once per window
    const double gt = speed(throttle) * t;           // the guest's own time in it
    const double dirtied_pages = in.dirty.at(gt);
    // What the sync closing this pass adds to the leftover.
    const double y = fresh(gt, prev_t, pass == 0) * page;
    p.trace.push_back({send, t, dirtied_pages, throttle});
    p.total_s += t;
    p.bytes += send;
    p.syncs += 1;
    // Auto-converge is judged at a sync at most once a second, on the
    // period's dirtied against sent bytes (migration_bitmap_sync()).
    period_s += t;
    period_dirty += y;
    period_sent += send;
    if (in.auto_converge && fixed_throttle_pct < 0 && period_s >= 1.0) {
      if (period_dirty > in.throttle_trigger_pct / 100.0 * period_sent && ++high >= 2) {
        // mig_throttle_guest_down(): initial, then + increment, up to max.
        throttle = throttle == 0 ? std::min(in.throttle_initial_pct, in.throttle_max_pct)
                                 : std::min(in.throttle_max_pct, throttle + in.throttle_increment_pct);
        high = 0;
      }
      period_s = period_dirty = period_sent = 0;
    }
    if (y < window) {
      // The end: one window's dirtying now fits one window's budget.
      const double gw = speed(throttle) * window_s;
      const double yw = std::min(y, fresh(gw, gw, pass == 0) * page);
      const double s = window - yw;
      const double n = end_cycles(y, s, window);
      const double first = (window - y) / window;  // P(switch over at this check)
      p.total_s += n * window_s;
      p.bytes += n * window;
      p.syncs += n;
      double final_bytes;
      if (quick) {
        // The last sync's pages go live at the link's speed; the one after
        // finds what was written meanwhile, and that is the stop-and-copy.
        const double resend = first * y + (1 - first) * yw;
        const double gap = speed(throttle) * resend / link;
        final_bytes = fresh(gap, gw, false) * page;
        p.total_s += resend / link;
        p.bytes += resend;
        p.syncs += 1;
      } else {
        // A VM smaller than the threshold leaves all of it for the stop.
        const double left_first = std::min(threshold - (window + y) / 2, in.ram_bytes);
        const double at_first = leftover_send_frac * left_first + y;
        const double later = leftover_send_frac * (threshold - (window + yw) / 2) + yw;
        final_bytes = std::max(0.0, first * at_first + (1 - first) * later);
      }
      p.converges = true;
      p.passes = static_cast<int>(std::lround(p.syncs));
      p.downtime_ms = final_bytes / link * 1000.0 + in.device_state_ms;
      p.total_s += p.downtime_ms / 1000.0;
      p.bytes += final_bytes;
      p.stop_bytes = final_bytes;
      p.final_throttle_pct = throttle;
      return p;
    }
    // A heavy throttle runs the guest in bursts: one 10 ms slice every
    // 10 ms / (1 - p) (CPU_THROTTLE_TIMESLICE_NS, cpu_throttle_thread() in
    // system/cpu-throttle.c). Once that period outlasts a window, most
    // windows see no writes at all, and QEMU switches over at the first
    // quiet check after the last burst is sent: if a burst drains before
    // the next comes.
    if (throttle > 0) {
      const double period = kThrottleSliceS / (1 - throttle / 100);
      if (period > window_s + 1e-12) {
        // A slice covers 10 ms of the guest's own schedule at full speed;
        // a guest that idles (busy u) catches up 10 ms / u of it.
        // (speed(p) x period, all of it in the one slice), less what the
        // resumption from the long sleep takes.
        // (A curve flat from its first window makes the burst all of the
        // set: DirtyCurve::at().)
        const double burst_gt = std::min(period, kThrottleSliceS * in.throttled_slice_use / busy);
        const double burst = fresh(burst_gt, prev_t > 0 ? prev_t : burst_gt, pass == 0) * page;
        if (burst < bw * (period - window_s)) {
          // Send it (burst / bw), then wait for a quiet check: half the
          // quiet part of a period on average.
          const double wait_s = burst / bw + (period - window_s - burst / bw) / 2 + window_s;
          const double final_bytes = leftover_send_frac * std::max(0.0, threshold - window / 2);
          p.total_s += wait_s;
          p.bytes += burst;
          p.syncs += burst > window ? 2 : 1;  // the crossing after the burst, then the quiet check
          p.converges = true;
          p.passes = static_cast<int>(std::lround(p.syncs));
          p.downtime_ms = final_bytes / link * 1000.0 + in.device_state_ms;
          p.total_s += p.downtime_ms / 1000.0;
          p.bytes += final_bytes;
          p.stop_bytes = final_bytes;
          p.final_throttle_pct = throttle;
          return p;
        }
      }
    }
    if (p.total_s > in.max_total_s) break;
    // Pending is now leftover + y; the next check below the threshold
    // comes once about y has been sent.
    send = y;
    prev_t = gt;
    leftover_send_frac = 1;
  }
  p.passes = static_cast<int>(p.trace.size());
  p.final_throttle_pct = throttle;
  return p;
}

using Runner = Prediction (*)(const Inputs&, double);

// What would make a VM converge that does not: the least bandwidth
// (bisection up to 1 TB/s) and the least throttle held from the start
// (bisection over 0..max), each checked by running the loop again.
void what_would_converge(const Inputs& in, Runner run, Prediction& p) {
  Inputs b = in;
  double lo = in.bandwidth_bytes_per_s, hi = 1e12;
  b.bandwidth_bytes_per_s = hi;
  if (b.link_bytes_per_s > 0) b.link_bytes_per_s = std::max(b.link_bytes_per_s, hi);
  if (run(b, -1).converges) {
    for (int i = 0; i < 60 && hi / lo > 1.001; ++i) {
      b.bandwidth_bytes_per_s = std::sqrt(lo * hi);
      (run(b, -1).converges ? hi : lo) = b.bandwidth_bytes_per_s;
    }
    p.need_bandwidth_bytes_per_s = hi;
  }
  if (run(in, in.throttle_max_pct).converges) {
    double tlo = 0, thi = in.throttle_max_pct;
    for (int i = 0; i < 30 && thi - tlo > 0.5; ++i) {
      const double mid = (tlo + thi) / 2;
      (run(in, mid).converges ? thi : tlo) = mid;
    }
    p.need_throttle_pct = std::ceil(thi);
  }
}

}  // namespace

Result<DirtyCurve> DirtyCurve::make(std::vector<Point> points, double ceiling_pages) {
  if (!finite_nonneg(ceiling_pages)) return make_error(Errc::kInvalidArgument, "dirty curve: bad ceiling");
  double prev_tau = 0, prev_pages = 0;
  for (const auto& pt : points) {
    if (!finite_nonneg(pt.tau_s) || !finite_nonneg(pt.pages) || pt.tau_s <= prev_tau || pt.pages < prev_pages) {
      return make_error(Errc::kInvalidArgument,
                        "dirty curve: points must have increasing tau and non-decreasing pages, >= 0");
    }
    prev_tau = pt.tau_s;
    prev_pages = pt.pages;
  }
  DirtyCurve c;
  c.pts_ = std::move(points);
  c.ceiling_ = ceiling_pages;
  c.fit_tail();
  return c;
}

void DirtyCurve::fit_tail() {
  tail_slope_ = tail_k_ = 0;
  if (pts_.empty()) return;
  const Point& last = pts_.back();
  // The last point at or before half of the span before it (the origin if
  // none), and again: two segments, each at least a quarter of the span,
  // so the fine buckets of a soft-dirty curve do not make it noisy.
  auto before = [&](double tau) {
    Point at{0, 0};
    for (const Point& p : pts_) {
      if (p.tau_s <= tau) at = p;
    }
    return at;
  };
  const Point h = before(last.tau_s / 2);
  const double sb = (last.pages - h.pages) / (last.tau_s - h.tau_s);
  tail_slope_ = sb;
  if (h.tau_s <= 0) return;  // one segment: held
  const Point q = before(h.tau_s / 2);
  const double sa = (h.pages - q.pages) / (h.tau_s - q.tau_s);
  if (!(sb > 0 && sa > sb)) return;  // not decaying: held
  // Mean slopes over [q, h] and [h, last], read at their midpoints.
  const double k = std::log(sa / sb) / ((last.tau_s - q.tau_s) / 2);
  tail_k_ = k;
  tail_slope_ = sb * std::exp(-k * (last.tau_s - (h.tau_s + last.tau_s) / 2));
}

DirtyCurve DirtyCurve::uniform_random(double rate, double ws) {
  DirtyCurve c;
  if (!(rate > 0 && ws > 0)) return c;
  // Up to five time constants (W/r), where D is within 1 % of W.
  const double span = 5.0 * ws / rate;
  for (int k = 1; k <= 64; ++k) {
    const double tau = span * k / 64.0;
    c.pts_.push_back({tau, ws * (1.0 - std::exp(-rate * tau / ws))});
  }
  c.ceiling_ = ws;
  c.fit_tail();
  return c;
}

DirtyCurve DirtyCurve::sequential(double rate, double ws) {
  DirtyCurve c;
  if (!(rate > 0 && ws > 0)) return c;
  c.pts_.push_back({ws / rate, ws});
  c.ceiling_ = ws;
  c.fit_tail();
  return c;
}

bool DirtyCurve::saturated_at_first() const {
  if (pts_.size() < 2) return false;
  const Point& first = pts_.front();
  const Point& last = pts_.back();
  return first.pages > 0 && last.tau_s >= 2 * first.tau_s && first.pages >= 0.9 * last.pages;
}

double DirtyCurve::at(double tau) const {
  if (pts_.empty() || !(tau > 0)) return 0;
  double v;
  if (tau <= pts_.front().tau_s) {
    // From the origin (D(0) = 0), unless the curve is flat from its first
    // window on: then nothing below that window bounds the writer, and it
    // is taken to rewrite the set at once (saturated_at_first()).
    v = saturated_at_first() ? pts_.front().pages : pts_.front().pages * tau / pts_.front().tau_s;
  } else if (tau >= pts_.back().tau_s) {
    const Point& last = pts_.back();
    const double dt = tau - last.tau_s;
    v = last.pages + (tail_k_ > 0 ? tail_slope_ / tail_k_ * -std::expm1(-tail_k_ * dt) : tail_slope_ * dt);
  } else {
    auto it = std::upper_bound(pts_.begin(), pts_.end(), tau, [](double t, const Point& p) { return t < p.tau_s; });
    const Point& b = *it;
    const Point& a = *(it - 1);
    v = a.pages + (b.pages - a.pages) * (tau - a.tau_s) / (b.tau_s - a.tau_s);
  }
  return std::min(v, ceiling_);
}

Result<Prediction> predict_precopy(const Inputs& in) {
  if (Status st = validate(in); !st) return st.error();
  Prediction p = run_qemu(in, -1);
  if (!p.converges) what_would_converge(in, run_qemu, p);
  return p;
}

Result<Prediction> predict_constant_rate(const Inputs& in, double dirty_bytes_per_s) {
  if (!finite_nonneg(dirty_bytes_per_s)) return make_error(Errc::kInvalidArgument, "predictor: bad dirty rate");
  if (Status st = validate(in); !st) return st.error();
  Inputs lin = in;
  // A constant rate R is the curve D(tau) = (R / page) tau, without ceiling.
  auto curve = DirtyCurve::make({{1.0, dirty_bytes_per_s / in.page_bytes}}, 1e18);
  if (!curve) return curve.error();
  lin.dirty = *curve;
  lin.auto_converge = false;
  Prediction p = run_textbook(lin, -1);
  if (!p.converges) what_would_converge(lin, run_textbook, p);
  return p;
}

}  // namespace vmtide::predictor
