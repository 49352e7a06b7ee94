// SPDX-License-Identifier: Apache-2.0
// TopModel and render (top_model.h).
#include "top_model.h"

#include <algorithm>
#include <cstdio>
#include <variant>

namespace vmtide::cli {

void TopModel::ingest(const wire::Message& m, Clock::time_point now) {
  last_seen_[m.env.host] = now;
  const auto* v = std::get_if<wire::VmSample>(&m.body);
  if (v != nullptr && m.env.interval_ns > 0) {
    const double iv = static_cast<double>(m.env.interval_ns);
    TopRow r;
    r.host = m.env.host;
    r.vm = v->name;
    r.vm_id = v->id;
    r.cpu_pct = 100.0 * static_cast<double>(v->cpu_ns) / iv;
    r.steal_pct = 100.0 * static_cast<double>(v->steal_ns) / iv;
    auto key = std::make_pair(m.env.host, v->id);
    if (v->dirty && v->dirty->window_ns > 0) {
      const double bytes = static_cast<double>(v->dirty->pages * v->dirty->page_bytes);
      dirty_[key] = {bytes * 1e9 / static_cast<double>(v->dirty->window_ns) / (1 << 20), bytes / (1 << 20)};
    }
    if (auto d = dirty_.find(key); d != dirty_.end()) {  // windows close every ~30 s: keep the last
      r.dirty_mib_s = d->second.first;
      r.wws_mib = d->second.second;
    }
    if (v->io) r.io_mb_s = static_cast<double>(v->io->rd_bytes + v->io->wr_bytes) * 1e9 / iv / 1e6;
    if (v->psi && v->psi->io_some_us) r.psi_io_pct = 100.0 * static_cast<double>(*v->psi->io_some_us) * 1e3 / iv;
    vms_[key] = r;
    return;
  }
  if (const auto* e = std::get_if<wire::Event>(&m.body); e != nullptr && e->type == "vm_stopped" && e->vm) {
    vms_.erase({m.env.host, *e->vm});
    dirty_.erase({m.env.host, *e->vm});
  }
}

std::vector<std::string> TopModel::stale_hosts(Clock::time_point now) const {
  std::vector<std::string> out;
  for (const auto& [host, t] : last_seen_) {
    if (now - t > stale_after_) out.push_back(host);
  }
  return out;
}

std::vector<TopRow> TopModel::rows(SortKey key, Clock::time_point now) const {
  const auto stale = stale_hosts(now);
  std::vector<TopRow> out;
  for (const auto& [k, r] : vms_) {
    TopRow row = r;
    row.stale = std::find(stale.begin(), stale.end(), r.host) != stale.end();
    out.push_back(row);
  }
  auto metric = [key](const TopRow& r) {
    switch (key) {
      case SortKey::kCpu: return r.cpu_pct;
      case SortKey::kSteal: return r.steal_pct;
      case SortKey::kDirty: return r.dirty_mib_s;
      case SortKey::kIo: return r.io_mb_s;
      case SortKey::kName: return 0.0;
    }
    return 0.0;
  };
  std::stable_sort(out.begin(), out.end(), [&](const TopRow& a, const TopRow& b) {
    if (key == SortKey::kName) return std::tie(a.vm, a.host) < std::tie(b.vm, b.host);
    return metric(a) > metric(b);
  });
  return out;
}

std::vector<std::string> render(const std::vector<TopRow>& rows, const std::vector<std::string>& stale_hosts,
                                SortKey key, std::size_t hosts, std::size_t width, std::size_t height) {
  static const char* kKeyNames[] = {"cpu", "steal", "dirty", "io", "name"};
  std::vector<std::string> out;
  char buf[512];
  std::string stale;
  for (const auto& h : stale_hosts) stale += (stale.empty() ? "" : ",") + h;
  std::snprintf(buf, sizeof buf, "vmtide top: %zu VMs on %zu hosts, sorted by %s%s%s   keys: c s d i n q", rows.size(),
                hosts, kKeyNames[static_cast<int>(key)], stale.empty() ? "" : ", STALE: ", stale.c_str());
  out.emplace_back(buf);
  std::snprintf(buf, sizeof buf, "%-20s %-12s %7s %7s %9s %8s %8s %6s", "VM", "HOST", "CPU%", "STEAL%", "DIRTYMiB/s",
                "WWS MiB", "IO MB/s", "PSIio%");
  out.emplace_back(buf);
  auto num = [](double v, const char* fmt) {
    char b[32];
    if (v < 0) return std::string("-");
    std::snprintf(b, sizeof b, fmt, v);
    return std::string(b);
  };
  for (const auto& r : rows) {
    if (out.size() >= height) break;
    std::snprintf(buf, sizeof buf, "%-20.20s %-12.12s %7.1f %7.1f %9s %8s %8.2f %6s%s", r.vm.c_str(), r.host.c_str(),
                  r.cpu_pct, r.steal_pct, num(r.dirty_mib_s, "%.1f").c_str(), num(r.wws_mib, "%.0f").c_str(), r.io_mb_s,
                  num(r.psi_io_pct, "%.1f").c_str(), r.stale ? "  (stale)" : "");
    out.emplace_back(buf);
  }
  for (auto& line : out) {
    if (line.size() > width) line.resize(width);
  }
  return out;
}

}  // namespace vmtide::cli
