// SPDX-License-Identifier: Apache-2.0
// CURVE keys and socket setup (vmtide/wire/curve.h); no zmq::error_t
// escapes this file.
#include "vmtide/wire/curve.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <zmq.h>

namespace vmtide::wire::curve {
namespace {

constexpr std::string_view kZ85Alphabet =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

std::string sys_error(int err) { return std::strerror(err); }

Error transport_error(std::string_view what, const zmq::error_t& e) {
  return make_error(Errc::kTransport, std::string(what) + ": " + e.what());
}

Status no_curve() {
  return make_error(Errc::kUnsupported, "this libzmq has no CURVE support (it was built without libsodium)");
}

// Decoded key bytes that wipe themselves: secret keys should not linger in
// freed memory.
struct WipedKey {
  KeyBytes bytes{};
  ~WipedKey() { explicit_bzero(bytes.data(), bytes.size()); }
};

// Closes a descriptor on every path.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

Result<std::string> read_all(int fd, const std::string& path) {
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error(Errc::kIo, "reading " + path + ": " + sys_error(errno));
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
    if (out.size() > kMaxKeyFileBytes) {
      return make_error(Errc::kInvalidArgument,
                        path + " is larger than " + std::to_string(kMaxKeyFileBytes) + " bytes: not a key file");
    }
  }
  return out;
}

Status write_all(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    const ssize_t n = write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error(Errc::kIo, "writing " + path + ": " + sys_error(errno));
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  if (fsync(fd) != 0) return make_error(Errc::kIo, "syncing " + path + ": " + sys_error(errno));
  return {};
}

std::string mode_octal(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// Creates `path` with O_CREAT|O_EXCL and `mode`, writes `data` and, if
// `exact_mode`, sets `mode` regardless of the umask. Removes what it created
// if anything fails.
Status create_exclusive(const std::string& path, std::string_view data, mode_t mode, bool exact_mode) {
  Fd f{open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode)};
  if (f.fd < 0) {
    if (errno == EEXIST) {
      return make_error(Errc::kInvalidArgument, path + " already exists; not overwriting it (--force replaces it)");
    }
    return make_error(errno == EACCES ? Errc::kPermission : Errc::kIo,
                      "cannot create " + path + ": " + sys_error(errno));
  }
  Status st = write_all(f.fd, data, path);
  if (st && exact_mode && fchmod(f.fd, mode) != 0) {
    st = make_error(Errc::kIo, "setting the mode of " + path + ": " + sys_error(errno));
  }
  if (!st) unlink(path.c_str());
  return st;
}

// Writes `data` to a fresh temporary beside `path` and renames it over
// `path`. mkostemp creates the temporary with O_CREAT|O_EXCL and mode 0600,
// so a secret is never readable by others, not even for a moment; a public
// file is widened to `mode` before the rename.
Status replace_atomically(const std::string& path, std::string_view data, mode_t mode) {
  std::string tmpl = path + ".XXXXXX";
  std::vector<char> name(tmpl.begin(), tmpl.end());
  name.push_back('\0');
  Fd f{mkostemp(name.data(), O_CLOEXEC)};
  if (f.fd < 0) return make_error(Errc::kIo, "cannot create a temporary file beside " + path + ": " + sys_error(errno));
  const std::string tmp(name.data());
  Status st = write_all(f.fd, data, tmp);
  if (st && mode != 0600 && fchmod(f.fd, mode) != 0) {
    st = make_error(Errc::kIo, "setting the mode of " + tmp + ": " + sys_error(errno));
  }
  if (st && rename(tmp.c_str(), path.c_str()) != 0) {
    st = make_error(Errc::kIo, "cannot replace " + path + ": " + sys_error(errno));
  }
  if (!st) unlink(tmp.c_str());
  return st;
}

}  // namespace

bool available() { return zmq_has("curve") != 0; }

