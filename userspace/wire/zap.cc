// SPDX-License-Identifier: Apache-2.0
// The CURVE allow-list and its ZAP handler (vmtide/wire/zap.h); no
// zmq::error_t escapes this file or the handler's thread.
#include "vmtide/wire/zap.h"

#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include <zmq.h>

#include "vmtide/wire/curve.h"

namespace vmtide::wire::curve {
namespace {

std::string mode_octal(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

Status check_path(const std::string& path, struct stat* st) {
  if (stat(path.c_str(), st) != 0) {
    return make_error(errno == ENOENT ? Errc::kNotFound : Errc::kIo,
                      "allowed client keys: cannot read " + path + ": " + std::strerror(errno));
  }
  return check_trust_file(path, st->st_mode, st->st_uid, geteuid());
}

}  // namespace

Status check_trust_file(const std::string& path, mode_t mode, uid_t owner, uid_t me) {
  if (owner != me && owner != 0) {
    return make_error(Errc::kPermission, "allowed client keys: " + path + " belongs to uid " + std::to_string(owner) +
                                             ", not to this process's uid " + std::to_string(me) +
                                             " or root, who could add keys to it; fix: chown " + std::to_string(me) +
                                             " " + path);
  }
  if ((mode & 022) != 0) {
    return make_error(Errc::kPermission, "allowed client keys: " + path + " has mode " + mode_octal(mode) +
                                             ": group or others may add keys to it; fix: chmod go-w " + path);
  }
  return {};
}

Result<std::set<std::string>> load_allowed_clients(const std::vector<std::string>& entries) {
  if (entries.empty()) return make_error(Errc::kInvalidArgument, "allowed client keys: the list is empty");
  std::set<std::string> out;
  for (const std::string& e : entries) {
    struct stat st {};
    if (e.size() == kZ85Chars && stat(e.c_str(), &st) != 0) {
      auto k = decode_z85(e, "allowed client key '" + e + "'");
      if (!k) return std::move(k).error();
      out.insert(e);
      continue;
    }
    if (Status ok = check_path(e, &st); !ok) return ok.error();
    if (S_ISDIR(st.st_mode)) {
      std::size_t found = 0;
      std::error_code ec;
      for (const auto& f : std::filesystem::directory_iterator(e, ec)) {
        if (f.path().extension() != ".pub") continue;
        const std::string p = f.path().string();
        struct stat fst {};
        if (Status ok = check_path(p, &fst); !ok) return ok.error();
        auto k = load_public_key(p);
        if (!k) return make_error(k.error().code, "allowed client keys: " + k.error().context);
        out.insert(std::move(*k));
        ++found;
      }
      if (ec) return make_error(Errc::kIo, "allowed client keys: listing " + e + ": " + ec.message());
      if (found == 0) {
        return make_error(Errc::kInvalidArgument, "allowed client keys: no .pub file in the directory " + e +
                                                      " (an empty allow-list would admit no subscriber)");
      }
      continue;
    }
    auto k = load_public_key(e);
    if (!k) return make_error(k.error().code, "allowed client keys: " + k.error().context);
    out.insert(std::move(*k));
  }
  return out;
}

Result<std::unique_ptr<ZapHandler>> ZapHandler::start(zmq::context_t& ctx, std::set<std::string> allowed) {
  if (!available()) {
    return make_error(Errc::kUnsupported, "this libzmq has no CURVE support (it was built without libsodium)");
  }
  try {
    zmq::socket_t sock(ctx, zmq::socket_type::rep);
    sock.set(zmq::sockopt::linger, 0);
    sock.bind(kZapEndpoint);
    return std::unique_ptr<ZapHandler>(new ZapHandler(std::move(sock), std::move(allowed)));
  } catch (const zmq::error_t& e) {
    return make_error(Errc::kTransport, std::string("binding the ZAP handler on ") + kZapEndpoint + ": " + e.what());
  }
}

ZapHandler::ZapHandler(zmq::socket_t sock, std::set<std::string> allowed)
    : sock_(std::move(sock)), allowed_(std::move(allowed)) {
  thread_ = std::thread([this] { run(); });
}

ZapHandler::~ZapHandler() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

void ZapHandler::run() {
  // RFC 27: request = version, request id, domain, address, routing id,
  // mechanism, credentials...; reply = version, request id, status code,
  // status text, user id, metadata.
  while (!stop_.load()) {
    try {
      zmq::pollitem_t item{sock_.handle(), 0, ZMQ_POLLIN, 0};
      if (zmq::poll(&item, 1, std::chrono::milliseconds{100}) <= 0) continue;
      std::vector<zmq::message_t> req;
      for (;;) {
        zmq::message_t part;
        if (!sock_.recv(part, zmq::recv_flags::dontwait)) break;
        const bool more = part.more();
        req.push_back(std::move(part));
        if (!more) break;
      }
      if (req.empty()) continue;
      bool ok = false;
      std::string why = "unsupported request";
      std::string user;
      if (req.size() >= 7 && req[0].to_string_view() == "1.0") {
        const std::string_view mech = req[5].to_string_view();
        if (mech == "CURVE" && req[6].size() == kKeyBytes) {
          std::array<char, kZ85Chars + 1> z85{};
          zmq_z85_encode(z85.data(), static_cast<const std::uint8_t*>(req[6].data()), kKeyBytes);
          user.assign(z85.data(), kZ85Chars);
          ok = allowed_.contains(user);
          why = ok ? "OK" : "client key not allowed";
        } else {
          why = "mechanism " + std::string(mech) + " not allowed";
        }
      }
      ++(ok ? admitted_ : refused_);
      const std::string request_id = req.size() >= 2 ? req[1].to_string() : std::string();
      sock_.send(zmq::buffer(std::string_view("1.0")), zmq::send_flags::sndmore);
      sock_.send(zmq::buffer(request_id), zmq::send_flags::sndmore);
      sock_.send(zmq::buffer(std::string_view(ok ? "200" : "400")), zmq::send_flags::sndmore);
      sock_.send(zmq::buffer(why), zmq::send_flags::sndmore);
      sock_.send(zmq::buffer(ok ? user : std::string()), zmq::send_flags::sndmore);
      sock_.send(zmq::buffer(std::string_view()), zmq::send_flags::none);
    } catch (const zmq::error_t& e) {
      if (e.num() == ETERM) return;  // the context is going away
    }
  }
}

}  // namespace vmtide::wire::curve
