// SPDX-License-Identifier: Apache-2.0
// DirtyCollector implementation (dirty.h).
#include "dirty.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "bpf_support.h"
#include "dirty.skel.h"

namespace vmtide::collectors {
namespace {

// Documentation/admin-guide/mm/pagemap.rst: one 64-bit entry per virtual page.
constexpr std::uint64_t kPmPresent = 1ULL << 63;
constexpr std::uint64_t kPmSwapped = 1ULL << 62;
constexpr std::uint64_t kPmSoftDirty = 1ULL << 55;
constexpr std::uint64_t kPage = 4096;
constexpr std::size_t kChunkEntries = 1 << 16;  // 512 KiB of pagemap per read

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

Status write_clear_refs(std::uint32_t pid, const char* value) {
  const std::string path = pid == 0 ? "/proc/self/clear_refs" : "/proc/" + std::to_string(pid) + "/clear_refs";
  Fd fd(open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    return make_error(errno == ENOENT ? Errc::kNotFound : Errc::kIo, "open " + path + ": " + std::strerror(errno));
  }
  if (write(fd.get(), value, std::strlen(value)) < 0) {
    return make_error(Errc::kIo, "write " + path + ": " + std::strerror(errno));
  }
  return {};
}

Result<std::uint64_t> pagemap_entry(int fd, const void* addr) {
  std::uint64_t e = 0;
  const off_t off = static_cast<off_t>(reinterpret_cast<std::uintptr_t>(addr) / kPage * sizeof e);
  if (pread(fd, &e, sizeof e, off) != static_cast<ssize_t>(sizeof e)) {
    return make_error(Errc::kIo, std::string("reading /proc/self/pagemap: ") + std::strerror(errno));
  }
  return e;
}

}  // namespace

std::uint64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);  // the clock of bpf_ktime_get_ns()
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<std::uint64_t>(ts.tv_nsec);
}

Status probe_soft_dirty() {
  void* p = mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return make_error(Errc::kIo, std::string("mmap: ") + std::strerror(errno));
  Fd fd(open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC));
  Status out;
  auto* page = static_cast<volatile char*>(p);
  page[0] = 1;
  if (fd.get() < 0) {
    out = make_error(Errc::kUnsupported, std::string("cannot open /proc/self/pagemap: ") + std::strerror(errno));
  } else if (Status st = write_clear_refs(0, "4"); !st) {
    out = make_error(Errc::kUnsupported, "cannot reset soft-dirty bits: " + st.error().message());
  } else {
    auto before = pagemap_entry(fd.get(), p);
    page[0] = 2;
    auto after = pagemap_entry(fd.get(), p);
    if (!before || !after) {
      out = !before ? before.error() : after.error();
    } else if ((*after & kPmSoftDirty) == 0 || (*before & kPmSoftDirty) != 0) {
      out = make_error(Errc::kUnsupported,
                       "kernel keeps no soft-dirty bits (built without CONFIG_MEM_SOFT_DIRTY; Debian's, Ubuntu's "
                       "and RHEL's kernels have it): dirty rates must come from the hypervisor");
    }
  }
  munmap(p, kPage);
  return out;
}

Result<std::pair<std::uint64_t, std::uint64_t>> scan_soft_dirty(std::uint32_t pid) {
  const std::string dir = "/proc/" + std::to_string(pid);
  std::ifstream maps(dir + "/maps");
  if (!maps) return make_error(Errc::kNotFound, "process " + std::to_string(pid) + " is gone");
  Fd fd(open((dir + "/pagemap").c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    return make_error(errno == ENOENT ? Errc::kNotFound : Errc::kIo,
                      "open " + dir + "/pagemap: " + std::strerror(errno));
  }
  std::uint64_t dirty = 0, resident = 0;
  std::vector<std::uint64_t> buf(kChunkEntries);
  std::string line;
  while (std::getline(maps, line)) {
    // "start-end perms offset dev inode [path]"
    std::istringstream in(line);
    std::string range, perms;
    in >> range >> perms;
    if (perms.size() < 2 || perms[1] != 'w') continue;  // only writable mappings can be dirtied
    const auto dash = range.find('-');
    if (dash == std::string::npos) continue;
    const std::uint64_t start = std::stoull(range.substr(0, dash), nullptr, 16);
    const std::uint64_t end = std::stoull(range.substr(dash + 1), nullptr, 16);
    for (std::uint64_t page = start / kPage; page < end / kPage;) {
      const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(kChunkEntries, end / kPage - page));
      const ssize_t got = pread(fd.get(), buf.data(), n * sizeof(std::uint64_t),
                                static_cast<off_t>(page * sizeof(std::uint64_t)));
      if (got < 0) {
        if (errno == ESRCH) return make_error(Errc::kNotFound, "process " + std::to_string(pid) + " is gone");
        return make_error(Errc::kIo, "reading " + dir + "/pagemap: " + std::strerror(errno));
      }
      const std::size_t entries = static_cast<std::size_t>(got) / sizeof(std::uint64_t);
      if (entries == 0) break;  // the mapping went away meanwhile
      for (std::size_t i = 0; i < entries; ++i) {
        const std::uint64_t e = buf[i];
        // Non-present pages of a VMA created after the reset also carry the
        // soft-dirty flag (VM_SOFTDIRTY): count only pages that exist.
        if ((e & (kPmPresent | kPmSwapped)) == 0) continue;
        ++resident;
        if (e & kPmSoftDirty) ++dirty;
      }
      page += entries;
    }
  }
  if (resident == 0 && !std::ifstream(dir + "/maps")) {
    return make_error(Errc::kNotFound, "process " + std::to_string(pid) + " is gone");
  }
  return std::make_pair(dirty, resident);
}