Result<KeyBytes> decode_z85(std::string_view z85, std::string_view what) {
  if (z85.size() != kZ85Chars) {
    return make_error(Errc::kInvalidArgument, std::string(what) + " must be " + std::to_string(kZ85Chars) +
                                                  " Z85 characters, got " + std::to_string(z85.size()));
  }
  for (char c : z85) {
    if (kZ85Alphabet.find(c) == std::string_view::npos) {
      return make_error(Errc::kInvalidArgument,
                        std::string(what) + " contains '" + std::string(1, c) + "', which is not a Z85 character");
    }
  }
  const std::string z(z85);  // zmq_z85_decode wants a terminated string
  KeyBytes out{};
  if (zmq_z85_decode(out.data(), z.c_str()) == nullptr) {
    return make_error(Errc::kInvalidArgument, std::string(what) + " is not a valid Z85 key");
  }
  return out;
}

Result<KeyPair> generate() {
  char pub[kZ85Chars + 1] = {};
  char sec[kZ85Chars + 1] = {};
  if (zmq_curve_keypair(pub, sec) != 0) {
    if (errno == ENOTSUP) return no_curve().error();
    return make_error(Errc::kIo, std::string("zmq_curve_keypair: ") + zmq_strerror(errno));
  }
  KeyPair k{pub, sec};
  explicit_bzero(sec, sizeof sec);
  return k;
}

Result<KeyFile> parse_key_file(std::string_view text, const std::string& source) {
  std::optional<std::string> pub, sec;
  std::size_t line_no = 0;
  while (!text.empty()) {
    const std::size_t nl = text.find('\n');
    std::string_view line = trim(text.substr(0, nl));
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++line_no;
    if (line.empty() || line.front() == '#') continue;
    const std::string at = source + ":" + std::to_string(line_no) + ": ";
    auto bad = [&](const std::string& m) { return make_error(Errc::kInvalidArgument, at + m); };

    const std::size_t eq = line.find('=');
    if (eq == std::string_view::npos) return bad("expected 'public-key = \"...\"' or 'secret-key = \"...\"'");
    const std::string key(trim(line.substr(0, eq)));
    std::string_view rest = trim(line.substr(eq + 1));
    std::optional<std::string>* slot = nullptr;
    if (key == "public-key") slot = &pub;
    if (key == "secret-key") slot = &sec;
    if (slot == nullptr) return bad("unknown key '" + key + "' (known: public-key, secret-key)");
    if (slot->has_value()) return bad("'" + key + "' appears twice");
    // A TOML basic ("...") or literal ('...') string; Z85 has neither quote
    // nor backslash, so no escapes can occur in a valid key.
    if (rest.empty() || (rest.front() != '"' && rest.front() != '\''))
      return bad("'" + key + "' must be a quoted string");
    const char quote = rest.front();
    const std::size_t close = rest.find(quote, 1);
    if (close == std::string_view::npos) return bad("unterminated string for '" + key + "'");
    const std::string_view value = rest.substr(1, close - 1);
    const std::string_view after = trim(rest.substr(close + 1));
    if (!after.empty() && after.front() != '#') return bad("unexpected text after the value of '" + key + "'");
    auto decoded = decode_z85(value, "'" + key + "'");
    if (!decoded) return bad(decoded.error().context);
    *slot = std::string(value);
  }
  if (!pub && !sec)
    return make_error(Errc::kInvalidArgument, source + ": no public-key or secret-key: not a vmtide key file");
  KeyFile out;
  if (sec) {
    char derived[kZ85Chars + 1] = {};
    if (zmq_curve_public(derived, sec->c_str()) != 0) {
      if (errno == ENOTSUP) return no_curve().error();
      return make_error(Errc::kInvalidArgument, source + ": cannot derive the public key from the secret-key");
    }
    if (pub && *pub != derived) {
      return make_error(Errc::kInvalidArgument, source +
                                                    ": the public-key does not belong to the secret-key (a damaged "
                                                    "or edited file: generate a new pair with `vmtide keygen`)");
    }
    out.public_z85 = derived;
    out.secret_z85 = std::move(sec);
  } else {
    out.public_z85 = std::move(*pub);
  }
  return out;
}

