// SPDX-License-Identifier: Apache-2.0
// Sending and receiving wire messages on ZeroMQ sockets, with cppzmq's
// exceptions turned into Result values at this adapter (STYLE.md rule 8).
#pragma once

#include <optional>

#include <zmq.hpp>

#include "vmtide/result.h"
#include "vmtide/wire/codec.h"
#include "vmtide/wire/messages.h"

namespace vmtide::wire {

// Sends `m` as the frames [topic, body]. true when queued; false when the
// socket would block, which only happens with zmq::send_flags::dontwait
// (PUB sockets drop silently at their high-water mark instead). kTransport
// on a ZeroMQ error.
[[nodiscard]] Result<bool> send_message(zmq::socket_t& socket, const Message& m,
                                        zmq::send_flags flags = zmq::send_flags::none);

// Receives and decodes one message; nullopt when none is ready (only with
// zmq::recv_flags::dontwait). A message that is not exactly two frames is
// consumed whole and reported as kWireMalformed, so the next call starts at a
// message boundary. Decoder errors as from decode(topic, body); kTransport on
// a ZeroMQ error.
[[nodiscard]] Result<std::optional<Message>> recv_message(zmq::socket_t& socket,
                                                          zmq::recv_flags flags = zmq::recv_flags::none,
                                                          const DecodeLimits& limits = {});

// Sets ZMQ_MAXMSGSIZE to limits.max_bytes, so that libzmq disconnects a peer
// sending a larger frame instead of buffering it. Call before connecting.
[[nodiscard]] Status apply_limits(zmq::socket_t& socket, const DecodeLimits& limits = {});

}  // namespace vmtide::wire
