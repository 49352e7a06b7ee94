// SPDX-License-Identifier: Apache-2.0
// Who may subscribe to a CURVE server (docs/security.md): an allow-list of
// client public keys, and a ZAP handler (ZeroMQ RFC 27) that libzmq asks
// about every CURVE handshake on sockets of the same context. Without a
// handler, libzmq admits any client that holds the server's public key.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <zmq.hpp>

#include "vmtide/result.h"

namespace vmtide::wire::curve {

// libzmq's fixed address for the handler.
inline constexpr const char* kZapEndpoint = "inproc://zeromq.zap.01";

// The rule for a file or directory that decides who is trusted: owned by
// `me` or root and not writable by group or others (anyone who can change
// it can let themselves in). kPermission with the fix.
[[nodiscard]] Status check_trust_file(const std::string& path, mode_t mode, uid_t owner, uid_t me);

// The allowed client keys (Z85) from `entries`, each one of: 40 Z85
// characters; a key file (.pub, or a .key whose public half is taken); or a
// directory, whose *.pub files are all read (other files are ignored). Files
// and directories must pass check_trust_file(). A directory without a
// single .pub file is an error (an empty allow-list would admit nobody),
// as is an empty `entries`.
[[nodiscard]] Result<std::set<std::string>> load_allowed_clients(const std::vector<std::string>& entries);

// The ZAP handler: a thread answering libzmq's requests on kZapEndpoint,
// admitting CURVE clients whose public key is in the list and refusing
// every other client (and any other mechanism). Start it before the
// sockets it guards bind, and destroy it before their context.
class ZapHandler {
 public:
  [[nodiscard]] static Result<std::unique_ptr<ZapHandler>> start(zmq::context_t& ctx, std::set<std::string> allowed);
  ~ZapHandler();
  ZapHandler(const ZapHandler&) = delete;
  ZapHandler& operator=(const ZapHandler&) = delete;

  std::uint64_t admitted() const noexcept { return admitted_.load(); }
  std::uint64_t refused() const noexcept { return refused_.load(); }
  std::size_t size() const noexcept { return allowed_.size(); }

 private:
  ZapHandler(zmq::socket_t sock, std::set<std::string> allowed);
  void run();

  zmq::socket_t sock_;
  std::set<std::string> allowed_;  // Z85; read-only once the thread runs
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> admitted_{0};
  std::atomic<std::uint64_t> refused_{0};
  std::thread thread_;
};

}  // namespace vmtide::wire::curve
