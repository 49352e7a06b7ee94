// SPDX-License-Identifier: Apache-2.0
// Publisher: the agent's ZeroMQ socket. Stamps each body with the envelope
// (host, epoch, seq, clocks, interval), encodes it and sends the two frames.
// Never blocks. A subscriber too slow to keep up loses messages at its own
// high-water mark (PUB semantics: the others are unaffected) and sees the
// loss as gaps in `seq`. XPUB instead of PUB to learn when subscribers join
// and to notice those overflows, which a PUB socket drops silently:
// ZMQ_XPUB_NODROP is on, so a send that would overflow some subscriber's
// queue is refused whole; it is then counted in dropped() and sent again
// with NODROP off, which delivers it to every subscriber with room (NODROP
// alone would make one stuck subscriber cost every subscriber the message).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <zmq.hpp>

#include "vmtide/result.h"
#include "vmtide/wire/curve.h"
#include "vmtide/wire/messages.h"

namespace vmtide::agent {

struct PublisherOptions {
  std::string endpoint = "tcp://127.0.0.1:7470";
  std::string host;       // envelope host; the machine's hostname by default
  int sndhwm = 10000;     // messages queued per subscriber before drops
  // The agent's keypair: subscribers must complete a CURVE handshake with
  // it (docs/security.md). nullopt: plain ZMTP, readable by anyone.
  std::optional<wire::curve::KeyPair> curve;
};

class Publisher {
 public:
  [[nodiscard]] static Result<std::unique_ptr<Publisher>> create(zmq::context_t& ctx, PublisherOptions opts);

  // Sends one message without blocking; false on a ZeroMQ error (counted in
  // errors()). A subscriber whose queue is full misses it (dropped()).
  // `stamped`, when given, receives the message as sent (envelope filled),
  // e.g. for the controller's decision log.
  bool publish(wire::Message::Body body, std::uint64_t interval_ns, wire::Message* stamped = nullptr);

  // Reads pending subscription frames; returns how many subscribers joined.
  int poll_subscriptions();

  // Waits until CLOCK_MONOTONIC reaches `deadline_ns` or `stop` is set,
  // reading subscriptions as they arrive.
  void wait_until(std::uint64_t deadline_ns, const std::atomic<bool>& stop);

  const std::string& endpoint() const { return endpoint_; }  // resolved, e.g. tcp://127.0.0.1:7470
  std::uint64_t epoch() const { return epoch_; }
  std::uint64_t published() const { return seq_; }
  // Messages that found at least one subscriber's queue full (each went
  // to the subscribers with room). libzmq has no per-subscriber count, and
  // a subscriber whose queue overflowed is skipped, uncounted, until it has
  // read its queue down to the low-water mark: so this counts at least one
  // per overflow, not every message the slow subscriber missed (those it
  // sees as seq gaps). docs/security.md.
  std::uint64_t dropped() const { return dropped_; }
  std::uint64_t errors() const { return errors_; }
  std::uint64_t subscribers_joined() const { return joined_; }
  std::uint64_t uptime_ns() const;

 private:
  Publisher(zmq::socket_t sock, PublisherOptions opts, std::string endpoint);

  zmq::socket_t sock_;
  PublisherOptions opts_;
  std::string endpoint_;
  std::uint64_t epoch_;
  std::uint64_t start_mono_ns_;
  std::uint64_t seq_ = 0;
  std::uint64_t dropped_ = 0;
  std::uint64_t errors_ = 0;
  std::uint64_t joined_ = 0;
};

std::uint64_t mono_now_ns();
std::int64_t wall_now_ns();

}  // namespace vmtide::agent
