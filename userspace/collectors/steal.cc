// SPDX-License-Identifier: Apache-2.0
// StealCollector implementation (steal.h).
#include "steal.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <spdlog/spdlog.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <string>

#include "bpf_support.h"
#include "procfs_stats.h"
#include "steal.skel.h"

namespace vmtide::collectors {
namespace {

std::uint64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<std::uint64_t>(ts.tv_nsec);
}

std::string errstr(int err) { return std::strerror(err < 0 ? -err : err); }

void add_hist(vmtide_steal_hist& sum, const vmtide_steal_hist& h) {
  sum.wait_ns += h.wait_ns;
  sum.waits += h.waits;
  sum.self_wait_ns += h.self_wait_ns;
  sum.dstate_ns += h.dstate_ns;
  for (int i = 0; i < VMTIDE_STEAL_HIST_SLOTS; ++i) sum.slots[i] += h.slots[i];
}

std::uint32_t read_pid_max() {
  auto text = read_text_file("/proc/sys/kernel/pid_max");
  if (!text) return 4u << 20;  // PID_MAX_LIMIT on 64-bit
  try {
    return static_cast<std::uint32_t>(std::stoul(*text));
  } catch (...) {
    return 4u << 20;
  }
}

}  // namespace

const char* to_string(StealSource s) {
  switch (s) {
    case StealSource::kBpfIter:
      return "bpf_iter";
    case StealSource::kProcfs:
      return "procfs_schedstat";
  }
  return "?";
}

StealProbe StealCollector::probe() {
  StealProbe p;
  std::vector<std::string> missing;
  if (Status st = bpf::preflight(); st) {
    p.bpf_ok = true;
  } else {
    missing.push_back(st.error().message());
  }
  if (btf* b = btf__load_vmlinux_btf(); b != nullptr) {
    // `struct bpf_iter__task` is the context of iter/task programs (v5.8).
    p.iter_task = btf__find_by_name_kind(b, "bpf_iter__task", BTF_KIND_STRUCT) > 0;
    btf__free(b);
  }
  if (!p.iter_task) missing.push_back("no iter/task support in the kernel's BTF (needs >= 5.8 with BTF)");
  auto sw = bpf::tracepoint_arity("sched_switch");
  p.tp_sched_switch = static_cast<bool>(sw);
  p.prev_state_arg = sw && *sw >= 4;
  p.tp_sched_wakeup = static_cast<bool>(bpf::tracepoint_arity("sched_wakeup"));
  p.tp_sched_wakeup_new = static_cast<bool>(bpf::tracepoint_arity("sched_wakeup_new"));
  for (auto [ok, name] : {std::pair{p.tp_sched_switch, "sched_switch"}, std::pair{p.tp_sched_wakeup, "sched_wakeup"},
                          std::pair{p.tp_sched_wakeup_new, "sched_wakeup_new"}}) {
    if (!ok) missing.push_back(std::string("no tp_btf tracepoint ") + name + " (detail mode needs it)");
  }
  for (std::size_t i = 0; i < missing.size(); ++i) p.missing += (i ? "; " : "") + missing[i];
  return p;
}

Result<std::unique_ptr<StealCollector>> StealCollector::create(const Options& opts) {
  if (opts.max_vms == 0 || opts.max_tids == 0 || opts.max_preemptors == 0 || opts.max_dsleep == 0) {
    return make_error(Errc::kInvalidArgument, "steal: max_vms, max_tids, max_preemptors and max_dsleep must be > 0");
  }
  std::unique_ptr<StealCollector> c(new StealCollector(opts, probe()));
  if (opts.procfs_only) {
    c->fallback_reason_ = "configured to poll /proc schedstat";
  } else if (!c->probe_.bpf_ok || !c->probe_.iter_task) {
    c->fallback_reason_ = c->probe_.missing;
  } else if (Status st = c->load(); !st) {
    c->fallback_reason_ = st.error().message();
  } else {
    return c;
  }
  if (!opts.allow_procfs_fallback)
    return make_error(Errc::kUnsupported, "steal: BPF unavailable: " + c->fallback_reason_);
  spdlog::warn("steal: polling /proc/<pid>/task/<tid>/schedstat instead of BPF: {}", c->fallback_reason_);
  return c;
}

