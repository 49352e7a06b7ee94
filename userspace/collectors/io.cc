// SPDX-License-Identifier: Apache-2.0
// IoCollector implementation (io.h).
#include "io.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "bpf_support.h"
#include "io.skel.h"

namespace vmtide::collectors {
namespace {

std::optional<Pressure> read_pressure_file(const std::string& path) {
  auto text = read_text_file(path);
  if (!text) return std::nullopt;
  auto p = parse_pressure(*text);
  return p ? std::optional(*p) : std::nullopt;
}

std::uint64_t sub(std::uint64_t a, std::uint64_t b) { return a >= b ? a - b : 0; }

}  // namespace

std::optional<std::string> cgroup_dir_of(std::uint32_t pid, const std::string& cgroup_root) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cgroup");
  std::string line;
  while (std::getline(in, line)) {
    // cgroup v2: "0::/machine.slice/machine-qemu\x2d1\x2dvm.scope/libvirt/emulator"
    if (line.rfind("0::", 0) == 0) {
      const std::string path = line.substr(3);
      if (path.empty() || path == "/") return std::nullopt;
      return cgroup_root + path;
    }
  }
  return std::nullopt;
}

Result<std::unique_ptr<IoCollector>> IoCollector::create(const Options& opts) {
  if (opts.max_tracked == 0) return make_error(Errc::kInvalidArgument, "io: max_tracked must be > 0");
  if (Status st = bpf::preflight(); !st) return st.error();
  bpf::install_libbpf_logging();
  auto skel = bpf::Skeleton<io_bpf>::open_load_attach("io", [&](io_bpf& s) -> Status {
    if (bpf_map__set_max_entries(s.maps.io_tracked, opts.max_tracked) != 0 ||
        bpf_map__set_max_entries(s.maps.io_counts, opts.max_tracked) != 0) {
      return make_error(Errc::kBpfMap, "io: sizing maps");
    }
    return {};
  });
  if (!skel) return std::move(skel).error();
  return std::unique_ptr<IoCollector>(new IoCollector(std::move(skel).value(), opts.max_tracked));
}

namespace {

void add_counts(vmtide_io_counts& sum, const vmtide_io_counts& c) {
  sum.rd_bytes += c.rd_bytes;
  sum.wr_bytes += c.wr_bytes;
  sum.rd_ops += c.rd_ops;
  sum.wr_ops += c.wr_ops;
  for (int i = 0; i < VMTIDE_IO_HIST_SLOTS; ++i) sum.lat_hist[i] += c.lat_hist[i];
}

}  // namespace

IoCollector::IoCollector(bpf::Skeleton<io_bpf> skel, std::uint32_t max_tracked)
    : skel_(std::move(skel)), ncpus_(libbpf_num_possible_cpus()), slots_(max_tracked) {}

IoCollector::~IoCollector() = default;

Result<vmtide_io_counts> IoCollector::read_slot(std::uint32_t slot) const {
  std::vector<vmtide_io_counts> per_cpu(static_cast<std::size_t>(ncpus_));
  if (int err = bpf_map__lookup_elem(skel_->maps.io_counts, &slot, sizeof slot, per_cpu.data(),
                                     per_cpu.size() * sizeof(vmtide_io_counts), 0);
      err != 0) {
    return make_error(Errc::kBpfMap, "io: reading slot " + std::to_string(slot) + ": " + std::strerror(-err));
  }
  vmtide_io_counts sum{};
  for (const auto& c : per_cpu) add_counts(sum, c);
  return sum;
}

