// SPDX-License-Identifier: Apache-2.0
// procfs discovery of QEMU processes (procfs.h).
#include "procfs.h"

#include <dirent.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>

namespace vmtide::discovery {
namespace {

constexpr std::uint64_t kMiB = 1024ULL * 1024ULL;
// QEMU's default RAM size when -m is absent (hw/i386/pc.c, mc->default_ram_size).
constexpr std::uint64_t kQemuDefaultRam = 128 * kMiB;

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  while (true) {
    auto pos = s.find(sep);
    out.push_back(s.substr(0, pos));
    if (pos == std::string_view::npos) break;
    s.remove_prefix(pos + 1);
  }
  return out;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::optional<std::uint32_t> parse_pid(std::string_view s) {
  std::uint32_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v == 0) return std::nullopt;
  return v;
}

}  // namespace

Result<std::uint64_t> parse_qemu_mem(std::string_view arg) {
  // "size=1G,slots=2,maxmem=4G" or a bare size as the first option.
  std::string_view size = arg;
  for (auto opt : split(arg, ',')) {
    if (opt.rfind("size=", 0) == 0) {
      size = opt.substr(5);
      break;
    }
    if (opt.find('=') == std::string_view::npos) {
      size = opt;
      break;
    }
  }
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(size.data(), size.data() + size.size(), v);
  if (ec != std::errc() || p == size.data()) {
    return make_error(Errc::kInvalidArgument, "qemu -m '" + std::string(arg) + "': no number");
  }
  std::string_view suffix(p, static_cast<std::size_t>(size.data() + size.size() - p));
  std::uint64_t mult = kMiB;  // QEMU reads a bare number as MiB
  if (suffix.empty() || suffix == "M" || suffix == "m") mult = kMiB;
  else if (suffix == "G" || suffix == "g") mult = 1024 * kMiB;
  else if (suffix == "T" || suffix == "t") mult = 1024 * 1024 * kMiB;
  else if (suffix == "K" || suffix == "k") mult = 1024;
  else if (suffix == "B" || suffix == "b") mult = 1;
  else return make_error(Errc::kInvalidArgument, "qemu -m '" + std::string(arg) + "': unknown suffix");
  if (v > UINT64_MAX / mult) return make_error(Errc::kInvalidArgument, "qemu -m '" + std::string(arg) + "': too large");
  return v * mult;
}

Result<QemuCmdline> parse_qemu_cmdline(std::string_view argv) {
  while (!argv.empty() && argv.back() == '\0') argv.remove_suffix(1);
  QemuCmdline out{"", "", kQemuDefaultRam, false};
  auto args = split(argv, '\0');
  for (std::size_t i = 0; i + 1 < args.size(); ++i) {
    std::string_view a = args[i];
    if (a.size() > 2 && a[0] == '-' && a[1] == '-') a.remove_prefix(1);  // QEMU accepts --opt too
    const std::string_view v = args[i + 1];
    if (a == "-name") {
      for (auto opt : split(v, ',')) {
        if (opt.rfind("guest=", 0) == 0) out.name = opt.substr(6);
        else if (opt == "debug-threads=on") out.debug_threads = true;
        else if (opt.find('=') == std::string_view::npos && out.name.empty()) out.name = opt;
      }
      ++i;
    } else if (a == "-uuid") {
      out.uuid = v;
      ++i;
    } else if (a == "-m") {
      auto m = parse_qemu_mem(v);
      if (!m) return m.error();
      out.ram_bytes = *m;
      ++i;
    }
  }
  return out;
}

std::optional<unsigned> vcpu_index_from_comm(std::string_view comm) {
  while (!comm.empty() && (comm.back() == '\n' || comm.back() == '\0')) comm.remove_suffix(1);
  if (comm.rfind("CPU ", 0) != 0) return std::nullopt;
  comm.remove_prefix(4);
  unsigned idx = 0;
  auto [p, ec] = std::from_chars(comm.data(), comm.data() + comm.size(), idx);
  if (ec != std::errc() || p == comm.data() || p == comm.data() + comm.size() || *p != '/') return std::nullopt;
  return idx;
}

std::vector<QemuProcess> scan_qemu_processes(const std::string& proc_root,
                                             const std::vector<std::uint32_t>& extra_pids) {
  std::vector<QemuProcess> out;
  DIR* d = opendir(proc_root.c_str());
  if (d == nullptr) return out;
  std::vector<std::uint32_t> pids;
  while (dirent* e = readdir(d)) {
    if (auto pid = parse_pid(e->d_name)) pids.push_back(*pid);
  }
  closedir(d);
  std::sort(pids.begin(), pids.end());

  for (std::uint32_t pid : pids) {
    const std::string dir = proc_root + "/" + std::to_string(pid);
    const std::string comm = read_file(dir + "/comm");
    const bool wanted = comm.rfind("qemu-system", 0) == 0 ||
                        std::find(extra_pids.begin(), extra_pids.end(), pid) != extra_pids.end();
    if (!wanted) continue;
    const std::string cmdline = read_file(dir + "/cmdline");
    if (cmdline.empty()) continue;  // exited meanwhile, or a kernel thread
    auto cl = parse_qemu_cmdline(cmdline);
    QemuProcess p;
    p.pid = pid;
    // Only a QEMU command line says how much RAM the guest has; for other
    // processes named with --pid, leave it unknown (0).
    if (cl && comm.rfind("qemu-system", 0) == 0) {
      p.name = cl->name;
      p.uuid = cl->uuid;
      p.ram_bytes = cl->ram_bytes;
    }
    if (p.name.empty()) p.name = "pid" + std::to_string(pid);
    p.id = p.uuid.empty() ? "proc:" + std::to_string(pid) : p.uuid;

    std::map<unsigned, std::uint32_t> vcpus;
    if (DIR* td = opendir((dir + "/task").c_str())) {
      while (dirent* te = readdir(td)) {
        auto tid = parse_pid(te->d_name);
        if (!tid) continue;
        if (auto idx = vcpu_index_from_comm(read_file(dir + "/task/" + te->d_name + "/comm"))) vcpus[*idx] = *tid;
      }
      closedir(td);
    }
    for (const auto& [idx, tid] : vcpus) p.vcpu_tids.push_back(tid);
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace vmtide::discovery