Status check_secret_file(const std::string& path, mode_t mode, uid_t owner, uid_t me) {
  if (!S_ISREG(mode)) return make_error(Errc::kPermission, "secret key file " + path + " is not a regular file");
  if (owner != me && owner != 0) {
    return make_error(Errc::kPermission, "secret key file " + path + " belongs to uid " + std::to_string(owner) +
                                             ", not to this process's uid " + std::to_string(me) +
                                             " or root; fix: chown " + std::to_string(me) + " " + path);
  }
  if ((mode & 077) != 0) {
    return make_error(Errc::kPermission, "secret key file " + path + " has mode " + mode_octal(mode) +
                                             ": group or others may read or change it; fix: chmod 600 " + path);
  }
  return {};
}

Result<KeyPair> load_secret_key_file(const std::string& path) {
  // O_NONBLOCK: opening a FIFO someone put there must not hang the agent;
  // the check below rejects it.
  Fd f{open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)};
  if (f.fd < 0) {
    const int err = errno;
    const Errc code = err == ENOENT ? Errc::kNotFound : err == EACCES ? Errc::kPermission : Errc::kIo;
    return make_error(code, "cannot open secret key file " + path + ": " + sys_error(err));
  }
  struct stat st {};
  if (fstat(f.fd, &st) != 0) return make_error(Errc::kIo, "fstat " + path + ": " + sys_error(errno));
  if (!S_ISREG(st.st_mode)) return check_secret_file(path, st.st_mode, st.st_uid, geteuid()).error();
  // Read before judging the mode, only to name the likelier mistake: a .pub
  // given where the .key belongs (it is 0644 by design).
  auto text = read_all(f.fd, path);
  if (!text) return std::move(text).error();
  auto parsed = parse_key_file(*text, path);
  explicit_bzero(text->data(), text->size());
  if (parsed && !parsed->secret_z85) {
    return make_error(Errc::kInvalidArgument,
                      path + " holds no secret-key (a .pub file? the agent needs the matching .key file)");
  }
  if (Status ok = check_secret_file(path, st.st_mode, st.st_uid, geteuid()); !ok) return ok.error();
  if (!parsed) return std::move(parsed).error();
  return KeyPair{std::move(parsed->public_z85), std::move(*parsed->secret_z85)};
}

Result<std::string> load_public_key(const std::string& file_or_z85) {
  if (file_or_z85.empty()) return make_error(Errc::kInvalidArgument, "empty public key");
  struct stat st {};
  const int stat_err = stat(file_or_z85.c_str(), &st) == 0 ? 0 : errno;
  if (stat_err == 0) {
    if (!S_ISREG(st.st_mode)) return make_error(Errc::kInvalidArgument, file_or_z85 + " is not a regular file");
    Fd f{open(file_or_z85.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY)};
    if (f.fd < 0) return make_error(Errc::kIo, "cannot open " + file_or_z85 + ": " + sys_error(errno));
    auto text = read_all(f.fd, file_or_z85);
    if (!text) return std::move(text).error();
    auto parsed = parse_key_file(*text, file_or_z85);
    explicit_bzero(text->data(), text->size());
    if (!parsed) return std::move(parsed).error();
    return std::move(parsed->public_z85);
  }
  if (file_or_z85.size() == kZ85Chars) {
    auto decoded = decode_z85(file_or_z85, "the public key");
    if (!decoded) return std::move(decoded).error();
    return file_or_z85;
  }
  return make_error(Errc::kNotFound, "public key '" + file_or_z85 + "' is neither an existing key file (" +
                                         sys_error(stat_err) + ") nor " + std::to_string(kZ85Chars) +
                                         " Z85 characters");
}

std::string format_secret_file(const KeyPair& k) {
  return "# vmtide CURVE secret key (written by `vmtide keygen`). Keep it private:\n"
         "# mode 0600, owned by the user the agent runs as. Never copy it to a\n"
         "# subscriber; give them the .pub file. Format: docs/security.md.\n"
         "public-key = \"" +
         k.public_z85 + "\"\nsecret-key = \"" + k.secret_z85 + "\"\n";
}

