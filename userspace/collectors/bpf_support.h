// SPDX-License-Identifier: Apache-2.0
// What every BPF collector needs before it loads: a preflight check that
// explains a missing privilege or kernel feature in one sentence, libbpf's
// log routed to spdlog, and kernel BTF queries for load-time configuration.
#pragma once

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "vmtide/result.h"

namespace vmtide::bpf {

// Checks that BPF programs can be loaded here: kernel BTF present
// (/sys/kernel/btf/vmlinux, for CO-RE and tp_btf) and the effective
// capabilities include CAP_BPF + CAP_PERFMON, or CAP_SYS_ADMIN. The error's
// context is a sentence fit for a log line or a test's skip reason.
[[nodiscard]] Status preflight();

// Routes libbpf's messages to spdlog (warnings and errors; debug when
// `verbose`). Idempotent. The callback never throws (it is a C callback).
void install_libbpf_logging(bool verbose = false);

// Number of parameters of a tracepoint in the running kernel, from the BTF
// of its `btf_trace_<name>` typedef, not counting the leading `void *`.
// Used to set load-time options where tracepoints gained arguments.
[[nodiscard]] Result<int> tracepoint_arity(const std::string& name);

// Reads every entry of a hash map into `keys` and `values` (for a per-CPU
// map, `ncpus` values per key, key i's at [i * ncpus, (i + 1) * ncpus)).
// One bpf() call per batch of up to 256 entries (BPF_MAP_LOOKUP_BATCH,
// kernel 5.6+) instead of two per entry with get_next_key + lookup: the
// agent reads these maps every tick for every VM. Falls back to the
// per-entry walk where the kernel has no batch lookup for the map.
//
// With `and_delete`, every entry read is also deleted (lookup-and-delete
// batches, or the walk deleting as it goes): counters kept this way are
// deltas since the previous read, and entries of keys that stopped being
// written (a preempting process that exited) do not pile up.
template <class K, class V>
[[nodiscard]] Status read_hash_map(const bpf_map* map, int ncpus, std::vector<K>& keys, std::vector<V>& values,
                                   bool and_delete = false) {
  static_assert(sizeof(V) % 8 == 0, "per-CPU values are 8-byte aligned in batches: pad the value type");
  const std::size_t per = static_cast<std::size_t>(ncpus > 0 ? ncpus : 1);
  keys.clear();
  values.clear();
  const int fd = bpf_map__fd(map);
  constexpr std::uint32_t kBatch = 256;
  std::vector<K> kb(kBatch);
  std::vector<V> vb(kBatch * per);
  // The batch cursor is opaque to userspace (a bucket index for hash maps).
  std::uint64_t cursor[4] = {};
  bool first = true;
  for (;;) {
    std::uint32_t count = kBatch;
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    const int err = and_delete ? bpf_map_lookup_and_delete_batch(fd, first ? nullptr : cursor, cursor, kb.data(),
                                                                 vb.data(), &count, &opts)
                               : bpf_map_lookup_batch(fd, first ? nullptr : cursor, cursor, kb.data(), vb.data(),
                                                      &count, &opts);
    const int e = err < 0 ? -err : 0;
    if (err != 0 && e != ENOENT) {
      if (first && (e == EINVAL || e == ENOTSUP || e == EOPNOTSUPP || e == ENOSYS)) break;  // walk instead
      return make_error(Errc::kBpfMap, std::string("reading map ") + bpf_map__name(map) + ": " + std::to_string(-e));
    }
    keys.insert(keys.end(), kb.begin(), kb.begin() + count);
    values.insert(values.end(), vb.begin(), vb.begin() + static_cast<std::ptrdiff_t>(count * per));
    if (e == ENOENT) return {};  // the last (possibly empty) batch
    first = false;
  }
  // Per-entry walk (kernels without batch lookup for this map type).
  K key{}, next{};
  const void* prev = nullptr;
  std::vector<V> one(per);
  while (bpf_map__get_next_key(map, prev, &next, sizeof next) == 0) {
    key = next;
    prev = &key;
    if (bpf_map__lookup_elem(map, &key, sizeof key, one.data(), one.size() * sizeof(V), 0) != 0) continue;
    keys.push_back(key);
    values.insert(values.end(), one.begin(), one.end());
  }
  if (and_delete) {
    for (const K& k : keys) bpf_map__delete_elem(map, &k, sizeof k, 0);
  }
  return {};
}

// Reads slots [0, n) of a BPF array (per-CPU: `ncpus` values per slot, slot
// i's at [i * ncpus, (i + 1) * ncpus)) in one BPF_MAP_LOOKUP_BATCH call (5.6+;
// one lookup per slot where the kernel lacks it). With a SlotPool's span()
// as n, a tick reads the slots in use, not the whole array.
template <class V>
[[nodiscard]] Status read_array_prefix(const bpf_map* map, int ncpus, std::uint32_t n, std::vector<V>& values) {
  static_assert(sizeof(V) % 8 == 0, "per-CPU values are 8-byte aligned in batches: pad the value type");
  const std::size_t per = static_cast<std::size_t>(ncpus > 0 ? ncpus : 1);
  values.resize(n * per);
  if (n == 0) return {};
  const int fd = bpf_map__fd(map);
  std::vector<std::uint32_t> keys(n);
  std::uint32_t done = 0, cursor = 0;
  bool first = true;
  while (done < n) {
    std::uint32_t count = n - done;
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    const int err = bpf_map_lookup_batch(fd, first ? nullptr : &cursor, &cursor, keys.data() + done,
                                         values.data() + done * per, &count, &opts);
    const int e = err < 0 ? -err : 0;
    if (err != 0 && e != ENOENT) {
      if (first && (e == EINVAL || e == ENOTSUP || e == EOPNOTSUPP || e == ENOSYS)) break;  // one by one
      return make_error(Errc::kBpfMap, std::string("reading map ") + bpf_map__name(map) + ": " + std::to_string(-e));
    }
    done += count;
    first = false;
    if (e == ENOENT) break;  // the end of the array
  }
  if (done >= n) return {};
  for (std::uint32_t i = done; i < n; ++i) {
    if (int err = bpf_map__lookup_elem(map, &i, sizeof i, values.data() + i * per, per * sizeof(V), 0); err != 0) {
      return make_error(Errc::kBpfMap, std::string("reading map ") + bpf_map__name(map) + " slot " + std::to_string(i) +
                                           ": " + std::to_string(err));
    }
  }
  return {};
}

// The slots of a per-slot BPF array. Handed out lowest first, so the slots
// in use stay packed at the front and a tick reads only [0, span()). A
// released slot is held back until the next settle() (the owner calls it
// once per tick): a program that looked the slot up just before the release
// has long finished writing it before another process's baseline is taken.
class SlotPool {
 public:
  explicit SlotPool(std::uint32_t size);
  [[nodiscard]] std::optional<std::uint32_t> take();
  void release(std::uint32_t slot);
  void settle();
  // One past the highest slot in use or held back; 0 when there is none.
  [[nodiscard]] std::uint32_t span() const;
  [[nodiscard]] std::uint32_t size() const { return size_; }
  [[nodiscard]] std::size_t in_use() const { return used_.size(); }

 private:
  std::uint32_t size_;
  std::set<std::uint32_t> free_, used_;
  std::vector<std::uint32_t> held_;
};

}  // namespace vmtide::bpf