Status IoCollector::track(const std::string& vm_id, std::uint32_t tgid) {
  if (vms_.count(vm_id) != 0) return {};
  auto taken = slots_.take();
  if (!taken) return make_error(Errc::kInvalidArgument, "io: all slots in use");
  Vm vm;
  vm.tgid = tgid;
  vm.slot = *taken;
  // Baseline first, then publish the mapping (counts start at zero now).
  auto base = read_slot(vm.slot);
  if (!base) {
    slots_.release(vm.slot);
    return base.error();
  }
  vm.last = *base;
  if (int err = bpf_map__update_elem(skel_->maps.io_tracked, &tgid, sizeof tgid, &vm.slot, sizeof vm.slot,
                                     BPF_NOEXIST);
      err != 0) {
    slots_.release(vm.slot);
    return make_error(Errc::kBpfMap, "io: tracking pid " + std::to_string(tgid) + ": " + std::strerror(-err));
  }
  vm.cgroup = cgroup_dir_of(tgid);
  if (vm.cgroup) {
    vm.last_io = read_pressure_file(*vm.cgroup + "/io.pressure");
    vm.last_cpu = read_pressure_file(*vm.cgroup + "/cpu.pressure");
  }
  vms_.emplace(vm_id, std::move(vm));
  return {};
}

Status IoCollector::untrack(const std::string& vm_id) {
  auto it = vms_.find(vm_id);
  if (it == vms_.end()) return make_error(Errc::kNotFound, "io: VM " + vm_id + " not tracked");
  const std::uint32_t tgid = it->second.tgid;
  int err = bpf_map__delete_elem(skel_->maps.io_tracked, &tgid, sizeof tgid, 0);
  slots_.release(it->second.slot);  // reusable after the next read()
  vms_.erase(it);
  if (err != 0 && err != -ENOENT) return make_error(Errc::kBpfMap, "io: untracking: " + std::string(std::strerror(-err)));
  return {};
}

Result<std::map<std::string, IoDelta>> IoCollector::read() {
  std::map<std::string, IoDelta> out;
  // Every slot in one batched read (not one bpf() per VM), summed per CPU.
  // Only the slots in use, packed at the front of the array.
  slots_.settle();
  if (Status st = bpf::read_array_prefix(skel_->maps.io_counts, ncpus_, slots_.span(), rows_); !st) return st.error();
  const std::size_t per = static_cast<std::size_t>(ncpus_);
  for (auto& [id, vm] : vms_) {
    if ((vm.slot + 1) * per > rows_.size()) {
      return make_error(Errc::kBpfMap, "io: no counters for slot " + std::to_string(vm.slot));
    }
    vmtide_io_counts sum{};
    for (std::size_t c = 0; c < per; ++c) add_counts(sum, rows_[vm.slot * per + c]);
    const vmtide_io_counts* now = &sum;
    IoDelta d;
    d.rd_bytes = sub(now->rd_bytes, vm.last.rd_bytes);
    d.wr_bytes = sub(now->wr_bytes, vm.last.wr_bytes);
    d.rd_ops = sub(now->rd_ops, vm.last.rd_ops);
    d.wr_ops = sub(now->wr_ops, vm.last.wr_ops);
    d.lat_hist.resize(VMTIDE_IO_HIST_SLOTS);
    for (int i = 0; i < VMTIDE_IO_HIST_SLOTS; ++i) d.lat_hist[i] = sub(now->lat_hist[i], vm.last.lat_hist[i]);
    vm.last = *now;
    if (vm.cgroup) {
      auto io = read_pressure_file(*vm.cgroup + "/io.pressure");
      auto cpu = read_pressure_file(*vm.cgroup + "/cpu.pressure");
      if (io && vm.last_io) {
        d.io_some_us = sub(io->some_us, vm.last_io->some_us);
        if (io->full_us && vm.last_io->full_us) d.io_full_us = sub(*io->full_us, *vm.last_io->full_us);
      }
      if (cpu && vm.last_cpu) {
        d.cpu_some_us = sub(cpu->some_us, vm.last_cpu->some_us);
        if (cpu->full_us && vm.last_cpu->full_us) d.cpu_full_us = sub(*cpu->full_us, *vm.last_cpu->full_us);
      }
      vm.last_io = io;
      vm.last_cpu = cpu;
    }
    out.emplace(id, std::move(d));
  }
  return out;
}

Result<std::size_t> IoCollector::kernel_tracked_entries() const {
  std::size_t n = 0;
  std::uint32_t key = 0, next = 0;
  const std::uint32_t* prev = nullptr;
  while (bpf_map__get_next_key(skel_->maps.io_tracked, prev, &next, sizeof next) == 0) {
    ++n;
    key = next;
    prev = &key;
  }
  return n;
}

}  // namespace vmtide::collectors