Result<std::unique_ptr<DirtyCollector>> DirtyCollector::create(const Options& opts) {
  if (opts.window_ns == 0 || opts.period_ns < opts.window_ns || opts.max_tracked == 0) {
    return make_error(Errc::kInvalidArgument, "dirty: need 0 < window_ns <= period_ns and max_tracked > 0");
  }
  if (Status st = probe_soft_dirty(); !st) return st.error();
  std::unique_ptr<bpf::Skeleton<dirty_bpf>> skel;
  std::string reason;
  if (!opts.bpf) {
    reason = "disabled by configuration";
  } else if (Status st = bpf::preflight(); !st) {
    reason = st.error().message();
  } else {
    bpf::install_libbpf_logging();
    auto s = bpf::Skeleton<dirty_bpf>::open_load_attach("dirty", [&](dirty_bpf& d) -> Status {
      if (bpf_map__set_max_entries(d.maps.dirty_tracked, opts.max_tracked) != 0 ||
          bpf_map__set_max_entries(d.maps.dirty_counts, opts.max_tracked * VMTIDE_DIRTY_BUCKETS) != 0) {
        return make_error(Errc::kBpfMap, "dirty: sizing maps");
      }
      return {};
    });
    if (s) {
      skel = std::make_unique<bpf::Skeleton<dirty_bpf>>(std::move(s).value());
    } else {
      reason = s.error().message();
    }
  }
  return std::unique_ptr<DirtyCollector>(new DirtyCollector(opts, std::move(skel), std::move(reason)));
}

DirtyCollector::DirtyCollector(const Options& opts, std::unique_ptr<bpf::Skeleton<dirty_bpf>> skel,
                               std::string bpf_reason)
    : opts_(opts), skel_(std::move(skel)), bpf_disabled_reason_(std::move(bpf_reason)),
      ncpus_(libbpf_num_possible_cpus()) {
  for (std::uint32_t i = opts_.max_tracked; i > 0; --i) free_slots_.push_back(i - 1);
}

DirtyCollector::~DirtyCollector() = default;

Status DirtyCollector::track(const std::string& vm_id, std::uint32_t tgid) {
  if (vms_.count(vm_id) != 0) return {};
  if (free_slots_.empty()) return make_error(Errc::kInvalidArgument, "dirty: all slots in use");
  Vm vm;
  vm.tgid = tgid;
  vm.slot = free_slots_.back();
  free_slots_.pop_back();
  vms_.emplace(vm_id, std::move(vm));
  return {};
}

Status DirtyCollector::untrack(const std::string& vm_id) {
  auto it = vms_.find(vm_id);
  if (it == vms_.end()) return make_error(Errc::kNotFound, "dirty: VM " + vm_id + " not tracked");
  Status out;
  if (skel_) {
    const std::uint32_t tgid = it->second.tgid;
    int err = bpf_map__delete_elem((*skel_)->maps.dirty_tracked, &tgid, sizeof tgid, 0);
    if (err != 0 && err != -ENOENT) out = make_error(Errc::kBpfMap, "dirty: untracking: " + std::string(std::strerror(-err)));
  }
  free_slots_.insert(free_slots_.begin(), it->second.slot);  // reused last
  vms_.erase(it);
  return out;
}

Result<std::vector<std::uint64_t>> DirtyCollector::read_buckets(std::uint32_t slot) const {
  std::vector<std::uint64_t> sums(VMTIDE_DIRTY_BUCKETS, 0);
  std::vector<std::uint64_t> per_cpu(static_cast<std::size_t>(ncpus_));
  for (std::uint32_t b = 0; b < VMTIDE_DIRTY_BUCKETS; ++b) {
    const std::uint32_t idx = slot * VMTIDE_DIRTY_BUCKETS + b;
    if (int err = bpf_map__lookup_elem((*skel_)->maps.dirty_counts, &idx, sizeof idx, per_cpu.data(),
                                       per_cpu.size() * sizeof(std::uint64_t), 0);
        err != 0) {
      return make_error(Errc::kBpfMap, "dirty: reading counts: " + std::string(std::strerror(-err)));
    }
    for (std::uint64_t v : per_cpu) sums[b] += v;
  }
  return sums;
}

