// SPDX-License-Identifier: Apache-2.0
// Invariant checks and small helpers for the cluster model (cluster.h).
#include "cluster.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <functional>
#include <string>
#include <unordered_map>
#include <utility>

namespace vmtide::model {
namespace {

bool bad(double v) { return !std::isfinite(v) || v < 0.0; }

}  // namespace

bool has_tag(const std::vector<std::string>& tags, std::string_view tag) noexcept {
  return std::find(tags.begin(), tags.end(), tag) != tags.end();
}

Status validate(const ClusterModel& m) {
  auto r = host_of_vms(m);
  if (!r) return r.error();
  return {};
}

Result<std::vector<std::size_t>> host_of_vms(const ClusterModel& m) {
  // Hash tables: only looked up, never iterated, so their order cannot leak
  // into a plan; a round over 10 000 hosts x 20 VMs must stay well under
  // 100 ms, and node-based ordered sets cost tens of ms here in cache misses.
  std::unordered_map<std::string_view, std::size_t> hosts;
  hosts.reserve(m.hosts.size());
  for (std::size_t i = 0; i < m.hosts.size(); ++i) {
    const HostState& h = m.hosts[i];
    if (h.name.empty()) return make_error(Errc::kInvalidArgument, "model: host with an empty name");
    if (!hosts.emplace(h.name, i).second) return make_error(Errc::kInvalidArgument, "model: duplicate host " + h.name);
    if (h.cpus == 0) return make_error(Errc::kInvalidArgument, "model: host " + h.name + " has 0 cpus");
    if (bad(h.cpu_load_frac) || bad(h.steal_frac) || bad(h.io_pressure_frac) || bad(h.link_bw_bytes_per_s)) {
      return make_error(Errc::kInvalidArgument, "model: host " + h.name + " has a negative or non-finite signal");
    }
  }
  // VM ids: a flat open-addressing table of (hash, index + 1); one probe
  // sequence per VM instead of a node allocation.
  const std::size_t cap = std::bit_ceil(std::max<std::size_t>(16, m.vms.size() * 2));
  std::vector<std::pair<std::size_t, std::size_t>> ids(cap, {0, 0});
  const std::hash<std::string_view> hash;
  std::vector<std::size_t> host_of(m.vms.size());
  for (std::size_t i = 0; i < m.vms.size(); ++i) {
    const VmState& v = m.vms[i];
    if (v.id.empty()) return make_error(Errc::kInvalidArgument, "model: VM with an empty id");
    const std::size_t hv = hash(v.id);
    for (std::size_t slot = hv & (cap - 1);; slot = (slot + 1) & (cap - 1)) {
      if (ids[slot].second == 0) {
        ids[slot] = {hv, i + 1};
        break;
      }
      if (ids[slot].first == hv && m.vms[ids[slot].second - 1].id == v.id) {
        return make_error(Errc::kInvalidArgument, "model: duplicate VM " + v.id);
      }
    }
    auto h = hosts.find(v.host);
    if (h == hosts.end()) {
      return make_error(Errc::kInvalidArgument, "model: VM " + v.id + " is on unknown host '" + v.host + "'");
    }
    host_of[i] = h->second;
    if (bad(v.cpu_used_cores) || bad(v.steal_cores) || bad(v.dirty_bytes_per_s)) {
      return make_error(Errc::kInvalidArgument, "model: VM " + v.id + " has a negative or non-finite signal");
    }
  }
  return host_of;
}

}  // namespace vmtide::model