StealCollector::StealCollector(const Options& opts, StealProbe probe)
    : opts_(opts), probe_(std::move(probe)), slots_(opts.max_vms) {
  last_read_ns_ = monotonic_ns();
}

StealCollector::~StealCollector() = default;

Status StealCollector::load() {
  bpf::install_libbpf_logging();
  bool detail = opts_.detail;
  if (detail && !(probe_.tp_sched_switch && probe_.tp_sched_wakeup && probe_.tp_sched_wakeup_new)) {
    spdlog::warn("steal: detail mode off: {}", probe_.missing);
    detail = false;
  }
  const std::uint32_t pid_max = read_pid_max();
  const std::uint32_t words = (pid_max + 63) / 64;
  auto skel = bpf::Skeleton<steal_bpf>::open_load_attach("steal", [&](steal_bpf& s) -> Status {
    s.rodata->has_prev_state_arg = probe_.prev_state_arg;
    const std::pair<bpf_map*, std::uint32_t> sizes[] = {{s.maps.steal_tgid_bits, words},
                                                        {s.maps.steal_tid_bits, words},
                                                        {s.maps.steal_tasks, opts_.max_tids},
                                                        {s.maps.steal_procs, opts_.max_vms},
                                                        {s.maps.steal_dsleep, opts_.max_dsleep},
                                                        {s.maps.steal_hist, opts_.max_vms},
                                                        {s.maps.steal_preempt, opts_.max_preemptors}};
    for (const auto& [m, n] : sizes) {
      if (int err = bpf_map__set_max_entries(m, n); err != 0) {
        return make_error(Errc::kBpfMap, std::string("steal: sizing map ") + bpf_map__name(m) + ": " + errstr(err));
      }
    }
    if (!detail) {
      for (bpf_program* p :
           {s.progs.vmtide_steal_wakeup, s.progs.vmtide_steal_wakeup_new, s.progs.vmtide_steal_switch}) {
        bpf_program__set_autoload(p, false);
      }
    }
    return {};
  });
  if (!skel) return std::move(skel).error();
  skel_ = std::move(skel).value();
  ncpus_ = libbpf_num_possible_cpus();
  bitmap_words_ = words;
  detail_ = detail;
  source_ = StealSource::kBpfIter;
  return {};
}

Status StealCollector::set_bit(bpf_map* bitmap, std::uint32_t id, bool on) {
  const std::uint32_t word = id / 64;
  std::uint64_t bits = 0;
  if (int err = bpf_map__lookup_elem(bitmap, &word, sizeof word, &bits, sizeof bits, 0); err != 0) {
    return make_error(Errc::kBpfMap, std::string("steal: reading ") + bpf_map__name(bitmap) + ": " + errstr(err));
  }
  const std::uint64_t mask = 1ull << (id % 64);
  bits = on ? (bits | mask) : (bits & ~mask);
  if (int err = bpf_map__update_elem(bitmap, &word, sizeof word, &bits, sizeof bits, BPF_ANY); err != 0) {
    return make_error(Errc::kBpfMap, std::string("steal: writing ") + bpf_map__name(bitmap) + ": " + errstr(err));
  }
  return {};
}

Status StealCollector::set_tid_bit(std::uint32_t tid, bool on) { return set_bit(skel_->maps.steal_tid_bits, tid, on); }

void StealCollector::drop_orphan_dsleeps() {
  std::vector<std::uint32_t> tids;
  std::vector<vmtide_steal_dsleep> sleeps;
  if (!bpf::read_hash_map(skel_->maps.steal_dsleep, 1, tids, sleeps)) return;  // next tick tries again
  if (tids.empty()) return;
  std::set<std::uint32_t> tracked;
  for (const auto& [id, v] : vms_) tracked.insert(v.tgid);
  for (std::size_t i = 0; i < tids.size(); ++i) {
    if (!tracked.contains(sleeps[i].tgid)) bpf_map__delete_elem(skel_->maps.steal_dsleep, &tids[i], sizeof tids[i], 0);
  }
}