std::string format_public_file(const KeyPair& k) {
  return "# vmtide CURVE public key (written by `vmtide keygen`). Safe to share:\n"
         "# subscribers pass this file to --server-key to reach the agent that\n"
         "# holds the matching .key file. Format: docs/security.md.\n"
         "public-key = \"" +
         k.public_z85 + "\"\n";
}

Status write_key_files(const std::string& prefix, const KeyPair& k, bool force) {
  if (prefix.empty()) return make_error(Errc::kInvalidArgument, "no path prefix given");
  for (const char* ext : {".key", ".pub"}) {
    if (prefix.size() > 4 && prefix.compare(prefix.size() - 4, 4, ext) == 0) {
      return make_error(Errc::kInvalidArgument, "give the prefix without '" + std::string(ext) + "': '" + prefix +
                                                    "' would write " + prefix + ".key and " + prefix + ".pub");
    }
  }
  const std::string key = prefix + ".key";
  const std::string pub = prefix + ".pub";
  if (force) {
    if (Status st = replace_atomically(key, format_secret_file(k), 0600); !st) return st;
    return replace_atomically(pub, format_public_file(k), 0644);
  }
  // Refuse before writing anything, so a refusal leaves no half pair.
  for (const auto& p : {key, pub}) {
    struct stat st {};
    if (lstat(p.c_str(), &st) == 0) {
      return make_error(Errc::kInvalidArgument, p + " already exists; not overwriting it (--force replaces it)");
    }
  }
  if (Status st = create_exclusive(key, format_secret_file(k), 0600, false); !st) return st;
  // The public key is meant to be copied around: 0644 whatever the umask.
  if (Status st = create_exclusive(pub, format_public_file(k), 0644, true); !st) {
    unlink(key.c_str());
    return st;
  }
  return {};
}

Status configure_server(zmq::socket_t& socket, const KeyPair& server) {
  if (!available()) return no_curve();
  WipedKey secret;
  auto decoded = decode_z85(server.secret_z85, "the secret key");
  if (!decoded) return std::move(decoded).error();
  secret.bytes = *decoded;
  explicit_bzero(decoded->data(), decoded->size());
  try {
    socket.set(zmq::sockopt::curve_server, true);
    socket.set(zmq::sockopt::curve_secretkey, zmq::buffer(secret.bytes));
  } catch (const zmq::error_t& e) {
    return transport_error("configuring the CURVE server", e);
  }
  return {};
}

Status configure_client(zmq::socket_t& socket, std::string_view server_public_z85, const KeyPair& client) {
  if (!available()) return no_curve();
  auto server = decode_z85(server_public_z85, "the server's public key");
  if (!server) return std::move(server).error();
  auto pub = decode_z85(client.public_z85, "the client's public key");
  if (!pub) return std::move(pub).error();
  WipedKey secret;
  auto decoded = decode_z85(client.secret_z85, "the client's secret key");
  if (!decoded) return std::move(decoded).error();
  secret.bytes = *decoded;
  explicit_bzero(decoded->data(), decoded->size());
  try {
    socket.set(zmq::sockopt::curve_serverkey, zmq::buffer(*server));
    socket.set(zmq::sockopt::curve_publickey, zmq::buffer(*pub));
    socket.set(zmq::sockopt::curve_secretkey, zmq::buffer(secret.bytes));
  } catch (const zmq::error_t& e) {
    return transport_error("configuring the CURVE client", e);
  }
  return {};
}

Status configure_subscriber(zmq::socket_t& socket, const std::string& server_key, const std::string& client_key_file) {
  if (server_key.empty()) {
    if (client_key_file.empty()) return {};
    return make_error(Errc::kInvalidArgument, "a client key needs the agent's public key too (--server-key)");
  }
  if (!available()) return no_curve();
  auto server = load_public_key(server_key);
  if (!server) return std::move(server).error();
  auto client = client_key_file.empty() ? generate() : load_secret_key_file(client_key_file);
  if (!client) return std::move(client).error();
  return configure_client(socket, *server, *client);
}

}  // namespace vmtide::wire::curve
