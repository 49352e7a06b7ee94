// SPDX-License-Identifier: Apache-2.0
// The controller's SUB side (ingest.h).
#include "ingest.h"

#include <algorithm>

#include "vmtide/wire/zmq_io.h"

namespace vmtide::controller {

Result<IngestKeys> load_ingest_keys(const std::vector<std::string>& endpoints, const std::string& default_server_key,
                                    const std::map<std::string, std::string>& per_endpoint,
                                    const std::string& client_key_file) {
  IngestKeys keys;
  for (const auto& e : endpoints) {
    auto it = per_endpoint.find(e);
    const std::string& key = it != per_endpoint.end() ? it->second : default_server_key;
    if (key.empty()) continue;
    auto z85 = wire::curve::load_public_key(key);
    if (!z85) return make_error(Errc::kInvalidArgument, "agent " + e + ": " + z85.error().message());
    keys.server_public_z85[e] = std::move(*z85);
  }
  if (keys.server_public_z85.empty()) {
    if (!client_key_file.empty()) {
      return make_error(Errc::kInvalidArgument, "agents.curve_secret_key needs the agents' public keys too");
    }
    return keys;
  }
  if (!wire::curve::available()) {
    return make_error(Errc::kUnsupported, "CURVE keys are configured but this libzmq was built without CURVE");
  }
  auto client = client_key_file.empty() ? wire::curve::generate() : wire::curve::load_secret_key_file(client_key_file);
  if (!client) return std::move(client).error();
  keys.client = std::move(*client);
  return keys;
}

Result<std::unique_ptr<Ingest>> Ingest::create(zmq::context_t& ctx, const std::vector<std::string>& endpoints,
                                               const IngestKeys& keys, const wire::DecodeLimits& limits) {
  try {
    zmq::socket_t sock(ctx, zmq::socket_type::sub);
    sock.set(zmq::sockopt::linger, 0);
    sock.set(zmq::sockopt::rcvhwm, 100000);
    sock.set(zmq::sockopt::heartbeat_ivl, 1000);
    sock.set(zmq::sockopt::heartbeat_timeout, 3000);
    // A reconnect attempt made while an agent's link was down can hang in
    // SYN-SENT, retried by TCP with a doubling back-off (and a source
    // address picked while the route was missing) for about two minutes;
    // give it up after 2 s so the next attempt starts afresh once the link
    // is back (ControllerFaults.AgentLinkDownAndUp).
    sock.set(zmq::sockopt::connect_timeout, 2000);
    if (Status st = wire::apply_limits(sock, limits); !st) return st.error();
    // Agents' kinds only: a decision stream connected by mistake is not input.
    for (const char* kind : {"vm", "host", "hb"}) {
      sock.set(zmq::sockopt::subscribe, std::string(wire::kTopicPrefix) + kind + ".");
    }
    // libzmq copies the socket's security options into each connection as
    // connect() makes it: the plain agents first, then each CURVE agent
    // with its own server key.
    std::vector<std::string> order = endpoints;
    std::stable_partition(order.begin(), order.end(),
                          [&](const std::string& e) { return keys.server_public_z85.count(e) == 0; });
    for (const auto& e : order) {
      if (auto k = keys.server_public_z85.find(e); k != keys.server_public_z85.end()) {
        if (!keys.client) return make_error(Errc::kInvalidArgument, "agent " + e + ": CURVE without a client keypair");
        if (Status st = wire::curve::configure_client(sock, k->second, *keys.client); !st) {
          return make_error(st.error().code, "agent " + e + ": " + st.error().message());
        }
      }
      try {
        sock.connect(e);
      } catch (const zmq::error_t& err) {
        return make_error(Errc::kTransport, "cannot connect to agent endpoint '" + e + "': " + err.what());
      }
    }
    return std::unique_ptr<Ingest>(new Ingest(std::move(sock), limits));
  } catch (const zmq::error_t& err) {
    return make_error(Errc::kTransport, std::string("ingest socket: ") + err.what());
  }
}

std::size_t Ingest::poll(int timeout_ms, const Handler& on) {
  std::size_t n = 0;
  zmq::pollitem_t item{sock_.handle(), 0, ZMQ_POLLIN, 0};
  try {
    if (zmq::poll(&item, 1, std::chrono::milliseconds{timeout_ms}) <= 0) return 0;
  } catch (const zmq::error_t& e) {
    if (e.num() != EINTR) last_error_ = e.what();
    return 0;
  }
  // Drain what is queued, bounded so a flood cannot starve the round timer.
  for (int i = 0; i < 100000; ++i) {
    auto r = wire::recv_message(sock_, zmq::recv_flags::dontwait, limits_);
    if (!r && r.error().code == Errc::kTransport) {
      last_error_ = r.error().message();
      break;
    }
    if (!r) {
      ++malformed_;
      ++by_reason_[std::string(errc_name(r.error().code))];
      last_error_ = r.error().message();
      continue;
    }
    if (!*r) break;
    ++received_;
    ++n;
    on(**r);
  }
  return n;
}

}  // namespace vmtide::controller
