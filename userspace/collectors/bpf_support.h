// SPDX-License-Identifier: Apache-2.0
// What every BPF collector needs before it loads: a preflight check that
// explains a missing privilege or kernel feature in one sentence, libbpf's
// log routed to spdlog, and kernel BTF queries for load-time configuration.
#pragma once

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstdint>
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
template <class K, class V>
[[nodiscard]] Status read_hash_map(const bpf_map* map, int ncpus, std::vector<K>& keys, std::vector<V>& values) {
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
    const int err = bpf_map_lookup_batch(fd, first ? nullptr : cursor, cursor, kb.data(), vb.data(), &count, &opts);
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
  return {};
}

}  // namespace vmtide::bpf
