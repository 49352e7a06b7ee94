// SPDX-License-Identifier: Apache-2.0
// `vmtide keygen`: a CURVE keypair for an agent (or a subscriber), written
// as PREFIX.key (secret, 0600) and PREFIX.pub (public, 0644).
#pragma once

#include <string>

namespace vmtide::cli {

struct KeygenOptions {
  std::string prefix;  // writes prefix + ".key" and prefix + ".pub"
  bool force = false;  // replace existing files
};

// Returns the process exit status: 0 when both files were written, 1 otherwise.
int run_keygen(const KeygenOptions& opts);

}  // namespace vmtide::cli
