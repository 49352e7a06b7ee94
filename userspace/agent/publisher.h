// SPDX-License-Identifier: Apache-2.0
// Publisher: the agent's ZeroMQ socket. Stamps each body with the envelope
// (host, epoch, seq, clocks, interval), encodes it and sends the two frames.
// Never blocks. A subscriber too slow to keep up loses messages at its own
// high-water mark (PUB semantics: the others are unaffected) and sees the
// loss as gaps in `seq`. XPUB instead of PUB only to learn when subscribers
// join. ZMQ_XPUB_NODROP is deliberately off: with it, one stuck subscriber
// would make every subscriber lose messages.
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

  // Sends one message; false if the socket refused it (counted in dropped()).
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
