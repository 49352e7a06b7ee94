// SPDX-License-Identifier: Apache-2.0
// A minimal client for QEMU's machine protocol (QMP) on a unix socket, for
// short exchanges: connect, greeting, qmp_capabilities, one or two
// commands, close. Every call takes a deadline and never blocks past it
// (non-blocking socket + poll), so the agent's tick stays on time. A QMP
// socket serves one client at a time (QEMU queues the next connection
// without a greeting), so callers connect only for what they need.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

#include "json_reader.h"
#include "source.h"
#include "vmtide/result.h"

namespace vmtide::discovery {

using QmpClock = std::chrono::steady_clock;

class QmpClient {
 public:
  // Connects to the monitor at `path`, reads the greeting and leaves
  // capabilities negotiation, all before `deadline`. Errors: kBusy when
  // the monitor is serving another client (the listen queue is full, or
  // the connection is queued and no greeting comes before the deadline);
  // kIo when nothing listens there (no such socket, connection refused) or
  // the exchange fails; kInvalidArgument for a path too long for a unix
  // socket address.
  [[nodiscard]] static Result<QmpClient> connect(const std::string& path, QmpClock::time_point deadline);

  QmpClient(QmpClient&& o) noexcept;
  QmpClient& operator=(QmpClient&& o) noexcept;
  QmpClient(const QmpClient&) = delete;
  QmpClient& operator=(const QmpClient&) = delete;
  ~QmpClient();

  // Runs `command` with `arguments` (a JSON object's text; empty for none)
  // and returns its "return" value. An error reply becomes kIo with QEMU's
  // class and description; asynchronous events in between are skipped
  // (counted) and kept for next_event(), the newest kMaxQueuedEvents.
  [[nodiscard]] Result<json::Value> execute(std::string_view command, std::string_view arguments,
                                            QmpClock::time_point deadline);

  // The next asynchronous event ({"event", "data", "timestamp"}): one kept
  // while a command ran, else the next to arrive before `deadline`
  // (nullopt when none does). Lets a caller await e.g. QEMU's MIGRATION
  // event instead of polling.
  [[nodiscard]] Result<std::optional<json::Value>> next_event(QmpClock::time_point deadline);

  std::uint64_t events_skipped() const { return events_skipped_; }
  std::uint64_t events_dropped() const { return events_dropped_; }  // queue full: the oldest went
  static constexpr std::size_t kMaxQueuedEvents = 256;

 private:
  QmpClient(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  // The next message (one JSON value) from the socket.
  Result<json::Value> next_message(QmpClock::time_point deadline, bool greeting);
  // The next message, or nullopt once the deadline passes without one.
  Result<std::optional<json::Value>> read_message(QmpClock::time_point deadline);
  void keep_event(json::Value ev);
  Status send_all(std::string_view data, QmpClock::time_point deadline);
  void close_fd();

  int fd_ = -1;
  std::string path_;
  std::string buf_;  // bytes read and not yet parsed
  std::uint64_t next_id_ = 1;
  std::uint64_t events_skipped_ = 0;
  std::uint64_t events_dropped_ = 0;
  std::deque<json::Value> events_;
};

// Sample pages per GiB for calc-dirty-rate page-sampling: QEMU's default
// (512) read 12 or 25 MB/s for a true 19.5 on a small working set in the
// lab, 4096 (QEMU's maximum, MAX_SAMPLE_PAGE_COUNT) read 19
// (shared/notes/lab-facts.md). Hashing 4096 pages per GiB costs QEMU's
// sampling thread little next to the window.
inline constexpr int kQmpSamplePagesPerGiB = 4096;

// The arguments of calc-dirty-rate in page-sampling mode (the mode that
// works under TCG; dirty-bitmap reads 0 there). `calc_time_s` is clamped to
// QEMU's range, 1 to 60 s.
std::string calc_dirty_rate_arguments(int calc_time_s, int sample_pages_per_gib);
// The same with a window in milliseconds (calc-time-unit, QEMU >= 8.2),
// clamped to QEMU's 50 ms to 60 s: windows shorter than a second give the
// short end of the dirty curve D(tau). Read the result with
// query-dirty-rate {"calc-time-unit": "millisecond"}.
std::string calc_dirty_rate_arguments_ms(int calc_time_ms, int sample_pages_per_gib);

// Reads query-dirty-rate's return value: nullopt while "unstarted" or
// "measuring", the rate once "measured". kWireMissingKey / kWireType /
// kWireRange for a reply without the fields QEMU documents.
[[nodiscard]] Result<std::optional<HypervisorDirtyRate>> parse_query_dirty_rate(const json::Value& ret);

}  // namespace vmtide::discovery
