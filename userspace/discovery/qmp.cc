// SPDX-License-Identifier: Apache-2.0
// QMP client (qmp.h). The protocol is QEMU's docs/interop/qmp-spec.rst: a
// greeting {"QMP": {...}}, then {"execute": ...} answered by {"return": ...}
// or {"error": {"class", "desc"}}, with {"event": ...} messages at any time.
// Messages are read as a stream of JSON values, not lines, so a monitor
// started with pretty=on (multi-line JSON) reads the same.
#include "qmp.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace vmtide::discovery {
namespace {

// A reply to the few commands used here is small; a peer that sends more
// without completing one value is not a QEMU monitor.
constexpr std::size_t kMaxBuffered = 1 << 20;
// Events are rare (a few per second at most); more than this between a
// command and its reply means the peer is not answering.
constexpr int kMaxEventsSkipped = 1000;

int remaining_ms(QmpClock::time_point deadline) {
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - QmpClock::now()).count();
  return static_cast<int>(std::clamp<std::int64_t>(left, 0, 60'000));
}

std::string errno_text(int e) { return std::strerror(e); }

}  // namespace

QmpClient::QmpClient(QmpClient&& o) noexcept
    : fd_(o.fd_),
      path_(std::move(o.path_)),
      buf_(std::move(o.buf_)),
      next_id_(o.next_id_),
      events_skipped_(o.events_skipped_),
      events_dropped_(o.events_dropped_),
      events_(std::move(o.events_)) {
  o.fd_ = -1;
}

QmpClient& QmpClient::operator=(QmpClient&& o) noexcept {
  if (this != &o) {
    close_fd();
    fd_ = o.fd_;
    o.fd_ = -1;
    path_ = std::move(o.path_);
    buf_ = std::move(o.buf_);
    next_id_ = o.next_id_;
    events_skipped_ = o.events_skipped_;
    events_dropped_ = o.events_dropped_;
    events_ = std::move(o.events_);
  }
  return *this;
}

QmpClient::~QmpClient() { close_fd(); }

void QmpClient::close_fd() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Result<QmpClient> QmpClient::connect(const std::string& path, QmpClock::time_point deadline) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path) {
    return make_error(Errc::kInvalidArgument, "qmp " + path + ": not a usable unix socket path (empty or over " +
                                                  std::to_string(sizeof addr.sun_path - 1) + " bytes)");
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return make_error(Errc::kIo, "qmp " + path + ": socket: " + errno_text(errno));
  QmpClient c(fd, path);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    const int e = errno;
    if (e == EAGAIN) {
      // A unix listener's queue is full: QEMU is serving another client and
      // more are already waiting.
      return make_error(Errc::kBusy, "qmp " + path + ": monitor busy (listen queue full)");
    }
    if (e != EINPROGRESS) return make_error(Errc::kIo, "qmp " + path + ": connect: " + errno_text(e));
    pollfd p{fd, POLLOUT, 0};
    const int n = ::poll(&p, 1, remaining_ms(deadline));
    int err = 0;
    socklen_t len = sizeof err;
    if (n <= 0) return make_error(Errc::kBusy, "qmp " + path + ": connect timed out");
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
      return make_error(Errc::kIo, "qmp " + path + ": connect: " + errno_text(err != 0 ? err : errno));
    }
  }
  // The greeting comes at once from a free monitor; a busy one queues us
  // silently until its client leaves.
  auto greeting = c.next_message(deadline, true);
  if (!greeting) return std::move(greeting).error();
  if (greeting->find("QMP") == nullptr) return make_error(Errc::kIo, "qmp " + path + ": no QMP greeting");
  auto caps = c.execute("qmp_capabilities", "", deadline);
  if (!caps) return std::move(caps).error();
  return c;
}

Status QmpClient::send_all(std::string_view data, QmpClock::time_point deadline) {
  while (!data.empty()) {
    // MSG_NOSIGNAL: a monitor that closed must not kill the agent with SIGPIPE.
    const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      data.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{fd_, POLLOUT, 0};
      if (::poll(&p, 1, remaining_ms(deadline)) <= 0) return make_error(Errc::kIo, "qmp " + path_ + ": send timed out");
      continue;
    }
    return make_error(Errc::kIo, "qmp " + path_ + ": send: " + errno_text(errno));
  }
  return {};
}

