// SPDX-License-Identifier: Apache-2.0
// Two-frame wire messages over cppzmq; no zmq::error_t escapes this file.
#include "vmtide/wire/zmq_io.h"

#include <cstdint>
#include <string>
#include <string_view>

namespace vmtide::wire {
namespace {

Error transport_error(std::string_view what, const zmq::error_t& e) {
  return make_error(Errc::kTransport, std::string(what) + ": " + e.what());
}

}  // namespace

Result<bool> send_message(zmq::socket_t& socket, const Message& m, zmq::send_flags flags) {
  const std::string t = topic(m);
  const std::string body = encode(m);
  try {
    if (!socket.send(zmq::buffer(t), flags | zmq::send_flags::sndmore)) return false;
    // libzmq queues a multipart message atomically: once the first frame is
    // accepted the high-water mark cannot refuse the second.
    if (!socket.send(zmq::buffer(body), flags)) {
      return make_error(Errc::kTransport, "body frame refused after topic frame");
    }
  } catch (const zmq::error_t& e) {
    return transport_error("send", e);
  }
  return true;
}

Result<std::optional<Message>> recv_message(zmq::socket_t& socket, zmq::recv_flags flags, const DecodeLimits& limits) {
  zmq::message_t topic_frame;
  zmq::message_t body_frame;
  std::size_t frames = 1;
  try {
    if (!socket.recv(topic_frame, flags)) return std::optional<Message>();
    // The remaining frames of a message arrive together with the first.
    if (topic_frame.more()) {
      (void)socket.recv(body_frame);
      ++frames;
      zmq::message_t extra;
      for (bool more = body_frame.more(); more; more = extra.more()) {
        (void)socket.recv(extra);
        ++frames;
      }
    }
  } catch (const zmq::error_t& e) {
    return transport_error("recv", e);
  }
  if (frames != 2) {
    return make_error(Errc::kWireMalformed, "expected 2 frames (topic, body), got " + std::to_string(frames));
  }
  auto m = decode(topic_frame.to_string_view(), as_bytes(body_frame.to_string_view()), limits);
  if (!m) return std::move(m).error();
  return std::optional<Message>(std::move(m).value());
}

Status apply_limits(zmq::socket_t& socket, const DecodeLimits& limits) {
  try {
    socket.set(zmq::sockopt::maxmsgsize, static_cast<std::int64_t>(limits.max_bytes));
  } catch (const zmq::error_t& e) {
    return transport_error("setting ZMQ_MAXMSGSIZE", e);
  }
  return {};
}

}  // namespace vmtide::wire
