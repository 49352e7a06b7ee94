// SPDX-License-Identifier: Apache-2.0
// `vmtide keygen` implementation (keygen.h); the file handling is in
// vmtide/wire/curve.h so tests and other tools share it.
#include "keygen.h"

#include <cstdio>

#include "vmtide/wire/curve.h"

namespace vmtide::cli {

int run_keygen(const KeygenOptions& opts) {
  auto keys = wire::curve::generate();
  if (!keys) {
    std::fprintf(stderr, "vmtide keygen: %s\n", keys.error().context.c_str());
    return 1;
  }
  if (Status st = wire::curve::write_key_files(opts.prefix, *keys, opts.force); !st) {
    std::fprintf(stderr, "vmtide keygen: %s\n", st.error().context.c_str());
    return 1;
  }
  std::printf("wrote %s.key (secret: keep it on the agent's host, mode 0600)\n", opts.prefix.c_str());
  std::printf("wrote %s.pub (public key %s: give it to subscribers)\n", opts.prefix.c_str(), keys->public_z85.c_str());
  return 0;
}

}  // namespace vmtide::cli