Status DirtyCollector::begin_window(const std::string& vm_id) {
  auto it = vms_.find(vm_id);
  if (it == vms_.end()) return make_error(Errc::kNotFound, "dirty: VM " + vm_id + " not tracked");
  Vm& vm = it->second;
  const std::uint64_t now = monotonic_ns();
  if (skel_) {
    // Counts are monotonic: remember where this window starts from.
    auto base = read_buckets(vm.slot);
    if (!base) return base.error();
    vm.baseline = std::move(*base);
    // Start timing before the reset: a fault between the two lands in
    // bucket 0 instead of being missed.
    vmtide_dirty_window w{now, std::max<std::uint64_t>(1, opts_.window_ns / VMTIDE_DIRTY_BUCKETS), vm.slot, 0};
    if (int err = bpf_map__update_elem((*skel_)->maps.dirty_tracked, &vm.tgid, sizeof vm.tgid, &w, sizeof w, BPF_ANY);
        err != 0) {
      return make_error(Errc::kBpfMap, "dirty: opening window: " + std::string(std::strerror(-err)));
    }
  }
  if (Status st = write_clear_refs(vm.tgid, "4"); !st) return st;
  vm.window_start_ns = now;
  return {};
}

Result<DirtyWindow> DirtyCollector::end_window(const std::string& vm_id) {
  auto it = vms_.find(vm_id);
  if (it == vms_.end()) return make_error(Errc::kNotFound, "dirty: VM " + vm_id + " not tracked");
  Vm& vm = it->second;
  if (!vm.window_start_ns) return make_error(Errc::kInvalidArgument, "dirty: no window open for " + vm_id);
  DirtyWindow out;
  auto scan = scan_soft_dirty(vm.tgid);
  const std::uint64_t end = monotonic_ns();
  out.window_ns = end - *vm.window_start_ns;
  vm.window_start_ns.reset();
  std::vector<std::uint64_t> faults;
  if (skel_) {
    auto now = read_buckets(vm.slot);
    // Close the window in the kernel: later faults are not counted.
    vmtide_dirty_window closed{0, 0, vm.slot, 0};
    (void)bpf_map__update_elem((*skel_)->maps.dirty_tracked, &vm.tgid, sizeof vm.tgid, &closed, sizeof closed,
                               BPF_EXIST);
    if (!now) return now.error();
    faults.resize(VMTIDE_DIRTY_BUCKETS);
    for (std::size_t b = 0; b < faults.size(); ++b) faults[b] = (*now)[b] - vm.baseline[b];
  }
  if (!scan) return scan.error();
  out.pages = scan->first;
  out.resident_pages = scan->second;
  if (!faults.empty()) {
    std::uint64_t total = 0;
    for (std::uint64_t f : faults) total += f;
    out.write_faults = total;
    // Faults give the shape, pagemap the scale: pages the faults missed (a
    // huge page is one fault for 512 pages) are spread in proportion.
    const std::uint64_t bucket_ns = std::max<std::uint64_t>(1, opts_.window_ns / VMTIDE_DIRTY_BUCKETS);
    std::uint64_t cum = 0;
    for (std::size_t b = 0; b < faults.size() && total > 0; ++b) {
      cum += faults[b];
      const bool last = b + 1 == faults.size();
      const std::uint64_t tau = last ? out.window_ns : std::min<std::uint64_t>((b + 1) * bucket_ns, out.window_ns);
      const auto pages = static_cast<std::uint64_t>(static_cast<double>(cum) * static_cast<double>(out.pages) /
                                                    static_cast<double>(total) + 0.5);
      if (out.curve.empty() || out.curve.back().tau_ns != tau) out.curve.push_back({tau, pages});
      if (tau >= out.window_ns) break;
    }
    if (!out.curve.empty()) out.curve.back().pages = out.pages;
  }
  return out;
}

std::vector<std::pair<std::string, Result<DirtyWindow>>> DirtyCollector::poll(std::uint64_t now_ns) {
  std::vector<std::pair<std::string, Result<DirtyWindow>>> done;
  std::vector<std::string> gone;
  for (auto& [id, vm] : vms_) {
    if (vm.window_start_ns && now_ns >= *vm.window_start_ns + opts_.window_ns) {
      auto w = end_window(id);
      if (!w && w.error().code == Errc::kNotFound) gone.push_back(id);
      done.emplace_back(id, std::move(w));
    } else if (!vm.window_start_ns && now_ns >= vm.next_start_ns) {
      vm.next_start_ns = now_ns + opts_.period_ns;
      if (Status st = begin_window(id); !st) {
        if (st.error().code == Errc::kNotFound) gone.push_back(id);
        done.emplace_back(id, st.error());
      }
    }
  }
  for (const auto& id : gone) (void)untrack(id);
  return done;
}

Result<std::size_t> DirtyCollector::kernel_entries() const {
  if (!skel_) return std::size_t{0};
  std::size_t n = 0;
  std::uint32_t key = 0, next = 0;
  const std::uint32_t* prev = nullptr;
  while (bpf_map__get_next_key((*skel_)->maps.dirty_tracked, prev, &next, sizeof next) == 0) {
    ++n;
    key = next;
    prev = &key;
  }
  return n;
}

}  // namespace vmtide::collectors
