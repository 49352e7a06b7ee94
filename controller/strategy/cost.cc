// SPDX-License-Identifier: Apache-2.0
// The constant-dirty-rate cost model (cost.h), the planner's default.
#include "cost.h"

#include <algorithm>
#include <cmath>

namespace vmtide::strategy {

CostModel make_const_dirty_cost_model(double fallback_bw_bytes_per_s, double converge_ratio) {
  return [fallback_bw_bytes_per_s, converge_ratio](const model::VmState& vm, const model::HostState& src,
                                                   const model::HostState& dst) {
    double bw = fallback_bw_bytes_per_s;
    if (src.link_bw_bytes_per_s > 0 && dst.link_bw_bytes_per_s > 0) {
      bw = std::min(src.link_bw_bytes_per_s, dst.link_bw_bytes_per_s);
    } else if (src.link_bw_bytes_per_s > 0 || dst.link_bw_bytes_per_s > 0) {
      bw = std::max(src.link_bw_bytes_per_s, dst.link_bw_bytes_per_s);
    }
    bw = std::max(bw, 1.0);
    const double mem = static_cast<double>(vm.rss_bytes > 0 ? vm.rss_bytes : vm.ram_bytes);
    const double ratio = vm.dirty_bytes_per_s / bw;
    MigrationCost c;
    c.model = "const-dirty";
    if (ratio >= converge_ratio) {
      // Each pass resends nearly as much as the last: QEMU would iterate
      // until its limit. Report one full pass as the (lower-bound) time.
      c.converges = false;
      c.total_s = mem / bw;
      c.bytes = static_cast<std::uint64_t>(mem);
      c.passes = 1;
      c.downtime_ms = 0;
      return c;
    }
    // Passes shrink by `ratio`; stop when the rest fits QEMU's default
    // 300 ms downtime at full bandwidth (DESIGN.md, "Pre-copy prediction").
    constexpr double kDowntimeS = 0.3;
    double remaining = mem;
    double sent = 0.0;
    std::uint64_t passes = 0;
    while (remaining > bw * kDowntimeS && passes < 64) {
      sent += remaining;
      remaining *= ratio;
      ++passes;
    }
    c.converges = true;
    c.passes = passes + 1;  // the stop-and-copy pass
    c.bytes = static_cast<std::uint64_t>(sent + remaining);
    c.downtime_ms = remaining / bw * 1000.0;
    c.total_s = (sent + remaining) / bw;
    return c;
  };
}

}  // namespace vmtide::strategy
