// SPDX-License-Identifier: Apache-2.0
// fake_agent: a FakeHost (fake_host.h) as a process of its own, so a fault
// test can kill it with -9 or run it in a network namespace. Publishes a
// tick every INTERVAL_MS until SIGTERM/SIGINT; logs "publishing on EP" on
// stderr like vmtide-agent, so AgentProcess::endpoint() finds it.
//   usage: fake_agent ENDPOINT HOST LOAD INTERVAL_MS [VM_ID:CORES[:RAM_MIB[:DIRTY_PAGES_PER_2S]] ...]
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <zmq.hpp>

#include "fake_host.h"

namespace {
std::atomic<bool> g_stop{false};
void on_stop(int) { g_stop.store(true); }
}  // namespace

int main(int argc, char** argv) {
  using namespace vmtide;
  if (argc < 5) {
    std::fprintf(stderr, "usage: %s ENDPOINT HOST LOAD INTERVAL_MS [VM_ID:CORES[:RAM_MIB[:DIRTY_PAGES_PER_2S]] ...]\n", argv[0]);
    return 2;
  }
  struct sigaction sa {};
  sa.sa_handler = on_stop;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  zmq::context_t ctx;
  auto p = agent::Publisher::create(ctx, {.endpoint = argv[1], .host = argv[2], .sndhwm = 10000});
  if (!p) {
    std::fprintf(stderr, "fake_agent: %s\n", p.error().message().c_str());
    return 1;
  }
  testsupport::FakeHost h{std::move(*p)};
  h.load = std::atof(argv[3]);
  const std::uint64_t interval_ns = std::strtoull(argv[4], nullptr, 10) * 1'000'000ULL;
  h.tick_ns = interval_ns;
  for (int i = 5; i < argc; ++i) {
    const std::string vm = argv[i];
    const auto colon = vm.find(':');
    if (colon == std::string::npos) {
      std::fprintf(stderr, "fake_agent: '%s' is not VM_ID:CORES\n", argv[i]);
      return 2;
    }
    testsupport::FakeVm v{vm.substr(0, colon), std::atof(vm.c_str() + colon + 1)};
    if (const auto ram = vm.find(':', colon + 1); ram != std::string::npos) {
      v.ram_bytes = std::strtoull(vm.c_str() + ram + 1, nullptr, 10) << 20;
      if (const auto dirty = vm.find(':', ram + 1); dirty != std::string::npos) {
        v.dirty_pages = std::strtoull(vm.c_str() + dirty + 1, nullptr, 10);
      }
    }
    h.vms.push_back(std::move(v));
  }
  std::fprintf(stderr, "fake_agent %s publishing on %s (epoch %llu)\n", argv[2], h.pub->endpoint().c_str(),
               static_cast<unsigned long long>(h.pub->epoch()));
  std::uint64_t next = agent::mono_now_ns();
  while (!g_stop.load()) {
    h.tick();
    next += interval_ns;
    h.pub->wait_until(next, g_stop);
  }
  return 0;
}
