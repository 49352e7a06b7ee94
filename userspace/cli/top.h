// SPDX-License-Identifier: Apache-2.0
// `vmtide top`: a live table of every VM across the agents it listens to.
#pragma once

#include <string>
#include <vector>

namespace vmtide::cli {

struct TopOptions {
  std::vector<std::string> endpoints;
  std::string sort = "steal";  // cpu, steal, dirty, io, name
  double refresh_s = 1.0;
  int frames = 0;  // exit after this many frames (0: until q or SIGINT)
  std::string server_key;  // the agents' public key (file or Z85); "": no CURVE
  std::string client_key;  // our .key file; "": an ephemeral keypair
};

int run_top(const TopOptions& opts);

}  // namespace vmtide::cli
