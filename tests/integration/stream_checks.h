// SPDX-License-Identifier: Apache-2.0
// What the QEMU integration tests check on the agent's stream, whatever
// found the guest (libvirt or /proc): a subscriber with a bounded wait, a
// stopped guest leaving the stream, and a restarted agent's new epoch.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include <zmq.hpp>

#include "vmtide/wire/zmq_io.h"

namespace vmtide::testsupport {

// A SUB socket on every vmtide topic, with the wire's size limits.
class StreamReader {
 public:
  StreamReader() : sub_(ctx_, zmq::socket_type::sub) {
    sub_.set(zmq::sockopt::subscribe, "vmtide.v1.");
    limits_ok_ = wire::apply_limits(sub_).ok();
  }
  bool limits_ok() const { return limits_ok_; }
  void connect(const std::string& endpoint) { sub_.connect(endpoint); }
  // The next message within `timeout`; nullopt on a timeout or an
  // undecodable message.
  std::optional<wire::Message> next(std::chrono::milliseconds timeout) {
    zmq::pollitem_t item{sub_.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, timeout) == 0) return std::nullopt;
    auto m = wire::recv_message(sub_);
    if (!m || !m->has_value()) return std::nullopt;
    return **m;
  }

 private:
  zmq::context_t ctx_;
  zmq::socket_t sub_;
  bool limits_ok_ = false;
};

// After the guest `vm_id` stopped: one vm_stopped for it, no sample of it
// afterwards, then three heartbeats (counting no VM when `no_other_vms`).
inline void expect_vm_leaves(StreamReader& s, const std::string& vm_id, bool no_other_vms) {
  using namespace std::chrono_literals;
  bool stopped = false;
  int hb_after = 0;
  for (auto deadline = std::chrono::steady_clock::now() + 30s;
       std::chrono::steady_clock::now() < deadline && hb_after < 3;) {
    auto m = s.next(1000ms);
    if (!m) continue;
    if (const auto* e = std::get_if<wire::Event>(&m->body); e && e->type == "vm_stopped" && e->vm == vm_id) {
      EXPECT_FALSE(stopped) << "reported twice";
      stopped = true;
    }
    if (const auto* v = std::get_if<wire::VmSample>(&m->body); v && v->id == vm_id) {
      EXPECT_FALSE(stopped) << "a sample after vm_stopped";
    }
    if (stopped && std::holds_alternative<wire::Heartbeat>(m->body)) {
      if (no_other_vms) {
        EXPECT_EQ(std::get<wire::Heartbeat>(m->body).vms, 0u);
      }
      ++hb_after;
    }
  }
  EXPECT_TRUE(stopped);
  EXPECT_EQ(hb_after, 3);
}

// After the agent was killed with -9 and started again on `endpoint`: the
// first message of another epoch starts at seq 1, in a later epoch.
inline void expect_new_epoch(StreamReader& s, const std::string& endpoint, std::uint64_t old_epoch) {
  using namespace std::chrono_literals;
  s.connect(endpoint);
  std::optional<wire::Message> first;
  for (auto deadline = std::chrono::steady_clock::now() + 30s; std::chrono::steady_clock::now() < deadline && !first;) {
    auto m = s.next(1000ms);
    if (m && m->env.epoch != old_epoch) first = m;
  }
  ASSERT_TRUE(first) << "nothing from the restarted agent";
  EXPECT_EQ(first->env.seq, 1u);
  EXPECT_GT(first->env.epoch, old_epoch) << "epochs are start times: the new one is later";
}

}  // namespace vmtide::testsupport