Status StealCollector::track(const std::string& vm_id, std::uint32_t tgid,
                             const std::vector<std::uint32_t>& vcpu_tids) {
  if (vms_.count(vm_id) != 0) return make_error(Errc::kInvalidArgument, "steal: VM " + vm_id + " already tracked");
  if (vcpu_tids.empty()) return make_error(Errc::kInvalidArgument, "steal: VM " + vm_id + " has no vCPU threads");
  if (slots_.in_use() >= slots_.size()) {
    return make_error(Errc::kInvalidArgument,
                      "steal: cannot track VM " + vm_id + ": all " + std::to_string(opts_.max_vms) + " slots in use");
  }
  for (const auto& [id, vm] : vms_) {
    if (vm.tgid == tgid) {
      return make_error(Errc::kInvalidArgument,
                        "steal: process " + std::to_string(tgid) + " already tracked for VM " + id);
    }
    for (std::uint32_t tid : vcpu_tids) {
      if (vm.prev.count(tid) != 0) {
        return make_error(Errc::kInvalidArgument,
                          "steal: tid " + std::to_string(tid) + " already tracked for VM " + id);
      }
    }
  }
  Vm vm;
  vm.tgid = tgid;
  auto slot = slots_.take();
  if (!slot) {
    return make_error(Errc::kInvalidArgument, "steal: cannot track VM " + vm_id +
                                                  ": every free slot is still held back from an untracked VM");
  }
  vm.slot = *slot;
  for (std::uint32_t tid : vcpu_tids) vm.prev.emplace(tid, Raw{});
  vms_.emplace(vm_id, std::move(vm));
  Vm& v = vms_.at(vm_id);

  auto fail = [&](Error e) -> Status {
    (void)forget(vm_id);
    return e;
  };
  if (source_ == StealSource::kBpfIter) {
    // No preemptor rows of a previous user of the slot can be left: the
    // slot was held back until a read() had consumed every row (SlotPool).
    auto hist = read_hist(v.slot);  // monotonic, never reset: the baseline
    if (!hist) return fail(hist.error());
    v.hist_prev = *hist;
    for (std::uint32_t tid : vcpu_tids) {
      if (tid / 64 >= bitmap_words_) {
        return fail(make_error(Errc::kInvalidArgument, "steal: tid " + std::to_string(tid) + " above pid_max"));
      }
      vmtide_steal_task t{};
      t.tgid = tgid;
      t.vm_slot = v.slot;
      if (int err = bpf_map__update_elem(skel_->maps.steal_tasks, &tid, sizeof tid, &t, sizeof t, BPF_NOEXIST);
          err != 0) {
        return fail(make_error(Errc::kBpfMap, "steal: tracking tid " + std::to_string(tid) + ": " + errstr(err)));
      }
      if (Status st = set_tid_bit(tid, true); !st) return fail(st.error());
    }
    // The process last: until its bit is set no program looks at its threads.
    if (tgid / 64 >= bitmap_words_) {
      return fail(make_error(Errc::kInvalidArgument, "steal: tgid " + std::to_string(tgid) + " above pid_max"));
    }
    if (int err =
            bpf_map__update_elem(skel_->maps.steal_procs, &tgid, sizeof tgid, &v.slot, sizeof v.slot, BPF_NOEXIST);
        err != 0) {
      return fail(make_error(Errc::kBpfMap, "steal: tracking process " + std::to_string(tgid) + ": " + errstr(err)));
    }
    if (Status st = set_bit(skel_->maps.steal_tgid_bits, tgid, true); !st) return fail(st.error());
  }
  auto now = collect();
  if (!now) return fail(now.error());
  for (auto& [tid, raw] : v.prev) {
    auto it = now->threads.find(tid);
    if (it == now->threads.end() || it->second.tgid != tgid) {
      return fail(make_error(Errc::kNotFound, "steal: VM " + vm_id + ": no thread " + std::to_string(tid) +
                                                  " in process " + std::to_string(tgid)));
    }
    raw = it->second;
  }
  return {};
}

