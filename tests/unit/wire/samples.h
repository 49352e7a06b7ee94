// SPDX-License-Identifier: Apache-2.0
// Sample wire messages shared by the wire tests, the fuzz seed generator and
// the docs examples: each kind with every optional key, and with none.
#pragma once

#include <string>
#include <vector>

#include "vmtide/wire/messages.h"

namespace vmtide::wire::samples {

inline Envelope envelope(std::uint64_t seq, std::uint64_t interval_ns = 1'000'000'000) {
  return Envelope{.host = "node1",
                  .epoch = 1'700'000'000'000'000'000,
                  .seq = seq,
                  .ts_ns = 1'700'000'012'000'000'000,
                  .mono_ns = 12'000'000'000,
                  .interval_ns = interval_ns};
}

inline constexpr const char* kVmId = "6b1d0c4e-3f7a-4d8e-9a1b-2c3d4e5f6a7b";

inline Message full_vm() {
  VmSample s{
      .id = kVmId,
      .name = "web1",
      .pid = 4242,
      .vcpus = 4,
      .cpu_ns = 1'830'000'000,
      .steal_ns = 120'000'000,
      .ram_bytes = 4ULL << 30,
      .rss_bytes = 3'400'000'000,
      .steal_hist = {0, 12, 40, 25, 8, 2, 1},
      .preempt = {{.tgid = 3100, .comm = "kworker/u8:2", .ns = 41'000'000},
                  {.tgid = 5120, .comm = "stress-ng-cpu", .ns = 30'000'000}},
      .dirty = Dirty{.src = DirtySource::kSoftDirty,
                     .window_ns = 1'000'000'000,
                     .pages = 5120,
                     .page_bytes = 4096,
                     .curve = {{100'000'000, 900}, {250'000'000, 2100}, {500'000'000, 3600}, {1'000'000'000, 5120}}},
      .io = Io{.rd_bytes = 1 << 20,
               .wr_bytes = 4 << 20,
               .rd_ops = 256,
               .wr_ops = 1024,
               .dstate_ns = 3'000'000,
               .lat_hist = {0, 4, 200, 600, 180, 16, 1}},
      .psi = Psi{.cpu_some_us = 120'000,
                 .cpu_full_us = 90'000,
                 .io_some_us = 2000,
                 .io_full_us = 1500,
                 .mem_some_us = 0,
                 .mem_full_us = 0}};
  return Message{envelope(42), std::move(s)};
}

inline Message minimal_vm() {
  return Message{envelope(1), VmSample{.id = "proc:4242", .name = "pid4242", .pid = 4242, .vcpus = 1}};
}

inline Message full_host() {
  HostSample s{.cpus = 16,
               .cpu_busy_ns = 9'200'000'000,
               .mem_total_bytes = 64ULL << 30,
               .mem_avail_bytes = 21ULL << 30,
               .load1 = 6.25,
               .load5 = 5.5,
               .load15 = 4.75,
               .vms = 3,
               .psi = Psi{.cpu_some_us = 80'000, .io_some_us = 5000, .mem_some_us = 0},
               .link_bps = 10'000'000'000,
               .cpu_steal_ns = 0};
  return Message{envelope(43), s};
}

inline Message minimal_host() { return Message{envelope(2), HostSample{.cpus = 1}}; }

inline Message full_hb() {
  return Message{envelope(44, 0), Heartbeat{.vms = 3, .uptime_ns = 3'600'000'000'000, .dropped = 0, .errors = 2}};
}

inline Message minimal_hb() { return Message{envelope(3, 0), Heartbeat{}}; }

inline Message full_decision() {
  Decision d{.id = "d-000017",
             .mode = Mode::kRecommend,
             .strategy = "adaptive",
             .vm = kVmId,
             .src = "node1",
             .dst = "node3",
             .reason = "node1 run-queue steal 12% above the cluster mean; web1 converges in 2 passes",
             .outcome = Outcome::kRecommended,
             .vm_name = "web1",
             .score = 0.82,
             .entropy_before = 0.61,
             .entropy_after = 0.34,
             .predict = Prediction{.total_ms = 8400.5,
                                   .downtime_ms = 120.25,
                                   .bytes = 5'368'709'120,
                                   .passes = 2,
                                   .converges = true,
                                   .need_bw_bps = 1'250'000'000,
                                   .need_throttle_pct = 0},
             .candidates = {{.vm = kVmId, .dst = "node3", .score = 0.82, .gain = 0.27, .cost_s = 8.4},
                            {.vm = "proc:5120",
                             .dst = "node2",
                             .score = 0.4,
                             .gain = 0.1,
                             .cost_s = 31.5,
                             .rejected = "downtime above 300 ms"}},
             .detail = "recommend mode: the operator decides"};
  return Message{envelope(45, 0), std::move(d)};
}

inline Message minimal_decision() {
  return Message{envelope(4, 0), Decision{.id = "d-1",
                                          .mode = Mode::kEnforce,
                                          .strategy = "push",
                                          .vm = "proc:1",
                                          .src = "a",
                                          .dst = "b",
                                          .reason = "r",
                                          .outcome = Outcome::kFailed}};
}

inline Message full_event() {
  return Message{envelope(46, 0), Event{.type = "migration_completed",
                                        .detail = "web1 moved node1 -> node3 in 8.1 s",
                                        .vm = kVmId,
                                        .fields = {{"downtime_ms", "118"}, {"dst", "node3"}, {"src", "node1"}}}};
}

inline Message minimal_event() { return Message{envelope(5, 0), Event{.type = "agent_started", .detail = ""}}; }

struct Named {
  std::string name;
  Message message;
};

// Every sample, full ones first (one per kind, in Kind order).
inline std::vector<Named> all() {
  return {{"vm_full", full_vm()},
          {"host_full", full_host()},
          {"hb_full", full_hb()},
          {"decision_full", full_decision()},
          {"event_full", full_event()},
          {"vm_minimal", minimal_vm()},
          {"host_minimal", minimal_host()},
          {"hb_minimal", minimal_hb()},
          {"decision_minimal", minimal_decision()},
          {"event_minimal", minimal_event()}};
}

}  // namespace vmtide::wire::samples