Result<json::Value> QmpClient::next_message(QmpClock::time_point deadline, bool greeting) {
  auto m = read_message(deadline);
  if (!m) return std::move(m).error();
  if (*m) return std::move(**m);
  if (greeting) {
    return make_error(Errc::kBusy, "qmp " + path_ + ": no greeting in time (the monitor serves one client at a time)");
  }
  return make_error(Errc::kIo, "qmp " + path_ + ": no reply in time");
}

Result<std::optional<json::Value>> QmpClient::read_message(QmpClock::time_point deadline) {
  while (true) {
    auto parsed = json::parse_prefix(buf_);
    if (parsed) {
      buf_.erase(0, parsed->consumed);
      if (!parsed->value.is_object())
        return make_error(Errc::kIo, "qmp " + path_ + ": a message that is not an object");
      return std::optional<json::Value>(std::move(parsed->value));
    }
    if (parsed.error().code != Errc::kWireTruncated) {
      return make_error(Errc::kIo, "qmp " + path_ + ": " + parsed.error().message());
    }
    if (buf_.size() > kMaxBuffered) {
      return make_error(Errc::kIo,
                        "qmp " + path_ + ": over " + std::to_string(kMaxBuffered) + " bytes without a message");
    }
    pollfd p{fd_, POLLIN, 0};
    const int n = ::poll(&p, 1, remaining_ms(deadline));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error(Errc::kIo, "qmp " + path_ + ": poll: " + errno_text(errno));
    if (n == 0) return std::optional<json::Value>();  // the deadline passed
    char chunk[16384];
    const ssize_t got = ::recv(fd_, chunk, sizeof chunk, MSG_DONTWAIT);
    if (got == 0) return make_error(Errc::kIo, "qmp " + path_ + ": the monitor closed the connection");
    if (got < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
      return make_error(Errc::kIo, "qmp " + path_ + ": recv: " + errno_text(errno));
    }
    buf_.append(chunk, static_cast<std::size_t>(got));
  }
}

Result<json::Value> QmpClient::execute(std::string_view command, std::string_view arguments,
                                       QmpClock::time_point deadline) {
  if (fd_ < 0) return make_error(Errc::kIo, "qmp " + path_ + ": not connected");
  const std::string id = "vmtide-" + std::to_string(next_id_++);
  std::string msg = "{\"execute\":\"" + std::string(command) + "\"";
  if (!arguments.empty()) msg += ",\"arguments\":" + std::string(arguments);
  msg += ",\"id\":\"" + id + "\"}\n";
  if (Status st = send_all(msg, deadline); !st) return st.error();
  for (int skipped = 0; skipped <= kMaxEventsSkipped;) {
    auto m = next_message(deadline, false);
    if (!m) return std::move(m).error();
    const json::Value* ret = m->find("return");
    const json::Value* err = m->find("error");
    if (ret == nullptr && err == nullptr) {  // an event (or something new): not ours
      ++events_skipped_;
      ++skipped;
      if (m->find("event") != nullptr) keep_event(std::move(m).value());
      continue;
    }
    const json::Value* rid = m->find("id");
    if (rid == nullptr || rid->as_string() == nullptr || *rid->as_string() != id) {
      return make_error(Errc::kIo, "qmp " + path_ + ": a reply to another command than " + std::string(command));
    }
    if (err != nullptr) {
      const json::Value* cls = err->find("class");
      const json::Value* desc = err->find("desc");
      return make_error(Errc::kIo, "qmp " + path_ + ": " + std::string(command) + ": " +
                                       (cls && cls->as_string() ? *cls->as_string() : "error") + ": " +
                                       (desc && desc->as_string() ? *desc->as_string() : "(no description)"));
    }
    return *ret;
  }
  return make_error(Errc::kIo, "qmp " + path_ + ": over " + std::to_string(kMaxEventsSkipped) +
                                   " events and no reply to " + std::string(command));
}

void QmpClient::keep_event(json::Value ev) {
  if (events_.size() >= kMaxQueuedEvents) {
    events_.pop_front();
    ++events_dropped_;
  }
  events_.push_back(std::move(ev));
}