Status StealCollector::forget(const std::string& vm_id) {
  auto it = vms_.find(vm_id);
  if (it == vms_.end()) return make_error(Errc::kNotFound, "steal: VM " + vm_id + " not tracked");
  Status out;
  const std::uint32_t tgid = it->second.tgid;
  if (source_ == StealSource::kBpfIter) {
    // The bits first: once they are clear no program creates entries for the
    // process or the tid. The process's bit is clear only if it was set by
    // this VM (track() refuses a second VM with the same tgid).
    if (tgid / 64 < bitmap_words_) {
      if (Status st = set_bit(skel_->maps.steal_tgid_bits, tgid, false); !st && out) out = st;
      int err = bpf_map__delete_elem(skel_->maps.steal_procs, &tgid, sizeof tgid, 0);
      if (err != 0 && err != -ENOENT && out) {
        out = make_error(Errc::kBpfMap, "steal: untracking process: " + errstr(err));
      }
    }
    for (const auto& [tid, raw] : it->second.prev) {
      if (tid / 64 >= bitmap_words_) continue;
      if (Status st = set_tid_bit(tid, false); !st && out) out = st;
      int err = bpf_map__delete_elem(skel_->maps.steal_tasks, &tid, sizeof tid, 0);
      if (err != 0 && err != -ENOENT && out) out = make_error(Errc::kBpfMap, "steal: untracking tid: " + errstr(err));
    }
    if (auto pre = read_preempt(false); pre) {
      for (const auto& [key, val] : *pre) {
        if (key.vm_slot == it->second.slot) bpf_map__delete_elem(skel_->maps.steal_preempt, &key, sizeof key, 0);
      }
    } else if (out) {
      out = pre.error();
    }
  }
  // Reusable after the next read(), which also deletes rows a program wrote
  // for this slot after the maps above were cleared.
  slots_.release(it->second.slot);
  vms_.erase(it);
  // Its threads asleep in D now: their wakeups no longer pass the filter.
  if (source_ == StealSource::kBpfIter) drop_orphan_dsleeps();
  return out;
}

Status StealCollector::untrack(const std::string& vm_id) { return forget(vm_id); }

Result<StealCollector::Collected> StealCollector::collect_iter() const {
  int fd = bpf_iter_create(bpf_link__fd(skel_->links.vmtide_steal_iter));
  if (fd < 0) return make_error(Errc::kBpfMap, "steal: creating the task iterator: " + errstr(errno));
  Collected out;
  // Kept between reads: a tick must not allocate and fault in a fresh buffer.
  iter_buf_.resize(64 * 1024);
  std::vector<char>& buf = iter_buf_;
  std::size_t have = 0;
  for (;;) {
    ssize_t n = ::read(fd, buf.data() + have, buf.size() - have);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      close(fd);
      return make_error(Errc::kIo, "steal: reading the task iterator: " + errstr(e));
    }
    if (n == 0) break;
    have += static_cast<std::size_t>(n);
    std::size_t off = 0;
    for (; off + sizeof(vmtide_steal_iter_rec) <= have; off += sizeof(vmtide_steal_iter_rec)) {
      vmtide_steal_iter_rec r;
      std::memcpy(&r, buf.data() + off, sizeof r);
      ProcRaw& p = out.procs[r.tgid];
      p.cpu_ns += r.sum_exec_runtime_ns;
      if (r.flags & VMTIDE_STEAL_REC_LEADER) {
        p.leader = true;
        p.cpu_ns += r.exited_runtime_ns;
      }
      if (r.flags & VMTIDE_STEAL_REC_MM) {
        p.has_mm = true;
        p.rss_pages = r.rss_pages;
      }
      // The bitmap matched; a tid recycled by another process is filtered
      // in read() by its tgid.
      if (r.flags & VMTIDE_STEAL_REC_VCPU) {
        out.threads[r.tid] = Raw{r.run_delay_ns, r.pcount, r.sum_exec_runtime_ns, r.tgid};
      }
    }
    std::memmove(buf.data(), buf.data() + off, have - off);
    have -= off;
  }
  close(fd);
  return out;
}

