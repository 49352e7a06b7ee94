// SPDX-License-Identifier: Apache-2.0
// CURVE keys for the telemetry stream (docs/security.md): generating them,
// the key-file format and its permission checks, and configuring a ZeroMQ
// socket as a CURVE server (the agent) or client (tap, top, controller).
// cppzmq exceptions stop in curve.cc; everything returns Result values.
//
// Key files are TOML-compatible text, one key per line, `#` comments:
//
//   # vmtide CURVE secret key ...
//   public-key = "<40 Z85 characters>"
//   secret-key = "<40 Z85 characters>"
//
// PREFIX.key holds both (mode 0600); PREFIX.pub only the public key.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <zmq.hpp>

#include "vmtide/result.h"

namespace vmtide::wire::curve {

inline constexpr std::size_t kKeyBytes = 32;  // Curve25519
inline constexpr std::size_t kZ85Chars = 40;  // 32 bytes in Z85 (5 chars per 4 bytes)
inline constexpr std::size_t kMaxKeyFileBytes = 64 * 1024;

using KeyBytes = std::array<std::uint8_t, kKeyBytes>;

struct KeyPair {
  std::string public_z85;  // 40 Z85 characters
  std::string secret_z85;  // 40 Z85 characters; never logged
};

// What a key file holds; `secret_z85` only in a .key file.
struct KeyFile {
  std::string public_z85;
  std::optional<std::string> secret_z85;
};

// False when libzmq was built without libsodium (no CURVE at all).
bool available();

// Decodes a 40-character Z85 key; kInvalidArgument naming `what` otherwise.
[[nodiscard]] Result<KeyBytes> decode_z85(std::string_view z85, std::string_view what);

// A fresh keypair from zmq_curve_keypair (libsodium's random source).
[[nodiscard]] Result<KeyPair> generate();

// Parses key-file text (`source` names it in errors, "agent.key:3: ...").
// Accepts blank lines, `#` comment lines and `public-key` / `secret-key`
// lines, each at most once; anything else is an error. With a secret key the
// public key may be omitted (it is derived) but, if present, must match.
[[nodiscard]] Result<KeyFile> parse_key_file(std::string_view text, const std::string& source);

// The permission rule for a file holding a secret key: a regular file owned
// by `me` (the effective uid) or root, with no group or other permission
// bits. kPermission with the file, its mode and the command that fixes it.
[[nodiscard]] Status check_secret_file(const std::string& path, mode_t mode, uid_t owner, uid_t me);

// Reads a .key file: opens it, checks it with check_secret_file() (on the
// open descriptor, so what is checked is what is read), parses it and
// requires a secret key.
[[nodiscard]] Result<KeyPair> load_secret_key_file(const std::string& path);

// A peer's public key, given as a path to a key file (.pub, or .key) or as
// the 40 Z85 characters themselves. An existing file wins over a string.
[[nodiscard]] Result<std::string> load_public_key(const std::string& file_or_z85);

// The two files `vmtide keygen` writes.
std::string format_secret_file(const KeyPair& k);
std::string format_public_file(const KeyPair& k);

// Writes PREFIX.key (created 0600 with O_CREAT|O_EXCL, never widened
// afterwards) and PREFIX.pub (0644). Without `force` an existing file is an
// error and nothing is written; with it each file is written to a fresh
// temporary and renamed over the old one, so a replaced .key never inherits
// the old file's mode.
[[nodiscard]] Status write_key_files(const std::string& prefix, const KeyPair& k, bool force);

// Makes `socket` a CURVE server with `server`'s secret key. Call before bind.
[[nodiscard]] Status configure_server(zmq::socket_t& socket, const KeyPair& server);

// Makes `socket` a CURVE client that accepts only the server holding the
// secret key of `server_public_z85`, presenting `client` as its own
// keypair. Call before connect.
[[nodiscard]] Status configure_client(zmq::socket_t& socket, std::string_view server_public_z85, const KeyPair& client);

// The client side as the CLI options give it: the server's key (file or
// Z85) and an optional .key file for the client's own keypair; without
// one, an ephemeral keypair (the server learns nothing about who we are,
// which is all CURVE without an allow-list needs). An empty
// `server_key` with an empty `client_key_file` leaves the socket plain;
// a client key without a server key is an error.
[[nodiscard]] Status configure_subscriber(zmq::socket_t& socket, const std::string& server_key,
                                          const std::string& client_key_file);

}  // namespace vmtide::wire::curve
