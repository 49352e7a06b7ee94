// SPDX-License-Identifier: Apache-2.0
// Wire messages -> ClusterModel (builder.h).
#include "builder.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <type_traits>
#include <variant>

namespace vmtide::model {
namespace {

using std::chrono::nanoseconds;

constexpr nanoseconds kDefaultInterval = std::chrono::seconds{1};

// `n` of a host's intervals, saturating: the agent chooses its interval (up
// to 2^63 ns on the wire) and the configuration `n`, and converting a
// double past INT64_MAX to int64 is undefined.
nanoseconds intervals(double n, nanoseconds interval) {
  const double ns = n * static_cast<double>(interval.count());
  return ns < 9.2e18 ? nanoseconds{static_cast<std::int64_t>(ns)} : nanoseconds::max();
}
constexpr nanoseconds kBucket = std::chrono::seconds{1};

double seconds(nanoseconds d) { return static_cast<double>(d.count()) / 1e9; }

}  // namespace

ModelBuilder::Host& ModelBuilder::host_for(const wire::Envelope& env) {
  if (last_host_ == nullptr || last_host_->h.name != env.host) {
    auto it = hosts_.find(env.host);
    if (it == hosts_.end()) {
      it = hosts_.emplace(env.host, Host{}).first;
      it->second.h.name = env.host;
    }
    last_host_ = &it->second;
  }
  Host& h = *last_host_;
  if (h.h.epochs_seen == 0 || env.epoch != h.h.epoch) {
    // First contact or a restart: sequence numbers start over. Smoothed
    // values are kept (the machine did not change), the sample count that
    // gates "fresh" restarts.
    h.h.epoch = env.epoch;
    h.h.last_seq = 0;
    h.h.host_samples = 0;
    ++h.h.epochs_seen;
    ++counters_.epochs;
  }
  return h;
}

void ModelBuilder::count_loss(Host& h, std::uint64_t received, std::uint64_t lost, TimeNs now) {
  if (h.loss.empty() || now - h.loss.back().start >= kBucket) h.loss.push_back(LossBucket{now, 0, 0});
  h.loss.back().received += received;
  h.loss.back().lost += lost;
  while (!h.loss.empty() && now - h.loss.front().start > cfg_.loss_window) h.loss.erase(h.loss.begin());
}

bool ModelBuilder::on_message(const wire::Message& m, TimeNs now) {
  const auto kind = m.kind();
  if (kind == wire::Kind::kDecision || kind == wire::Kind::kEvent) {
    // Not model input; still proof of life, but a controller's own stream
    // must not make a host look alive, so only agents' kinds count.
    ++counters_.ignored;
    return false;
  }
  Host& h = host_for(m.env);
  if (m.env.seq <= h.h.last_seq) {
    ++h.h.duplicates;
    ++counters_.duplicates;
    return false;
  }
  // Joining late is not loss: the first seq of an epoch we see may be > 1.
  const std::uint64_t gap = h.h.last_seq == 0 ? 0 : m.env.seq - h.h.last_seq - 1;
  h.h.last_seq = m.env.seq;
  h.h.lost += gap;
  counters_.lost += gap;
  ++h.h.received;
  ++counters_.accepted;
  h.h.last_seen = now;
  count_loss(h, 1, gap, now);

  std::visit(
      [&](const auto& body) {
        using T = std::decay_t<decltype(body)>;
        if constexpr (std::is_same_v<T, wire::VmSample>) {
          on_vm(h, m.env, body, now);
        } else if constexpr (std::is_same_v<T, wire::HostSample>) {
          on_host(h, m.env, body, now);
        }
      },
      m.body);
  return true;
}

void ModelBuilder::on_host(Host& h, const wire::Envelope& env, const wire::HostSample& s, TimeNs now) {
  ++h.h.host_samples;
  if (env.interval_ns > 0) h.h.interval = nanoseconds{env.interval_ns};
  h.cpus = s.cpus;
  h.mem_total = s.mem_total_bytes;
  h.mem_avail = s.mem_avail_bytes;
  h.link_bw = s.link_bps ? static_cast<double>(*s.link_bps) / 8.0 : 0.0;
  if (s.cpus > 0 && env.interval_ns > 0) {
    const double busy = static_cast<double>(s.cpu_busy_ns) / (static_cast<double>(s.cpus) * static_cast<double>(env.interval_ns));
    h.busy = ewma_update(h.busy, std::max(0.0, busy), now, cfg_.tau);
    double io = 0.0;
    if (s.psi && s.psi->io_some_us) {
      io = std::clamp(static_cast<double>(*s.psi->io_some_us) * 1e3 / static_cast<double>(env.interval_ns), 0.0, 1.0);
    }
    h.io_pressure = ewma_update(h.io_pressure, io, now, cfg_.tau);
  }
}

void ModelBuilder::on_vm(Host& h, const wire::Envelope& env, const wire::VmSample& s, TimeNs now) {
  auto [it, inserted] = h.vms.try_emplace(s.id);
  Vm& v = it->second;
  if (inserted) {
    v.id = s.id;
    v.host = h.h.name;
  }
  v.name = s.name;
  v.vcpus = s.vcpus;
  v.ram = s.ram_bytes;
  v.rss = s.rss_bytes;
  v.last_seen = now;
  if (env.interval_ns > 0) {
    const double iv = static_cast<double>(env.interval_ns);
    v.used = ewma_update(v.used, static_cast<double>(s.cpu_ns) / iv, now, cfg_.tau);
    v.steal = ewma_update(v.steal, static_cast<double>(s.steal_ns) / iv, now, cfg_.tau);
  }
  if (s.dirty && s.dirty->src != wire::DirtySource::kNone && s.dirty->window_ns > 0) {
    const wire::Dirty& d = *s.dirty;
    const std::uint64_t page = d.page_bytes > 0 ? d.page_bytes : 4096;
    v.dirty_bps = static_cast<double>(d.pages) * static_cast<double>(page) * 1e9 / static_cast<double>(d.window_ns);
    std::vector<DirtyPoint> curve;
    if (!d.curve.empty()) {
      for (const wire::DirtyPoint& p : d.curve) curve.push_back(DirtyPoint{nanoseconds{p.tau_ns}, p.pages * page});
    } else {
      curve.push_back(DirtyPoint{nanoseconds{d.window_ns}, d.pages * page});
    }
    v.curve = curve_ewma_update(std::move(v.curve), curve, now, cfg_.tau);
  }
}

std::string ModelBuilder::stale_reason(const Host& h, TimeNs now) const {
  char buf[160];
  const nanoseconds interval = h.h.interval.count() > 0 ? h.h.interval : kDefaultInterval;
  const auto limit = std::max(cfg_.min_stale_after, intervals(cfg_.stale_after_intervals, interval));
  if (now - h.h.last_seen > limit) {
    std::snprintf(buf, sizeof buf, "silent for %.1f s (stale after %.1f s)", seconds(now - h.h.last_seen), seconds(limit));
    return buf;
  }
  if (h.h.host_samples < cfg_.min_host_samples || h.cpus == 0) {
    std::snprintf(buf, sizeof buf, "waiting for host samples (%llu of %llu since its epoch began)",
                  static_cast<unsigned long long>(h.h.host_samples), static_cast<unsigned long long>(cfg_.min_host_samples));
    return buf;
  }
  std::uint64_t rec = 0, lost = 0;
  for (const LossBucket& b : h.loss) {
    if (now - b.start > cfg_.loss_window) continue;
    rec += b.received;
    lost += b.lost;
  }
  if (lost > 0 && static_cast<double>(lost) > cfg_.max_loss_frac * static_cast<double>(rec + lost)) {
    std::snprintf(buf, sizeof buf, "lost %llu of %llu messages in the last %.0f s (sequence gaps)",
                  static_cast<unsigned long long>(lost), static_cast<unsigned long long>(rec + lost),
                  seconds(cfg_.loss_window));
    return buf;
  }
  return {};
}

std::size_t ModelBuilder::vm_count() const noexcept {
  std::size_t n = 0;
  for (const auto& [name, h] : hosts_) n += h.vms.size();
  return n;
}

bool ModelBuilder::vm_expired(const Host& h, const Vm& v, TimeNs now) const {
  const nanoseconds interval = h.h.interval.count() > 0 ? h.h.interval : kDefaultInterval;
  const auto limit = std::max(cfg_.min_stale_after, intervals(cfg_.vm_expiry_intervals, interval));
  return now - v.last_seen > limit;
}

std::vector<HostHealth> ModelBuilder::health(TimeNs now) const {
  std::vector<HostHealth> out;
  out.reserve(hosts_.size());
  for (const auto& [name, h] : hosts_) {
    HostHealth hh = h.h;
    hh.stale_reason = stale_reason(h, now);
    hh.stale = !hh.stale_reason.empty();
    out.push_back(std::move(hh));
  }
  return out;
}

ClusterModel ModelBuilder::snapshot(TimeNs now, const Overrides& ov) const {
  ClusterModel m;
  m.now = now;
  // Which copy of each VM id is current: the one reported last. Hosts
  // without a host sample are not in the model, nor are their VMs.
  std::unordered_map<std::string_view, const Vm*> current;
  for (const auto& [name, h] : hosts_) {
    if (h.cpus == 0) continue;
    for (const auto& [id, v] : h.vms) {
      if (vm_expired(h, v, now)) continue;
      auto [it, inserted] = current.try_emplace(v.id, &v);
      if (!inserted && (v.last_seen > it->second->last_seen ||
                        (v.last_seen == it->second->last_seen && v.host > it->second->host))) {
        it->second = &v;
      }
    }
  }
  std::vector<const Vm*> mine;
  for (const auto& [name, h] : hosts_) {
    if (h.cpus == 0) continue;
    mine.clear();
    double steal_cores = 0;
    for (const auto& [id, v] : h.vms) {
      auto it = current.find(v.id);
      if (it == current.end() || it->second != &v) continue;
      mine.push_back(&v);
      steal_cores += v.steal.value;
    }
    // Stable output: hosts in name order, their VMs in id order.
    std::sort(mine.begin(), mine.end(), [](const Vm* a, const Vm* b) { return a->id < b->id; });
    HostState hs;
    hs.name = name;
    hs.cpus = h.cpus;
    hs.steal_frac = steal_cores / h.cpus;
    hs.cpu_load_frac = h.busy.value + hs.steal_frac;
    hs.mem_total_bytes = h.mem_total;
    hs.mem_free_bytes = h.mem_avail;
    hs.io_pressure_frac = h.io_pressure.value;
    hs.link_bw_bytes_per_s = h.link_bw;
    hs.stale = !stale_reason(h, now).empty();
    if (auto o = ov.hosts.find(name); o != ov.hosts.end()) {
      hs.maintenance = o->second.maintenance;
      hs.tags = o->second.tags;
    }
    m.hosts.push_back(std::move(hs));
    for (const Vm* v : mine) {
      VmState vs;
      vs.id = v->id;
      vs.name = v->name;
      vs.host = v->host;
      vs.vcpus = v->vcpus;
      vs.cpu_used_cores = v->used.value;
      vs.steal_cores = v->steal.value;
      vs.ram_bytes = v->ram;
      vs.rss_bytes = v->rss;
      vs.dirty_bytes_per_s = v->dirty_bps;
      vs.dirty_curve = curve_value(v->curve);
      auto o = ov.vms.find(v->name);
      if (o == ov.vms.end()) o = ov.vms.find(v->id);
      if (o != ov.vms.end()) {
        vs.tags = o->second.tags;
        vs.affinity_group = o->second.affinity_group;
        vs.anti_affinity_groups = o->second.anti_affinity_groups;
      }
      m.vms.push_back(std::move(vs));
    }
  }
  return m;
}

void ModelBuilder::prune(TimeNs now, std::chrono::nanoseconds forget_after) {
  last_host_ = nullptr;
  for (auto it = hosts_.begin(); it != hosts_.end();) {
    if (now - it->second.h.last_seen > forget_after) {
      counters_.vms_expired += it->second.vms.size();
      it = hosts_.erase(it);
      continue;
    }
    Host& h = it->second;
    std::erase_if(h.vms, [&](const auto& kv) {
      const bool gone = vm_expired(h, kv.second, now);
      counters_.vms_expired += gone ? 1 : 0;
      return gone;
    });
    ++it;
  }
}

}  // namespace vmtide::model