Result<StealCollector::Collected> StealCollector::collect_procfs() const {
  Collected out;
  for (const auto& [id, vm] : vms_) {
    for (const auto& [tid, prev] : vm.prev) {
      auto text = read_text_file("/proc/" + std::to_string(vm.tgid) + "/task/" + std::to_string(tid) + "/schedstat");
      if (!text) continue;  // the thread exited
      auto s = parse_schedstat(*text);
      if (!s) continue;
      out.threads[tid] = Raw{s->wait_ns, s->pcount, s->run_ns, vm.tgid};
    }
  }
  return out;
}

Result<StealCollector::Collected> StealCollector::collect() const {
  return source_ == StealSource::kBpfIter ? collect_iter() : collect_procfs();
}

Result<vmtide_steal_hist> StealCollector::read_hist(std::uint32_t slot) const {
  std::vector<vmtide_steal_hist> per_cpu(static_cast<std::size_t>(ncpus_));
  if (int err = bpf_map__lookup_elem(skel_->maps.steal_hist, &slot, sizeof slot, per_cpu.data(),
                                     per_cpu.size() * sizeof(vmtide_steal_hist), 0);
      err != 0) {
    return make_error(Errc::kBpfMap, "steal: reading histogram " + std::to_string(slot) + ": " + errstr(err));
  }
  vmtide_steal_hist sum{};
  for (const auto& h : per_cpu) add_hist(sum, h);
  return sum;
}

Result<std::vector<std::pair<vmtide_steal_preempt_key, vmtide_steal_preempt_val>>> StealCollector::read_preempt(
    bool consume) const {
  std::vector<vmtide_steal_preempt_key> keys;
  std::vector<vmtide_steal_preempt_val> vals;
  if (Status st = bpf::read_hash_map(skel_->maps.steal_preempt, ncpus_, keys, vals, consume); !st) return st.error();
  std::vector<std::pair<vmtide_steal_preempt_key, vmtide_steal_preempt_val>> out;
  out.reserve(keys.size());
  const std::size_t per = static_cast<std::size_t>(ncpus_);
  for (std::size_t i = 0; i < keys.size(); ++i) {
    vmtide_steal_preempt_val sum{};
    for (std::size_t c = 0; c < per; ++c) {
      const auto& v = vals[i * per + c];
      sum.wait_ns += v.wait_ns;
      sum.waits += v.waits;
      if (sum.comm[0] == '\0' && v.comm[0] != '\0') std::memcpy(sum.comm, v.comm, sizeof sum.comm);
    }
    out.emplace_back(keys[i], sum);
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return a.first.vm_slot != b.first.vm_slot ? a.first.vm_slot < b.first.vm_slot : a.first.tgid < b.first.tgid;
  });
  return out;
}

