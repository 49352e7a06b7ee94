// SPDX-License-Identifier: Apache-2.0
// Ingest: one SUB socket connected to every agent endpoint, decoding with
// the strict v1 decoder. Malformed messages are counted by error kind and
// dropped; the rest go to a callback with the controller's receive time.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "vmtide/result.h"
#include "vmtide/wire/codec.h"
#include "vmtide/wire/curve.h"
#include "vmtide/wire/messages.h"

namespace vmtide::controller {

// CURVE toward agents, resolved from the configuration before the
// controller drops its privileges (key files may be readable only then).
struct IngestKeys {
  std::map<std::string, std::string> server_public_z85;  // endpoint -> agent's key; absent: plain
  std::optional<wire::curve::KeyPair> client;            // the controller's keypair, with any server key
};

// Reads the keys the configuration names: `default_server_key` for every
// endpoint not in `per_endpoint`, each a .pub file or 40 Z85 characters,
// and `client_key_file` (a .key, 0600; "" = a fresh keypair). Errors name
// the file or the endpoint.
[[nodiscard]] Result<IngestKeys> load_ingest_keys(const std::vector<std::string>& endpoints,
                                                  const std::string& default_server_key,
                                                  const std::map<std::string, std::string>& per_endpoint,
                                                  const std::string& client_key_file);

class Ingest {
 public:
  // Connects to each endpoint (hostnames are resolved by libzmq, and a peer
  // that is down is retried in the background). ZMTP heartbeats detect a
  // dead TCP peer. kTransport on a bad endpoint.
  [[nodiscard]] static Result<std::unique_ptr<Ingest>> create(zmq::context_t& ctx,
                                                              const std::vector<std::string>& endpoints,
                                                              const IngestKeys& keys = {},
                                                              const wire::DecodeLimits& limits = {});

  using Handler = std::function<void(const wire::Message&)>;

  // Receives every message that is ready, waiting up to timeout_ms for the
  // first one; returns how many were handed to `on`.
  std::size_t poll(int timeout_ms, const Handler& on);

  zmq::socket_t& socket() { return sock_; }
  [[nodiscard]] std::uint64_t received() const noexcept { return received_; }
  [[nodiscard]] std::uint64_t malformed() const noexcept { return malformed_; }
  // Malformed messages by error code name ("wire_type", "wire_version", ...).
  [[nodiscard]] const std::map<std::string, std::uint64_t>& malformed_by_reason() const noexcept { return by_reason_; }
  [[nodiscard]] const std::string& last_error() const noexcept { return last_error_; }

 private:
  Ingest(zmq::socket_t sock, wire::DecodeLimits limits) : sock_(std::move(sock)), limits_(limits) {}

  zmq::socket_t sock_;
  wire::DecodeLimits limits_;
  std::uint64_t received_ = 0;
  std::uint64_t malformed_ = 0;
  std::map<std::string, std::uint64_t> by_reason_;
  std::string last_error_;
};

}  // namespace vmtide::controller