Result<std::optional<json::Value>> QmpClient::next_event(QmpClock::time_point deadline) {
  if (fd_ < 0) return make_error(Errc::kIo, "qmp " + path_ + ": not connected");
  while (events_.empty()) {
    // Bytes already buffered may hold a whole message; otherwise wait for
    // more, no longer than the deadline.
    auto m = read_message(deadline);
    if (!m) return std::move(m).error();
    if (!*m) return std::optional<json::Value>();
    if ((*m)->find("event") == nullptr) {
      return make_error(Errc::kIo, "qmp " + path_ + ": a reply while no command was pending");
    }
    events_.push_back(std::move(**m));
  }
  json::Value ev = std::move(events_.front());
  events_.pop_front();
  return std::optional<json::Value>(std::move(ev));
}

std::string calc_dirty_rate_arguments(int calc_time_s, int sample_pages_per_gib) {
  // QEMU's limits: MIN/MAX_FETCH_DIRTYRATE_TIME_SEC, MIN/MAX_SAMPLE_PAGE_COUNT.
  const int t = std::clamp(calc_time_s, 1, 60);
  const int pages = std::clamp(sample_pages_per_gib, 128, 4096);
  return "{\"calc-time\":" + std::to_string(t) + ",\"sample-pages\":" + std::to_string(pages) +
         ",\"mode\":\"page-sampling\"}";
}

std::string calc_dirty_rate_arguments_ms(int calc_time_ms, int sample_pages_per_gib) {
  // QEMU's MIN_CALC_TIME_MS and MAX_CALC_TIME_MS (migration/dirtyrate.c,
  // is_calc_time_valid()).
  const int t = std::clamp(calc_time_ms, 50, 60'000);
  const int pages = std::clamp(sample_pages_per_gib, 128, 4096);
  return "{\"calc-time\":" + std::to_string(t) +
         ",\"calc-time-unit\":\"millisecond\",\"sample-pages\":" + std::to_string(pages) +
         ",\"mode\":\"page-sampling\"}";
}

Result<std::optional<HypervisorDirtyRate>> parse_query_dirty_rate(const json::Value& ret) {
  const json::Value* status = ret.find("status");
  if (status == nullptr) return make_error(Errc::kWireMissingKey, "query-dirty-rate: no 'status'");
  if (status->as_string() == nullptr) return make_error(Errc::kWireType, "query-dirty-rate: 'status' is not a string");
  const std::string& s = *status->as_string();
  if (s == "unstarted" || s == "measuring") return std::optional<HypervisorDirtyRate>();
  if (s != "measured") return make_error(Errc::kWireRange, "query-dirty-rate: unknown status '" + s + "'");
  auto integer = [&](const char* key) -> Result<std::int64_t> {
    const json::Value* v = ret.find(key);
    if (v == nullptr) return make_error(Errc::kWireMissingKey, std::string("query-dirty-rate: no '") + key + "'");
    if (!v->as_int())
      return make_error(Errc::kWireType, std::string("query-dirty-rate: '") + key + "' is not an integer");
    return *v->as_int();
  };
  auto rate = integer("dirty-rate");
  if (!rate) return std::move(rate).error();
  auto start = integer("start-time");
  if (!start) return std::move(start).error();
  auto calc = integer("calc-time");
  if (!calc) return std::move(calc).error();
  // QEMU 8.2 added calc-time-unit; before, calc-time is in seconds.
  std::uint64_t unit_ns = 1'000'000'000ULL;
  if (const json::Value* u = ret.find("calc-time-unit")) {
    const std::string* us = u->as_string();
    if (us == nullptr) return make_error(Errc::kWireType, "query-dirty-rate: 'calc-time-unit' is not a string");
    if (*us == "millisecond") {
      unit_ns = 1'000'000ULL;
    } else if (*us != "second") {
      return make_error(Errc::kWireRange, "query-dirty-rate: unknown calc-time-unit '" + *us + "'");
    }
  }
  if (*rate < 0) return make_error(Errc::kWireRange, "query-dirty-rate: negative dirty-rate");
  if (*calc <= 0 || static_cast<std::uint64_t>(*calc) > 3600ULL * 1'000'000'000ULL / unit_ns) {
    return make_error(Errc::kWireRange, "query-dirty-rate: calc-time " + std::to_string(*calc) + " out of range");
  }
  return std::optional(
      HypervisorDirtyRate{static_cast<double>(*rate), *start, static_cast<std::uint64_t>(*calc) * unit_ns});
}

}  // namespace vmtide::discovery