Result<StealReading> StealCollector::read() {
  StealReading r;
  const std::uint64_t now_ns = monotonic_ns();
  r.interval_ns = now_ns - last_read_ns_;
  last_read_ns_ = now_ns;
  // Slots untracked since the previous read become reusable; the orphan
  // sweep below runs before any VM can take one.
  slots_.settle();

  auto raw = collect();
  if (!raw) return raw.error();
  // Which slot belongs to which VM, for the per-slot maps below.
  std::vector<Vm*> by_slot(slots_.size(), nullptr);
  for (auto& [id, vm] : vms_) {
    if (vm.slot < by_slot.size()) by_slot[vm.slot] = &vm;
  }
  const auto owned = [&](std::uint32_t slot) { return slot < by_slot.size() && by_slot[slot] != nullptr; };
  std::vector<std::pair<vmtide_steal_preempt_key, vmtide_steal_preempt_val>> pre;
  if (detail_) {
    // Read and delete: each row is the wait since the previous read, and
    // rows of preempting processes that exited do not pile up. A program
    // adding to a row in the instant it is deleted loses that one wait.
    auto p = read_preempt(true);
    if (!p) return p.error();
    pre = std::move(*p);
    // Rows of a slot no VM owns (a program passed the tid check just before
    // an untrack cleared the bit) were deleted with the rest: drop them.
    // The same for D-state sleeps of untracked processes.
    drop_orphan_dsleeps();
    std::erase_if(pre, [&](const auto& row) { return !owned(row.first.vm_slot); });
    std::vector<vmtide_steal_stats> st(static_cast<std::size_t>(ncpus_));
    std::uint32_t zero = 0;
    if (bpf_map__lookup_elem(skel_->maps.steal_stats, &zero, sizeof zero, st.data(),
                             st.size() * sizeof(vmtide_steal_stats), 0) == 0) {
      std::uint64_t drops = 0, dsleep_drops = 0;
      for (const auto& s : st) {
        drops += s.preempt_map_full;
        dsleep_drops += s.dsleep_map_full;
      }
      r.preempt_map_full = drops - drops_prev_;
      drops_prev_ = drops;
      r.dsleep_map_full = dsleep_drops - dsleep_drops_prev_;
      dsleep_drops_prev_ = dsleep_drops;
    }
    // Every VM's histogram row in one batched read of the slots in use.
    if (Status rs = bpf::read_array_prefix(skel_->maps.steal_hist, ncpus_, slots_.span(), hist_rows_); !rs) {
      return rs.error();
    }
  }
  const std::size_t per = static_cast<std::size_t>(ncpus_);
  const long page = sysconf(_SC_PAGESIZE);

  std::vector<std::string> gone;
  for (auto& [id, vm] : vms_) {
    // Gone when none of its tracked threads is still in it (the iterator, or
    // the schedstat walk, just listed every live one): a VM process that
    // exited or is a zombie has no threads left. No extra /proc read.
    const std::uint32_t tgid = vm.tgid;
    const bool any_thread = std::any_of(vm.prev.begin(), vm.prev.end(), [&](const auto& kv) {
      auto it = raw->threads.find(kv.first);
      return it != raw->threads.end() && it->second.tgid == tgid;
    });
    if (!any_thread) {
      gone.push_back(id);
      continue;
    }
    VmSteal out;
    out.vm_id = id;
    out.tgid = vm.tgid;
    out.source = source_;
    if (auto p = raw->procs.find(vm.tgid); p != raw->procs.end() && p->second.leader) {
      out.process_cpu_ns = p->second.cpu_ns;
      if (p->second.has_mm && page > 0) out.rss_bytes = p->second.rss_pages * static_cast<std::uint64_t>(page);
    }
    std::vector<std::uint32_t> exited;
    for (auto& [tid, prev] : vm.prev) {
      auto it = raw->threads.find(tid);
      if (it == raw->threads.end() || it->second.tgid != vm.tgid) {
        exited.push_back(tid);
        continue;
      }
      const Raw& cur = it->second;
      VcpuSteal c{tid, cur.run_delay_ns - prev.run_delay_ns, cur.run_ns - prev.run_ns, cur.pcount - prev.pcount};
      prev = cur;
      out.steal_ns += c.steal_ns;
      out.run_ns += c.run_ns;
      out.timeslices += c.timeslices;
      out.vcpus.push_back(c);
    }
    for (std::uint32_t tid : exited) {  // a vCPU thread went away: stop tracking it alone
      if (source_ == StealSource::kBpfIter && tid / 64 < bitmap_words_) {
        (void)set_tid_bit(tid, false);
        bpf_map__delete_elem(skel_->maps.steal_tasks, &tid, sizeof tid, 0);
      }
      vm.prev.erase(tid);
    }
    if (vm.prev.empty()) {
      gone.push_back(id);
      continue;
    }
    if (detail_) {
      if ((vm.slot + 1) * per > hist_rows_.size()) {
        return make_error(Errc::kBpfMap, "steal: no histogram row " + std::to_string(vm.slot));
      }
      vmtide_steal_hist sum{};
      for (std::size_t c = 0; c < per; ++c) add_hist(sum, hist_rows_[vm.slot * per + c]);
      const vmtide_steal_hist* h = &sum;
      out.has_detail = true;
      out.hist_wait_ns = h->wait_ns - vm.hist_prev.wait_ns;
      out.hist_waits = h->waits - vm.hist_prev.waits;
      out.hist_self_wait_ns = h->self_wait_ns - vm.hist_prev.self_wait_ns;
      out.dstate_ns = h->dstate_ns - vm.hist_prev.dstate_ns;
      for (int i = 0; i < VMTIDE_STEAL_HIST_SLOTS; ++i) out.wait_hist_log2_us[i] = h->slots[i] - vm.hist_prev.slots[i];
      vm.hist_prev = *h;
      // This VM's preemptor rows: `pre` is sorted by slot.
      auto first = std::lower_bound(pre.begin(), pre.end(), vm.slot,
                                    [](const auto& row, std::uint32_t slot) { return row.first.vm_slot < slot; });
      for (auto pre_it = first; pre_it != pre.end() && pre_it->first.vm_slot == vm.slot; ++pre_it) {
        const vmtide_steal_preempt_val& val = pre_it->second;
        if (val.wait_ns != 0) {
          out.top_preemptors.push_back(Preemptor{pre_it->first.tgid,
                                                 std::string(val.comm, strnlen(val.comm, sizeof val.comm)),
                                                 val.wait_ns, val.waits});
        }
      }
      std::sort(out.top_preemptors.begin(), out.top_preemptors.end(),
                [](const Preemptor& a, const Preemptor& b) { return a.steal_ns > b.steal_ns; });
      if (out.top_preemptors.size() > opts_.top_preemptors) out.top_preemptors.resize(opts_.top_preemptors);
    }
    r.vms.push_back(std::move(out));
  }
  for (const auto& id : gone) {
    if (Status st = forget(id); !st) spdlog::warn("steal: dropping VM {}: {}", id, st.error().message());
    r.dropped_vms.push_back(id);
  }
  return r;
}

