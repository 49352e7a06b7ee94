// SPDX-License-Identifier: Apache-2.0
// `vmtide tap` implementation (tap.h).
#include "tap.h"

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <variant>

#include <zmq.hpp>

#include "vmtide/wire/curve.h"
#include "vmtide/wire/zmq_io.h"

namespace vmtide::cli {
namespace {

std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop.store(true); }

bool wanted_vm(const wire::Message& m, const std::vector<std::string>& vms) {
  if (vms.empty()) return true;
  auto match = [&](const std::string& s) { return std::find(vms.begin(), vms.end(), s) != vms.end(); };
  if (auto* v = std::get_if<wire::VmSample>(&m.body)) return match(v->id) || match(v->name);
  if (auto* d = std::get_if<wire::Decision>(&m.body)) return match(d->vm) || (d->vm_name && match(*d->vm_name));
  if (auto* e = std::get_if<wire::Event>(&m.body)) return e->vm && match(*e->vm);
  return false;
}

}  // namespace

int run_tap(const TapOptions& opts) {
  if (opts.endpoints.empty()) {
    std::fprintf(stderr, "vmtide tap: no endpoint given (e.g. --connect tcp://kvm1:7470)\n");
    return 1;
  }
  if (!opts.kind.empty() && !wire::parse_kind(opts.kind)) {
    std::fprintf(stderr, "vmtide tap: unknown kind '%s' (vm, host, hb, decision, event)\n", opts.kind.c_str());
    return 1;
  }
  if (!opts.host.empty() && opts.kind.empty()) {
    std::fprintf(stderr, "vmtide tap: --host needs --kind (topics are vmtide.v1.<kind>.<host>)\n");
    return 1;
  }
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  // Prefix filtering happens at the publisher ("vmtide.v1.vm.kvm1"); a
  // prefix also matches kvm10, so the host is checked again after decoding.
  std::string prefix(wire::kTopicPrefix);
  if (!opts.kind.empty()) prefix += opts.kind + ".";
  if (!opts.host.empty()) prefix += opts.host;

  std::uint64_t printed = 0;
  std::map<std::string, std::uint64_t> errors;  // by error name
  // Per publisher (host, epoch): last seq, to report loss.
  std::map<std::pair<std::string, std::uint64_t>, std::uint64_t> last_seq;
  std::uint64_t lost = 0;
  try {
    zmq::context_t ctx;
    zmq::socket_t sub(ctx, zmq::socket_type::sub);
    sub.set(zmq::sockopt::linger, 0);
    sub.set(zmq::sockopt::rcvhwm, 100000);
    sub.set(zmq::sockopt::heartbeat_ivl, 1000);
    sub.set(zmq::sockopt::heartbeat_timeout, 3000);
    sub.set(zmq::sockopt::subscribe, prefix);
    if (Status st = wire::apply_limits(sub); !st) {
      std::fprintf(stderr, "vmtide tap: %s\n", st.error().message().c_str());
      return 1;
    }
    if (Status st = wire::curve::configure_subscriber(sub, opts.server_key, opts.client_key); !st) {
      std::fprintf(stderr, "vmtide tap: %s\n", st.error().context.c_str());
      return 1;
    }
    for (const auto& ep : opts.endpoints) sub.connect(ep);

    const auto start = std::chrono::steady_clock::now();
    while (!g_stop.load()) {
      if (opts.count != 0 && printed >= opts.count) break;
      long wait_ms = 200;
      if (opts.timeout_s > 0) {
        const double left =
            opts.timeout_s - std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (left <= 0) {
          std::fprintf(stderr, "vmtide tap: timed out after %.1f s with %llu message(s)\n", opts.timeout_s,
                       static_cast<unsigned long long>(printed));
          return 1;
        }
        wait_ms = std::min<long>(wait_ms, static_cast<long>(left * 1000) + 1);
      }
      zmq::pollitem_t item{sub.handle(), 0, ZMQ_POLLIN, 0};
      try {
        if (zmq::poll(&item, 1, std::chrono::milliseconds(wait_ms)) == 0) continue;
      } catch (const zmq::error_t& e) {
        if (e.num() == EINTR) continue;
        throw;
      }
      auto m = wire::recv_message(sub, zmq::recv_flags::dontwait);
      if (!m) {
        ++errors[std::string(errc_name(m.error().code))];
        std::fprintf(stderr, "vmtide tap: dropped a message: %s\n", m.error().message().c_str());
        continue;
      }
      if (!m->has_value()) continue;
      const wire::Message& msg = **m;
      // seq numbers every kind, so gaps mean loss only when all kinds arrive.
      if (opts.kind.empty()) {
        auto key = std::make_pair(msg.env.host, msg.env.epoch);
        if (auto it = last_seq.find(key); it != last_seq.end() && msg.env.seq > it->second + 1) {
          lost += msg.env.seq - it->second - 1;
        }
        last_seq[key] = msg.env.seq;
      }
      if (!opts.host.empty() && msg.env.host != opts.host) continue;
      if (!wanted_vm(msg, opts.vms)) continue;
      std::string line = wire::to_json(msg);
      line += '\n';
      std::fwrite(line.data(), 1, line.size(), stdout);
      std::fflush(stdout);
      ++printed;
    }
  } catch (const zmq::error_t& e) {
    std::fprintf(stderr, "vmtide tap: %s\n", e.what());
    return 1;
  }
  if (lost != 0 || !errors.empty()) {
    std::string summary;
    for (const auto& [name, n] : errors) summary += " " + name + "=" + std::to_string(n);
    std::fprintf(stderr, "vmtide tap: %llu message(s) lost (seq gaps); decode errors:%s\n",
                 static_cast<unsigned long long>(lost), summary.empty() ? " none" : summary.c_str());
  }
  return 0;
}

}  // namespace vmtide::cli
