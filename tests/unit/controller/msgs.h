// SPDX-License-Identifier: Apache-2.0
// Agent messages built by hand for the controller's unit tests.
#pragma once

#include <cstdint>
#include <string>

#include "vmtide/wire/messages.h"

namespace vmtide::testsupport {

inline constexpr std::uint64_t kSec = 1'000'000'000ULL;

// A publisher: host name, epoch and the next seq.
struct FakeAgent {
  std::string host;
  std::uint64_t epoch = 1;
  std::uint64_t seq = 0;
  std::uint32_t cpus = 8;

  wire::Message msg(wire::Message::Body body, std::uint64_t interval_ns = kSec) {
    wire::Message m;
    m.env.host = host;
    m.env.epoch = epoch;
    m.env.seq = ++seq;
    m.env.interval_ns = interval_ns;
    m.body = std::move(body);
    return m;
  }
  // Host busy at `load` of its capacity over one second.
  wire::Message host_sample(double load, std::uint64_t mem_avail = 64ULL << 30) {
    wire::HostSample h;
    h.cpus = cpus;
    h.cpu_busy_ns = static_cast<std::uint64_t>(load * cpus * kSec);
    h.mem_total_bytes = 128ULL << 30;
    h.mem_avail_bytes = mem_avail;
    h.link_bps = 10'000'000'000ULL;
    return msg(h);
  }
  // A VM using `cores` cores, waiting `steal` cores, with RAM and a dirty rate.
  wire::Message vm(const std::string& id, double cores, double steal = 0, std::uint64_t ram = 4ULL << 30,
                   std::uint64_t dirty_pages_per_s = 0) {
    wire::VmSample v;
    v.id = id;
    v.name = "vm-" + id;
    v.vcpus = 4;
    v.cpu_ns = static_cast<std::uint64_t>(cores * kSec);
    v.steal_ns = static_cast<std::uint64_t>(steal * kSec);
    v.ram_bytes = ram;
    v.rss_bytes = ram / 2;
    if (dirty_pages_per_s > 0) {
      v.dirty = wire::Dirty{wire::DirtySource::kQemu, 2 * kSec, 2 * dirty_pages_per_s, 4096, {}};
    }
    return msg(v);
  }
  wire::Message hb() { return msg(wire::Heartbeat{}, 0); }
};

}  // namespace vmtide::testsupport
