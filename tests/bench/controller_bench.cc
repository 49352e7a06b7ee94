// SPDX-License-Identifier: Apache-2.0
// scripts/bench controller: the controller's two hot paths on one core.
//  - ingest: decode (the strict v1 decoder) + model update of agents' vm
//    samples, against decoding alone in the same run (the baseline);
//  - a decision round over 10 000 hosts x 20 VMs (snapshot of the model
//    handed to the planner, Push/Pull with every safety rule, the pre-copy
//    predictor as the cost of each candidate), against one entropy
//    evaluation of the same cluster.
// Metric keys (contract): ingest_samples_per_s, round_ms_10k_hosts.
#include <time.h>

#include <chrono>
#include <random>
#include <string>
#include <vector>

#include "bench_util.h"
#include "builder.h"
#include "entropy.h"
#include "planner.h"
#include "vmtide/wire/codec.h"

namespace {

using namespace vmtide;

double cpu_s() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

struct Frame {
  std::string topic, body;
};

// `hosts` agents x `vms` VMs x `ticks` ticks of vm samples (and one host
// sample per agent and tick), encoded as they travel.
std::vector<Frame> make_stream(int hosts, int vms, int ticks) {
  std::vector<Frame> out;
  out.reserve(static_cast<std::size_t>(hosts) * (vms + 1) * ticks);
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> load(0.05, 0.95);
  for (int t = 1; t <= ticks; ++t) {
    for (int h = 0; h < hosts; ++h) {
      wire::Message m;
      m.env.host = "kvm" + std::to_string(h);
      m.env.epoch = 1;
      m.env.seq = static_cast<std::uint64_t>(t) * (vms + 1);
      m.env.interval_ns = 1'000'000'000ULL;
      wire::HostSample hs;
      hs.cpus = 64;
      hs.cpu_busy_ns = static_cast<std::uint64_t>(load(rng) * 64e9);
      hs.mem_total_bytes = 512ULL << 30;
      hs.mem_avail_bytes = 256ULL << 30;
      m.body = hs;
      out.push_back({wire::topic(m), wire::encode(m)});
      for (int v = 0; v < vms; ++v) {
        m.env.seq = static_cast<std::uint64_t>(t) * (vms + 1) + 1 + v;
        wire::VmSample s;
        s.id = "4f1c2d3e-0000-4000-8000-" + std::to_string(100000000000LL + h * 100 + v);
        s.name = "vm-" + std::to_string(h) + "-" + std::to_string(v);
        s.pid = 1000 + v;
        s.vcpus = 4;
        s.cpu_ns = static_cast<std::uint64_t>(load(rng) * 4e9);
        s.steal_ns = 1'000'000;
        s.ram_bytes = 8ULL << 30;
        s.rss_bytes = 4ULL << 30;
        s.steal_hist = {0, 3, 10, 4, 1};
        s.io = wire::Io{1 << 20, 2 << 20, 10, 20, 0, {}};
        if (v % 15 == t % 15) s.dirty = wire::Dirty{wire::DirtySource::kSoftDirty, 2'000'000'000ULL, 10000, 4096, {}};
        m.body = s;
        out.push_back({wire::topic(m), wire::encode(m)});
      }
    }
  }
  return out;
}

model::ClusterModel make_cluster(int hosts, int vms_per_host) {
  model::ClusterModel m;
  m.now = model::TimeNs{std::chrono::hours{1}};
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> cores(0.1, 3.0);
  for (int h = 0; h < hosts; ++h) {
    model::HostState hs;
    hs.name = "kvm" + std::to_string(h);
    hs.cpus = 64;
    hs.mem_total_bytes = 512ULL << 30;
    hs.mem_free_bytes = 200ULL << 30;
    hs.link_bw_bytes_per_s = 1.25e9;
    double demand = 0;
    // One host in ten is hot, one in five cold.
    const double scale = h % 10 == 0 ? 1.9 : (h % 5 == 1 ? 0.2 : 1.0);
    for (int v = 0; v < vms_per_host; ++v) {
      model::VmState vs;
      vs.id = "vm-" + std::to_string(h) + "-" + std::to_string(v);
      vs.name = vs.id;
      vs.host = hs.name;
      vs.vcpus = 4;
      vs.cpu_used_cores = cores(rng) * scale;
      vs.ram_bytes = 8ULL << 30;
      vs.rss_bytes = 4ULL << 30;
      vs.dirty_bytes_per_s = 20e6;
      vs.dirty_curve = {{std::chrono::seconds{1}, 15'000'000}, {std::chrono::seconds{2}, 25'000'000}};
      demand += vs.demand_cores();
      m.vms.push_back(std::move(vs));
    }
    hs.cpu_load_frac = demand / hs.cpus;
    m.hosts.push_back(std::move(hs));
  }
  return m;
}

}  // namespace

int main() {
  bench::Report rep("controller");

  // ---- ingest ----
  const auto stream = make_stream(500, 20, 20);  // 210 000 messages
  bench::progress("ingest: %zu encoded messages (500 agents x 21 messages x 20 ticks)", stream.size());
  std::vector<double> decode_rate, ingest_rate;
  for (int rep_i = 0; rep_i < 5; ++rep_i) {
    // Baseline: decoding alone.
    double t0 = cpu_s();
    std::size_t ok = 0;
    for (const auto& f : stream) ok += wire::decode(f.topic, wire::as_bytes(f.body)) ? 1 : 0;
    double dt = cpu_s() - t0;
    if (ok != stream.size()) {
      bench::progress("decode failed for %zu messages", stream.size() - ok);
      return 1;
    }
    decode_rate.push_back(static_cast<double>(stream.size()) / dt);
    // Decode + model update, at 1 ms of controller time per message.
    model::ModelBuilder b;
    t0 = cpu_s();
    std::int64_t tick = 0;
    for (const auto& f : stream) {
      auto m = wire::decode(f.topic, wire::as_bytes(f.body));
      b.on_message(*m, model::TimeNs{++tick * 1000});
    }
    dt = cpu_s() - t0;
    ingest_rate.push_back(static_cast<double>(stream.size()) / dt);
    bench::progress("  rep %d: decode %.0f msg/s, decode+model %.0f msg/s (%zu hosts, %zu VMs)", rep_i,
                    decode_rate.back(), ingest_rate.back(), b.host_count(), b.vm_count());
  }
  const double ingest = bench::median(ingest_rate), decode = bench::median(decode_rate);
  rep.metric("ingest_samples_per_s", ingest);
  rep.metric("decode_only_samples_per_s", decode);
  rep.metric("ingest_vs_decode_ratio", ingest / decode);

  // ---- one round over 10 000 hosts x 20 VMs ----
  const model::ClusterModel m = make_cluster(10000, 20);
  strategy::PlannerConfig cfg;
  cfg.hot_sustain = std::chrono::seconds{0};
  cfg.cold_sustain = std::chrono::seconds{0};
  cfg.max_inflight_cluster = 64;
  const auto cost = strategy::make_precopy_cost_model();
  // A first round learns the zones (hot/cold since): the measured rounds
  // then act, each from that same history.
  auto warm = strategy::plan_round(m, cfg, {}, {}, cost);
  if (!warm) {
    bench::progress("planner: %s", warm.error().message().c_str());
    return 1;
  }
  std::vector<double> round_ms, entropy_ms;
  std::size_t moves = 0;
  for (int i = 0; i < 5; ++i) {
    // Thread CPU time: the other tenants of a shared machine do not count.
    double t0 = cpu_s();
    auto r = strategy::plan_round(m, cfg, warm->state, {}, cost);
    round_ms.push_back((cpu_s() - t0) * 1e3);
    moves = r ? r->plan.moves.size() : 0;
    t0 = cpu_s();
    std::vector<double> loads;
    loads.reserve(m.hosts.size());
    for (const auto& h : m.hosts) loads.push_back(h.cpu_load_frac);
    auto e = strategy::normalized_entropy(loads);
    entropy_ms.push_back((cpu_s() - t0) * 1e3);
    bench::progress("  round %d: %.1f ms, %zu moves planned (entropy alone %.3f ms, %.4f)", i, round_ms.back(), moves,
                    entropy_ms.back(), e ? *e : 0.0);
  }
  rep.metric("round_ms_10k_hosts", bench::median(round_ms));
  rep.metric("round_moves_10k_hosts", static_cast<double>(moves));
  rep.metric("entropy_ms_10k_hosts", bench::median(entropy_ms));
  rep.metric("round_vs_entropy_ratio", bench::median(round_ms) / bench::median(entropy_ms));
  rep.print();
  return 0;
}
