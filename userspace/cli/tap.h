// SPDX-License-Identifier: Apache-2.0
// `vmtide tap`: subscribes to agents (and controllers) and prints their
// messages as JSON lines, one per message.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace vmtide::cli {

struct TapOptions {
  std::vector<std::string> endpoints;  // tcp://host:port of each publisher
  std::string kind;                    // "", or one of vm|host|hb|decision|event
  std::string host;                    // "", or one publisher's host name
  std::vector<std::string> vms;        // keep only vm/decision/event messages of these ids or names
  std::uint64_t count = 0;             // exit after this many printed messages (0: never)
  double timeout_s = 0;                // give up after this long (0: never)
  std::string server_key;              // the agent's public key (file or Z85); "": no CURVE
  std::string client_key;              // our .key file; "": an ephemeral keypair
};

// Runs until count or timeout or SIGINT. Returns the process exit status:
// 0 when done (count reached, or interrupted), 1 on timeout or error.
int run_tap(const TapOptions& opts);

}  // namespace vmtide::cli
