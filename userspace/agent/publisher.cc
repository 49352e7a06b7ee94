// SPDX-License-Identifier: Apache-2.0
// Publisher implementation (publisher.h). cppzmq exceptions stop here.
#include "publisher.h"

#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

#include <spdlog/spdlog.h>

#include "vmtide/wire/curve.h"
#include "vmtide/wire/zmq_io.h"

namespace vmtide::agent {

std::uint64_t mono_now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<std::uint64_t>(ts.tv_nsec);
}

std::int64_t wall_now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000LL + ts.tv_nsec;
}

Result<std::unique_ptr<Publisher>> Publisher::create(zmq::context_t& ctx, PublisherOptions opts) {
  if (opts.host.empty()) {
    char buf[256] = {};
    if (gethostname(buf, sizeof buf - 1) != 0) return make_error(Errc::kIo, "gethostname failed");
    opts.host = buf;
  }
  if (opts.host.find('.') != std::string::npos) {
    // Topics are "vmtide.v1.<kind>.<host>": keep the host one topic segment.
    opts.host = opts.host.substr(0, opts.host.find('.'));
  }
  try {
    zmq::socket_t sock(ctx, zmq::socket_type::xpub);
    sock.set(zmq::sockopt::sndhwm, opts.sndhwm);
    // Refuse a send that would overflow a subscriber's queue, so publish()
    // can count it (publisher.h).
    sock.set(zmq::sockopt::xpub_nodrop, true);
    sock.set(zmq::sockopt::linger, 0);
    // ZMTP heartbeats: a vanished subscriber is noticed within ~3 s.
    sock.set(zmq::sockopt::heartbeat_ivl, 1000);
    sock.set(zmq::sockopt::heartbeat_timeout, 3000);
    // Security options apply to connections made after they are set: set
    // them before bind, or the first subscribers would get a plain stream.
    if (opts.curve) {
      if (Status st = wire::curve::configure_server(sock, *opts.curve); !st) return st.error();
    }
    sock.bind(opts.endpoint);
    std::string ep = sock.get(zmq::sockopt::last_endpoint);
    return std::unique_ptr<Publisher>(new Publisher(std::move(sock), std::move(opts), std::move(ep)));
  } catch (const zmq::error_t& e) {
    return make_error(Errc::kTransport, "binding " + opts.endpoint + ": " + e.what());
  }
}

Publisher::Publisher(zmq::socket_t sock, PublisherOptions opts, std::string endpoint)
    : sock_(std::move(sock)),
      opts_(std::move(opts)),
      endpoint_(std::move(endpoint)),
      epoch_(static_cast<std::uint64_t>(wall_now_ns())),
      start_mono_ns_(mono_now_ns()) {}

std::uint64_t Publisher::uptime_ns() const { return mono_now_ns() - start_mono_ns_; }

bool Publisher::publish(wire::Message::Body body, std::uint64_t interval_ns, wire::Message* stamped) {
  wire::Message m;
  m.env.host = opts_.host;
  m.env.epoch = epoch_;
  m.env.seq = seq_ + 1;
  m.env.ts_ns = wall_now_ns();
  m.env.mono_ns = mono_now_ns();
  m.env.interval_ns = interval_ns;
  m.body = std::move(body);
  if (stamped != nullptr) *stamped = m;
  // The seq is consumed even if the message is dropped: subscribers see
  // the gap and count the loss.
  ++seq_;
  auto sent = wire::send_message(sock_, m, zmq::send_flags::dontwait);
  if (sent && !*sent) {
    // Some subscriber's queue is full (NODROP refused the whole message):
    // count it, and give it to the others without blocking.
    ++dropped_;
    try {
      sock_.set(zmq::sockopt::xpub_nodrop, false);
      sent = wire::send_message(sock_, m, zmq::send_flags::dontwait);
      sock_.set(zmq::sockopt::xpub_nodrop, true);
    } catch (const zmq::error_t& e) {
      sent = make_error(Errc::kTransport, std::string("toggling ZMQ_XPUB_NODROP: ") + e.what());
    }
  }
  if (!sent) {
    ++errors_;
    spdlog::warn("publish: {}", sent.error().message());
    return false;
  }
  return *sent;
}

int Publisher::poll_subscriptions() {
  int joined = 0;
  try {
    zmq::message_t msg;
    while (sock_.recv(msg, zmq::recv_flags::dontwait)) {
      const auto* d = static_cast<const unsigned char*>(msg.data());
      if (msg.size() >= 1 && d[0] == 1) {
        ++joined;
        ++joined_;
        spdlog::info("subscriber joined (prefix '{}')", std::string_view(msg.data<char>() + 1, msg.size() - 1));
      }
    }
  } catch (const zmq::error_t& e) {
    ++errors_;
    spdlog::warn("reading subscriptions: {}", e.what());
  }
  return joined;
}

void Publisher::wait_until(std::uint64_t deadline_ns, const std::atomic<bool>& stop) {
  while (!stop.load()) {
    const std::uint64_t now = mono_now_ns();
    if (now >= deadline_ns) return;
    const auto timeout_ms = static_cast<long>((deadline_ns - now + 999'999) / 1'000'000);
    zmq::pollitem_t item{sock_.handle(), 0, ZMQ_POLLIN, 0};
    try {
      if (zmq::poll(&item, 1, std::chrono::milliseconds(timeout_ms)) > 0) poll_subscriptions();
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) {  // EINTR: a signal; the loop re-checks `stop`
        ++errors_;
        spdlog::warn("waiting on the socket: {}", e.what());
        return;
      }
    }
  }
}

}  // namespace vmtide::agent
