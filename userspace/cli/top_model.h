// SPDX-License-Identifier: Apache-2.0
// The table behind `vmtide top`: the latest sample of every VM across the
// hosts it listens to, which hosts went quiet, and the rendering as text.
// Pure: messages and times in, rows and lines out (unit-tested).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "vmtide/wire/messages.h"

namespace vmtide::cli {

enum class SortKey { kCpu, kSteal, kDirty, kIo, kName };

struct TopRow {
  std::string host;
  std::string vm;
  std::string vm_id;
  double cpu_pct = 0;           // of one CPU, summed over threads
  double steal_pct = 0;         // of one vCPU, summed over vCPUs
  double dirty_mib_s = -1;      // last dirty window; < 0: not measured
  double wws_mib = -1;          // distinct MiB written in that window (writable working set)
  double io_mb_s = 0;           // read + write
  double psi_io_pct = -1;       // cgroup io "some" stall share of the interval; < 0: no cgroup
  bool stale = false;           // its host went quiet
};

class TopModel {
 public:
  using Clock = std::chrono::steady_clock;
  // A host is stale after this long without any message (3 heartbeats at 1 Hz).
  explicit TopModel(std::chrono::milliseconds stale_after = std::chrono::milliseconds(3000))
      : stale_after_(stale_after) {}

  void ingest(const wire::Message& m, Clock::time_point now);
  std::vector<TopRow> rows(SortKey key, Clock::time_point now) const;
  std::vector<std::string> stale_hosts(Clock::time_point now) const;
  std::size_t host_count() const { return last_seen_.size(); }

 private:
  std::chrono::milliseconds stale_after_;
  std::map<std::string, Clock::time_point> last_seen_;        // host -> last message
  std::map<std::pair<std::string, std::string>, TopRow> vms_;  // (host, vm id) -> row
  std::map<std::pair<std::string, std::string>, std::pair<double, double>> dirty_;  // last window per VM
};

// The screen: a header line, the column titles, one line per row, cut to
// `width` columns and `height` lines.
std::vector<std::string> render(const std::vector<TopRow>& rows, const std::vector<std::string>& stale_hosts,
                                SortKey key, std::size_t hosts, std::size_t width, std::size_t height);

}  // namespace vmtide::cli
