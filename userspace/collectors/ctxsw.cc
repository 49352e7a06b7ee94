// SPDX-License-Identifier: Apache-2.0
// CtxswCounter implementation (ctxsw.h).
#include "ctxsw.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cstring>
#include <string>

#include "bpf_support.h"
#include "ctxsw.skel.h"

namespace vmtide::collectors {

Result<std::unique_ptr<CtxswCounter>> CtxswCounter::create(const Options& opts) {
  if (opts.max_tracked == 0) return make_error(Errc::kInvalidArgument, "ctxsw: max_tracked must be > 0");
  if (Status st = bpf::preflight(); !st) return st.error();
  bpf::install_libbpf_logging();

  // sched_switch gained prev_state in v5.18 (bpf/ctxsw.bpf.c explains why
  // it matters); ask the kernel's BTF rather than parsing version strings.
  auto arity = bpf::tracepoint_arity("sched_switch");
  if (!arity) return arity.error();
  const bool has_prev_state = *arity >= 4;

  auto skel = bpf::Skeleton<ctxsw_bpf>::open_load_attach("ctxsw", [&](ctxsw_bpf& s) -> Status {
    s.rodata->has_prev_state_arg = has_prev_state;
    for (bpf_map* m : {s.maps.tracked, s.maps.counts}) {
      if (int err = bpf_map__set_max_entries(m, opts.max_tracked); err != 0) {
        return make_error(Errc::kBpfMap, std::string("ctxsw: sizing map ") + bpf_map__name(m) + ": " +
                                             std::strerror(-err));
      }
    }
    return {};
  });
  if (!skel) return std::move(skel).error();
  return std::unique_ptr<CtxswCounter>(
      new CtxswCounter(std::move(skel).value(), opts.max_tracked, has_prev_state));
}

CtxswCounter::CtxswCounter(bpf::Skeleton<ctxsw_bpf> skel, std::uint32_t max_tracked, bool has_prev_state)
    : skel_(std::move(skel)),
      max_tracked_(max_tracked),
      has_prev_state_(has_prev_state),
      ncpus_(libbpf_num_possible_cpus()),
      slots_(max_tracked) {}

CtxswCounter::~CtxswCounter() = default;

Status CtxswCounter::track(std::uint32_t tgid) {
  if (entries_.count(tgid) != 0) return {};
  auto taken = slots_.take();
  if (!taken) {
    return make_error(Errc::kInvalidArgument,
                      "ctxsw: cannot track pid " + std::to_string(tgid) + ": all " +
                          std::to_string(max_tracked_) + " slots in use");
  }
  const std::uint32_t slot = *taken;
  // Baseline first, then publish the mapping: the kernel only counts into
  // the slot once `tracked` names it, so the baseline is exact.
  auto base = read_slot(slot);
  if (!base) {
    slots_.release(slot);
    return base.error();
  }
  if (int err = bpf_map__update_elem(skel_->maps.tracked, &tgid, sizeof tgid, &slot, sizeof slot, BPF_NOEXIST);
      err != 0) {
    slots_.release(slot);
    return make_error(Errc::kBpfMap, "ctxsw: tracking pid " + std::to_string(tgid) + ": " + std::strerror(-err));
  }
  entries_.emplace(tgid, Entry{slot, *base});
  return {};
}

Status CtxswCounter::untrack(std::uint32_t tgid) {
  auto it = entries_.find(tgid);
  if (it == entries_.end()) return make_error(Errc::kNotFound, "ctxsw: pid " + std::to_string(tgid) + " not tracked");
  int err = bpf_map__delete_elem(skel_->maps.tracked, &tgid, sizeof tgid, 0);
  slots_.release(it->second.slot);
  entries_.erase(it);
  if (err != 0 && err != -ENOENT) {
    return make_error(Errc::kBpfMap, "ctxsw: untracking pid " + std::to_string(tgid) + ": " + std::strerror(-err));
  }
  return {};
}

Result<CtxswCounts> CtxswCounter::read_slot(std::uint32_t slot) const {
  // Per-CPU values are laid out one per possible CPU, 8-byte aligned.
  std::vector<vmtide_ctxsw_counts> per_cpu(static_cast<std::size_t>(ncpus_));
  if (int err = bpf_map__lookup_elem(skel_->maps.counts, &slot, sizeof slot, per_cpu.data(),
                                     per_cpu.size() * sizeof(vmtide_ctxsw_counts), 0);
      err != 0) {
    return make_error(Errc::kBpfMap, "ctxsw: reading slot " + std::to_string(slot) + ": " + std::strerror(-err));
  }
  CtxswCounts sum;
  for (const auto& c : per_cpu) {
    sum.out_voluntary += c.out_voluntary;
    sum.out_involuntary += c.out_involuntary;
    sum.in += c.in;
  }
  return sum;
}

Result<CtxswCounts> CtxswCounter::read(std::uint32_t tgid) const {
  auto it = entries_.find(tgid);
  if (it == entries_.end()) return make_error(Errc::kNotFound, "ctxsw: pid " + std::to_string(tgid) + " not tracked");
  auto now = read_slot(it->second.slot);
  if (!now) return now.error();
  return *now - it->second.baseline;
}

Result<std::vector<std::pair<std::uint32_t, CtxswCounts>>> CtxswCounter::read_all() {
  slots_.settle();
  // The slots in use are packed at the front: read only those.
  if (Status st = bpf::read_array_prefix(skel_->maps.counts, ncpus_, slots_.span(), rows_); !st) return st.error();
  const std::size_t per = static_cast<std::size_t>(ncpus_);
  std::vector<std::pair<std::uint32_t, CtxswCounts>> out;
  out.reserve(entries_.size());
  for (const auto& [tgid, e] : entries_) {
    if ((e.slot + 1) * per > rows_.size()) {
      return make_error(Errc::kBpfMap, "ctxsw: no counters for slot " + std::to_string(e.slot));
    }
    CtxswCounts sum;
    for (std::size_t c = 0; c < per; ++c) {
      const auto& r = rows_[e.slot * per + c];
      sum.out_voluntary += r.out_voluntary;
      sum.out_involuntary += r.out_involuntary;
      sum.in += r.in;
    }
    out.emplace_back(tgid, sum - e.baseline);
  }
  return out;
}

}  // namespace vmtide::collectors
