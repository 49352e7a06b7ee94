// SPDX-License-Identifier: Apache-2.0
// A fake agent for controller tests: the agents' real Publisher (real
// envelopes, seq, epoch) reporting a host load and VMs that the test
// chooses. Used in-process (controller_stream_test.cc) and as a process of
// its own that can be killed with -9 (fake_agent.cc, fault_test.cc).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "publisher.h"

namespace vmtide::testsupport {

struct FakeVm {
  std::string id;
  double cores = 0;
  std::uint64_t ram_bytes = 2ULL << 30;
  std::uint64_t dirty_pages = 4000;  // distinct pages written per 2 s window
};

struct FakeHost {
  std::unique_ptr<agent::Publisher> pub;
  double load = 0;
  std::vector<FakeVm> vms;
  bool alive = true;
  std::uint64_t tick_ns = 100'000'000ULL;  // the interval each sample claims

  void tick() {
    if (!alive) return;
    wire::HostSample h;
    h.cpus = 8;
    h.cpu_busy_ns = static_cast<std::uint64_t>(load * 8 * static_cast<double>(tick_ns));
    h.mem_total_bytes = 64ULL << 30;
    h.mem_avail_bytes = 48ULL << 30;
    h.link_bps = 10'000'000'000ULL;
    pub->publish(h, tick_ns);
    for (const FakeVm& vm : vms) {
      wire::VmSample v;
      v.id = vm.id;
      v.name = "vm-" + vm.id;
      v.vcpus = 4;
      v.cpu_ns = static_cast<std::uint64_t>(vm.cores * static_cast<double>(tick_ns));
      v.ram_bytes = vm.ram_bytes;
      v.rss_bytes = vm.ram_bytes / 2;
      v.dirty = wire::Dirty{wire::DirtySource::kQemu, 2'000'000'000ULL, vm.dirty_pages, 4096, {}};
      pub->publish(v, tick_ns);
    }
    pub->publish(wire::Heartbeat{}, 0);
  }
};

}  // namespace vmtide::testsupport