Result<StealCollector::MapStats> StealCollector::map_stats() const {
  MapStats m;
  if (source_ != StealSource::kBpfIter) return m;
  std::uint32_t tid = 0, next = 0;
  const void* prev = nullptr;
  while (bpf_map__get_next_key(skel_->maps.steal_tasks, prev, &next, sizeof next) == 0) {
    ++m.task_entries;
    tid = next;
    prev = &tid;
  }
  vmtide_steal_preempt_key pk{}, pnext{};
  prev = nullptr;
  while (bpf_map__get_next_key(skel_->maps.steal_preempt, prev, &pnext, sizeof pnext) == 0) {
    ++m.preempt_entries;
    pk = pnext;
    prev = &pk;
  }
  std::uint32_t key = 0;
  for (auto [map, count] :
       {std::pair{skel_->maps.steal_procs, &m.proc_entries}, std::pair{skel_->maps.steal_dsleep, &m.dsleep_entries}}) {
    prev = nullptr;
    while (bpf_map__get_next_key(map, prev, &next, sizeof next) == 0) {
      ++*count;
      key = next;
      prev = &key;
    }
  }
  for (auto [map, count] : {std::pair{skel_->maps.steal_tid_bits, &m.tid_bits_set},
                            std::pair{skel_->maps.steal_tgid_bits, &m.tgid_bits_set}}) {
    for (std::uint32_t w = 0; w < bitmap_words_; ++w) {
      std::uint64_t bits = 0;
      if (int err = bpf_map__lookup_elem(map, &w, sizeof w, &bits, sizeof bits, 0); err != 0) {
        return make_error(Errc::kBpfMap, std::string("steal: reading ") + bpf_map__name(map) + ": " + errstr(err));
      }
      *count += static_cast<std::size_t>(__builtin_popcountll(bits));
    }
  }
  return m;
}

}  // namespace vmtide::collectors
