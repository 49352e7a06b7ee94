// SPDX-License-Identifier: Apache-2.0
// Sampler implementation (sampler.h).
#include "sampler.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <set>

#include <spdlog/spdlog.h>

namespace vmtide::agent {
namespace {

std::optional<collectors::Pressure> read_pressure(collectors::ProcFile& file) {
  auto text = file.read();
  if (!text) return std::nullopt;  // kernel without PSI, or psi=0
  auto p = collectors::parse_pressure(*text);
  return p ? std::optional(*p) : std::nullopt;
}

std::uint64_t delta(std::uint64_t now, std::uint64_t before) { return now >= before ? now - before : 0; }

}  // namespace

Sampler::Sampler(SamplerOptions opts, std::unique_ptr<discovery::VmSource> source)
    : opts_(std::move(opts)), source_(std::move(source)), ticks_per_s_(sysconf(_SC_CLK_TCK)) {
  if (!opts_.bpf) {
    bpf_disabled_reason_ = "disabled by configuration";
  } else if (auto c = collectors::CtxswCounter::create(); c) {
    ctxsw_ = std::move(c).value();
    auto io = collectors::IoCollector::create();
    if (io) io_ = std::move(io).value();
    else bpf_disabled_reason_ = io.error().message();
    collectors::StealCollector::Options so;
    so.detail = opts_.steal_detail;
    so.allow_procfs_fallback = false;  // the sampler has its own /proc path
    auto st = collectors::StealCollector::create(so);
    if (st) steal_ = std::move(st).value();
    else spdlog::warn("steal collector: {}; reading /proc schedstat instead", st.error().message());
  } else {
    bpf_disabled_reason_ = c.error().message();
  }
  if (!opts_.dirty) {
    dirty_disabled_reason_ = "disabled by configuration";
  } else {
    auto d = collectors::DirtyCollector::create(
        {.window_ns = opts_.dirty_window_ns, .period_ns = opts_.dirty_period_ns, .bpf = opts_.bpf});
    if (d) dirty_ = std::move(d).value();
    else dirty_disabled_reason_ = d.error().message();
  }
}

const char* Sampler::dirty_source() const {
  if (dirty_) return "softdirty";
  // The names are string literals (messages.h), so data() is terminated.
  if (source_->supports_dirty_rate()) return wire::dirty_source_name(source_->dirty_rate_source()).data();
  return "none";
}

void Sampler::hv_failed(const discovery::QemuProcess& vm, HvDirty& h, const Error& e) {
  // Counted every time; logged once per run of failures, so a monitor that
  // stays busy (another client holds it) is one line, not one per period.
  ++errors_;
  if (h.failures++ == 0) {
    spdlog::warn("dirty rate of {} (pid {}): {} (repeats are counted, not logged, until it recovers)", vm.name, vm.pid,
                 e.message());
  } else {
    spdlog::debug("dirty rate of {} (pid {}): {}", vm.name, vm.pid, e.message());
  }
}

void Sampler::hypervisor_dirty(std::uint64_t mono_ns, std::map<std::string, wire::Dirty>& out) {
  if (dirty_ || !source_->supports_dirty_rate()) return;
  const int seconds = std::max(1, static_cast<int>(opts_.dirty_window_ns / 1'000'000'000ULL));
  const std::uint64_t window_ns = static_cast<std::uint64_t>(seconds) * 1'000'000'000ULL;
  // Each call may wait on a hypervisor (up to its own timeout); past the
  // budget the remaining VMs wait for the next tick, so the tick stays on time.
  const auto budget_end = std::chrono::steady_clock::now() + std::chrono::nanoseconds(opts_.hv_budget_ns);
  for (const auto& [pid, vm] : vms_) {
    HvDirty& h = hv_dirty_[vm.proc.id];
    if (h.unsupported) continue;
    const bool due = h.measuring ? mono_ns >= h.query_at_ns : mono_ns >= h.next_start_ns;
    if (!due) continue;
    if (std::chrono::steady_clock::now() >= budget_end) break;
    if (h.measuring) {
      // Asked only once the window has passed: a QMP monitor serves one
      // client at a time, so the agent holds it as little as it can.
      auto r = source_->dirty_rate(vm.proc.id);
      if (!r && r.error().code == Errc::kNotFound) {
        h.measuring = false;  // the VM is going; the loop in sample() drops it
      } else if (!r) {
        hv_failed(vm.proc, h, r.error());
        // A busy monitor may be free next tick; anything else ends this one.
        if (r.error().code != Errc::kBusy || mono_ns >= h.give_up_ns) h.measuring = false;
      } else if (!*r || (*r)->start_time_s == h.last_start_s) {
        if (mono_ns >= h.give_up_ns) {
          hv_failed(vm.proc, h,
                    make_error(Errc::kIo, "no result " + std::to_string((mono_ns - h.query_at_ns) / 1'000'000) +
                                              " ms after the window ended"));
          h.measuring = false;
        }
      } else {
        if (h.failures > 0) {
          spdlog::info("dirty rate of {}: measured again after {} failures", vm.proc.name, h.failures);
        }
        h.failures = 0;
        h.measuring = false;
        h.last_start_s = (*r)->start_time_s;
        wire::Dirty d;
        d.src = source_->dirty_rate_source();
        d.window_ns = (*r)->period_ns;
        d.page_bytes = 4096;
        // QEMU reports MiB/s of distinct pages over the sampling period.
        d.pages = static_cast<std::uint64_t>((*r)->mib_per_s * (1 << 20) * (static_cast<double>(d.window_ns) / 1e9) /
                                             static_cast<double>(d.page_bytes));
        out[vm.proc.id] = d;
      }
    } else {
      h.next_start_ns = mono_ns + opts_.dirty_period_ns;
      Status st = source_->start_dirty_rate(vm.proc.id, seconds);
      if (st) {
        h.measuring = true;
        h.query_at_ns = mono_ns + window_ns;
        h.give_up_ns = h.query_at_ns + std::max(opts_.dirty_period_ns, window_ns);
      } else if (st.error().code == Errc::kUnsupported) {
        h.unsupported = true;  // e.g. no QMP socket: it never will have one
        spdlog::info("no hypervisor dirty rate for {} (pid {}): {}", vm.proc.name, vm.proc.pid, st.error().context);
      } else if (st.error().code != Errc::kNotFound) {
        hv_failed(vm.proc, h, st.error());
      }
    }
  }
}

namespace {

// Log2 histograms travel without their empty tail.
std::vector<std::uint64_t> trim(std::vector<std::uint64_t> h) {
  while (!h.empty() && h.back() == 0) h.pop_back();
  return h;
}

// Kernel task names are bytes, cut at 15: keep printable ASCII so every
// subscriber's decoder accepts them (python's msgpack rejects bad UTF-8).
std::string printable(const std::string& comm) {
  std::string out;
  for (char c : comm) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  return out;
}

}  // namespace

Sampler::~Sampler() = default;

void Sampler::host_sample(std::uint64_t interval_ns, Tick& out) {
  auto stat_text = proc_stat_.read();
  auto cpu = stat_text ? collectors::parse_proc_stat(*stat_text) : Result<collectors::CpuTimes>(stat_text.error());
  auto mem_text = meminfo_.read();
  auto mem = mem_text ? collectors::parse_meminfo(*mem_text) : Result<collectors::MemInfo>(mem_text.error());
  auto load_text = loadavg_.read();
  auto load = load_text ? collectors::parse_loadavg(*load_text) : Result<collectors::LoadAvg>(load_text.error());
  if (!cpu || !mem || !load) {
    ++errors_;
    spdlog::warn("host sample skipped: {}",
                 !cpu ? cpu.error().message() : !mem ? mem.error().message() : load.error().message());
    return;
  }
  HostState now{*cpu, read_pressure(psi_cpu_), read_pressure(psi_io_), read_pressure(psi_mem_)};
  if (host_ && interval_ns > 0) {
    const std::uint64_t ns_per_tick = 1'000'000'000ULL / static_cast<std::uint64_t>(ticks_per_s_);
    wire::HostSample h;
    h.cpus = now.cpu.cpus;
    h.cpu_busy_ns = delta(now.cpu.busy, host_->cpu.busy) * ns_per_tick;
    h.mem_total_bytes = mem->total_bytes;
    h.mem_avail_bytes = mem->available_bytes;
    h.load1 = load->load1;
    h.load5 = load->load5;
    h.load15 = load->load15;
    h.vms = static_cast<std::uint32_t>(vms_.size());
    if (now.cpu.steal > 0) h.cpu_steal_ns = delta(now.cpu.steal, host_->cpu.steal) * ns_per_tick;
    if (now.psi_cpu && host_->psi_cpu) {
      wire::Psi psi;
      psi.cpu_some_us = delta(now.psi_cpu->some_us, host_->psi_cpu->some_us);
      if (now.psi_cpu->full_us && host_->psi_cpu->full_us)
        psi.cpu_full_us = delta(*now.psi_cpu->full_us, *host_->psi_cpu->full_us);
      if (now.psi_io && host_->psi_io) {
        psi.io_some_us = delta(now.psi_io->some_us, host_->psi_io->some_us);
        if (now.psi_io->full_us && host_->psi_io->full_us)
          psi.io_full_us = delta(*now.psi_io->full_us, *host_->psi_io->full_us);
      }
      if (now.psi_mem && host_->psi_mem) {
        psi.mem_some_us = delta(now.psi_mem->some_us, host_->psi_mem->some_us);
        if (now.psi_mem->full_us && host_->psi_mem->full_us)
          psi.mem_full_us = delta(*now.psi_mem->full_us, *host_->psi_mem->full_us);
      }
      h.psi = psi;
    }
    out.bodies.emplace_back(std::move(h));
  }
  host_ = now;
}

Tick Sampler::sample(std::uint64_t mono_ns) {
  Tick out;
  if (last_mono_ns_) out.interval_ns = delta(mono_ns, *last_mono_ns_);
  last_mono_ns_ = mono_ns;

  // Discovery: who is running now. A full rescan every rescan_ns, or at
  // once when libvirt says a VM started or stopped; in between, and when
  // the source fails (libvirtd restarting), keep the VMs we know: their
  // /proc reads below tell if one is gone.
  bool lifecycle = false;
  for (const auto& ev : source_->drain_events()) {
    if (ev.kind == discovery::Lifecycle::kStarted || ev.kind == discovery::Lifecycle::kStopped ||
        ev.kind == discovery::Lifecycle::kMigrated) {
      lifecycle = true;
    }
    // Starts and stops are published from the scan below, once each.
    if (ev.kind == discovery::Lifecycle::kStarted || ev.kind == discovery::Lifecycle::kStopped) continue;
    wire::Event e;
    e.type = discovery::lifecycle_name(ev.kind);
    e.vm = ev.uuid;
    e.detail = ev.name + ": libvirt event " + std::to_string(ev.libvirt_event) + ", detail " +
               std::to_string(ev.libvirt_detail);
    out.bodies.emplace_back(std::move(e));
  }
  Result<std::vector<discovery::QemuProcess>> found = make_error(Errc::kNotFound, "no rescan this tick");
  if (!last_scan_ns_ || lifecycle || mono_ns >= *last_scan_ns_ + opts_.rescan_ns) {
    found = source_->scan();
    if (found) {
      last_scan_ns_ = mono_ns;
    } else {
      ++errors_;
      spdlog::warn("discovery ({}): {}", source_->name(), found.error().message());
    }
  }
  std::set<std::uint32_t> seen;
  if (!found) {
    for (const auto& [pid, vm] : vms_) seen.insert(pid);
  }
  for (auto& proc : found ? std::move(*found) : std::vector<discovery::QemuProcess>{}) {
    seen.insert(proc.pid);
    if (vms_.count(proc.pid) != 0) continue;
    VmState st;
    st.proc = std::move(proc);
    st.stat = collectors::ProcessStatFile(st.proc.pid);
    auto warn = [&](const char* what, const Status& s) {
      if (s) return;
      ++errors_;
      spdlog::warn("{}: {}", what, s.error().message());
    };
    if (ctxsw_) warn("ctxsw", ctxsw_->track(st.proc.pid));
    if (io_) warn("io", io_->track(st.proc.id, st.proc.pid));
    if (steal_ && !st.proc.vcpu_tids.empty()) {
      Status s = steal_->track(st.proc.id, st.proc.pid, st.proc.vcpu_tids);
      st.bpf_steal = s.ok();
      warn("steal", s);
    }
    if (dirty_) warn("dirty", dirty_->track(st.proc.id, st.proc.pid));
    wire::Event ev;
    ev.type = "vm_started";
    ev.vm = st.proc.id;
    ev.detail = "discovered " + st.proc.name + " (pid " + std::to_string(st.proc.pid) + ", " +
                std::to_string(st.proc.vcpu_tids.size()) + " vCPU threads)";
    out.bodies.emplace_back(std::move(ev));
    vms_.emplace(st.proc.pid, std::move(st));
  }

  // Collectors' per-VM readings for this tick, by VM id.
  std::map<std::string, collectors::IoDelta> io;
  if (io_) {
    if (auto r = io_->read()) {
      io = std::move(*r);
    } else {
      ++errors_;
      spdlog::warn("io: {}", r.error().message());
    }
  }
  std::map<std::string, collectors::DirtyWindow> windows;
  if (dirty_) {
    for (auto& [id, w] : dirty_->poll(mono_ns)) {
      if (w) windows.emplace(id, std::move(*w));
      else if (w.error().code != Errc::kNotFound) spdlog::warn("dirty {}: {}", id, w.error().message());
    }
  }

  std::map<std::string, wire::Dirty> hv_windows;
  hypervisor_dirty(mono_ns, hv_windows);
  // One iterator read for every tracked VM's vCPU threads.
  std::map<std::string, collectors::VmSteal> steal;
  if (steal_) {
    if (auto r = steal_->read()) {
      for (auto& v : r->vms) steal.emplace(v.vm_id, std::move(v));
    } else {
      ++errors_;
      spdlog::warn("steal: {}", r.error().message());
    }
  }

  // Context switches of every VM in one batched map read.
  std::map<std::uint32_t, collectors::CtxswCounts> ctxsw_all;
  if (ctxsw_) {
    if (auto r = ctxsw_->read_all()) {
      ctxsw_all.insert(r->begin(), r->end());
    } else {
      ++errors_;
      spdlog::warn("ctxsw: {}", r.error().message());
    }
  }

  for (auto it = vms_.begin(); it != vms_.end();) {
    VmState& vm = it->second;
    // CPU: with the BPF steal collector, from /proc/<pid>/stat (one small
    // file; the iterator covers only the vCPU threads). Without it, from the
    // same schedstat pass that gives steal, so CPU and steal are measured
    // alike (tick-based utime/stime leave out the time this machine's own
    // hypervisor takes, schedstat counts it); in a tick where a thread
    // exited, the live threads' sum drops, and /proc/<pid>/stat's delta,
    // which keeps exited threads' time, stands in (QEMU starts short-lived
    // workers, e.g. for every calc-dirty-rate). Without debug-threads the
    // vCPUs are not named, and every thread's wait counts as steal.
    // CPU and RSS: from the steal iterator's read of every thread of the
    // process when it ran (nothing per VM); else one read of
    // /proc/<pid>/stat per VM and tick.
    Result<std::pair<collectors::SchedStat, collectors::SchedStat>> split =
        make_error(Errc::kNotFound, "gone");
    std::uint64_t rss_bytes = 0;
    std::uint64_t stat_cpu_ns = 0;
    auto bpf_row = vm.bpf_steal ? steal.find(vm.proc.id) : steal.end();
    if (seen.count(it->first) && bpf_row != steal.end() && bpf_row->second.process_cpu_ns) {
      // The steal iterator's read covered the whole process: no /proc read.
      collectors::SchedStat all;
      all.run_ns = *bpf_row->second.process_cpu_ns;
      rss_bytes = bpf_row->second.rss_bytes.value_or(0);
      stat_cpu_ns = all.run_ns;
      split = std::make_pair(all, collectors::SchedStat{});
    } else if (seen.count(it->first) && vm.bpf_steal) {
      if (auto ps = vm.stat.read()) {
        collectors::SchedStat all;
        all.run_ns = ps->cpu_ns;
        rss_bytes = ps->rss_bytes;
        stat_cpu_ns = ps->cpu_ns;
        split = std::make_pair(all, collectors::SchedStat{});
      }
    } else if (seen.count(it->first)) {
      split = collectors::process_schedstat_split(vm.proc.pid, vm.proc.vcpu_tids);
      if (split) {
        if (auto ps = vm.stat.read(); ps) {
          rss_bytes = ps->rss_bytes;
          stat_cpu_ns = ps->cpu_ns;
        } else {
          split = ps.error();
        }
      }
    }
    if (!split) {
      // Vanished mid-sample: drop it quietly, once, with an event.
      if (ctxsw_ && ctxsw_->is_tracked(vm.proc.pid)) (void)ctxsw_->untrack(vm.proc.pid);
      if (io_) (void)io_->untrack(vm.proc.id);
      if (steal_ && steal_->is_tracked(vm.proc.id)) (void)steal_->untrack(vm.proc.id);
      hv_dirty_.erase(vm.proc.id);
      if (dirty_) (void)dirty_->untrack(vm.proc.id);  // kNotFound if poll() already dropped it
      wire::Event ev;
      ev.type = "vm_stopped";
      ev.vm = vm.proc.id;
      ev.detail = vm.proc.name + " (pid " + std::to_string(vm.proc.pid) + ") is gone";
      out.bodies.emplace_back(std::move(ev));
      it = vms_.erase(it);
      continue;
    }
    std::optional<collectors::CtxswCounts> cs;
    if (auto c = ctxsw_all.find(vm.proc.pid); c != ctxsw_all.end()) cs = c->second;
    if (vm.baselined && out.interval_ns > 0) {
      wire::VmSample s;
      s.id = vm.proc.id;
      s.name = vm.proc.name;
      s.pid = vm.proc.pid;
      s.vcpus = static_cast<std::uint32_t>(vm.proc.vcpu_tids.size());
      s.cpu_ns = split->first.run_ns >= vm.all_threads.run_ns ? split->first.run_ns - vm.all_threads.run_ns
                                                               : delta(stat_cpu_ns, vm.stat_cpu_ns);
      s.steal_ns = delta(split->second.wait_ns, vm.vcpu_threads.wait_ns);
      if (auto st = steal.find(vm.proc.id); vm.bpf_steal && st != steal.end()) {
        s.steal_ns = st->second.steal_ns;
        if (st->second.has_detail) {
          s.steal_hist = trim({st->second.wait_hist_log2_us.begin(), st->second.wait_hist_log2_us.end()});
          for (const auto& p : st->second.top_preemptors) {
            if (s.preempt.size() == wire::kMaxPreempt) break;
            s.preempt.push_back({p.tgid, printable(p.comm), p.steal_ns});
          }
        }
      }
      s.ram_bytes = vm.proc.ram_bytes;
      s.rss_bytes = rss_bytes;
      if (auto d = io.find(vm.proc.id); d != io.end()) {
        wire::Io w;
        w.rd_bytes = d->second.rd_bytes;
        w.wr_bytes = d->second.wr_bytes;
        w.rd_ops = d->second.rd_ops;
        w.wr_ops = d->second.wr_ops;
        w.lat_hist = trim(d->second.lat_hist);
        // D state comes from the steal collector's detail mode; without it
        // (or for a VM it does not track: no named vCPU threads) it stays 0.
        if (auto st = steal.find(vm.proc.id); vm.bpf_steal && st != steal.end() && st->second.dstate_ns) {
          w.dstate_ns = *st->second.dstate_ns;
        }
        s.io = std::move(w);
        if (d->second.io_some_us || d->second.cpu_some_us) {
          wire::Psi p;
          p.io_some_us = d->second.io_some_us;
          p.io_full_us = d->second.io_full_us;
          p.cpu_some_us = d->second.cpu_some_us;
          p.cpu_full_us = d->second.cpu_full_us;
          s.psi = p;
        }
      }
      if (auto w = windows.find(vm.proc.id); w != windows.end()) {
        wire::Dirty d;
        d.src = wire::DirtySource::kSoftDirty;
        d.window_ns = w->second.window_ns;
        d.pages = w->second.pages;
        d.page_bytes = w->second.page_bytes;
        for (const auto& pt : w->second.curve) {
          if (d.curve.size() == wire::kMaxDirtyCurve) break;
          d.curve.push_back({pt.tau_ns, pt.pages});
        }
        s.dirty = std::move(d);
      } else if (auto h = hv_windows.find(vm.proc.id); h != hv_windows.end()) {
        s.dirty = h->second;
      }
      VmTickInfo info{vm.proc.name, vm.proc.pid, 100.0 * static_cast<double>(s.cpu_ns) / static_cast<double>(out.interval_ns),
                      100.0 * static_cast<double>(s.steal_ns) / out.interval_ns, std::nullopt};
      if (cs && vm.ctxsw) info.ctxsw = *cs - *vm.ctxsw;
      out.vms.push_back(std::move(info));
      out.bodies.emplace_back(std::move(s));
    }
    vm.all_threads = split->first;
    vm.stat_cpu_ns = stat_cpu_ns;
    vm.vcpu_threads = split->second;
    vm.ctxsw = cs;
    vm.baselined = true;
    ++it;
  }

  host_sample(out.interval_ns, out);
  return out;
}

}  // namespace vmtide::agent
