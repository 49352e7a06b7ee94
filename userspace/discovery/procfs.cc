// SPDX-License-Identifier: Apache-2.0
// procfs discovery of QEMU processes (procfs.h).
#include "procfs.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
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

// The whole file, or "" when it cannot be read. open/read, not ifstream:
// a rescan reads the comm of every QEMU process and of all their threads.
std::string read_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

std::optional<std::string> read_link(const std::string& path) {
  char buf[4096];
  const ssize_t n = readlink(path.c_str(), buf, sizeof buf);
  if (n <= 0 || static_cast<std::size_t>(n) >= sizeof buf) return std::nullopt;
  return std::string(buf, static_cast<std::size_t>(n));
}

std::optional<std::uint32_t> parse_pid(std::string_view s) {
  std::uint32_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v == 0) return std::nullopt;
  return v;
}

std::optional<std::string> opt(const std::vector<std::pair<std::string, std::string>>& opts, std::string_view key) {
  std::optional<std::string> out;
  for (const auto& [k, v] : opts) {
    if (k == key) out = v;  // the last one counts, as in QEMU
  }
  return out;
}

// QEMU's bool spellings (util/qemu-option.c, parse_option_bool -> qapi_bool_parse).
bool opt_true(const std::vector<std::pair<std::string, std::string>>& opts, std::string_view key) {
  auto v = opt(opts, key);
  return v && (*v == "on" || *v == "yes" || *v == "true" || *v == "y");
}

// The socket path of a listening unix chardev, if `opts` describe one.
std::optional<std::string> listening_unix_path(const std::vector<std::pair<std::string, std::string>>& opts) {
  auto path = opt(opts, "path");
  if (!path || path->empty() || !opt_true(opts, "server") || opt_true(opts, "abstract")) return std::nullopt;
  return path;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> parse_qemu_opts(std::string_view s, std::string_view implied) {
  // Split at single commas; ",," stands for one comma inside an item.
  std::vector<std::string> items(1);
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == ',' && i + 1 < s.size() && s[i + 1] == ',') {
      items.back() += ',';
      ++i;
    } else if (s[i] == ',') {
      items.emplace_back();
    } else {
      items.back() += s[i];
    }
  }
  std::vector<std::pair<std::string, std::string>> out;
  for (std::size_t i = 0; i < items.size(); ++i) {
    const std::string& it = items[i];
    if (it.empty()) continue;
    const auto eq = it.find('=');
    if (eq != std::string::npos) {
      out.emplace_back(it.substr(0, eq), it.substr(eq + 1));
    } else if (i == 0 && !implied.empty()) {
      out.emplace_back(std::string(implied), it);
    } else if (it.rfind("no", 0) == 0 && it.size() > 2) {
      out.emplace_back(it.substr(2), "off");
    } else {
      out.emplace_back(it, "on");
    }
  }
  return out;
}

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
  QemuCmdline out{"", "", kQemuDefaultRam, false, {}};
  auto args = split(argv, '\0');
  std::map<std::string, std::string> socket_chardevs;  // id -> path, listening unix sockets
  std::vector<std::string> control_mons;               // chardev ids of -mon ...,mode=control
  auto add_socket = [&](const std::string& path) {
    if (std::find(out.qmp_sockets.begin(), out.qmp_sockets.end(), path) == out.qmp_sockets.end()) {
      out.qmp_sockets.push_back(path);
    }
  };
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
    } else if (a == "-qmp" || a == "-qmp-pretty") {
      // "unix:" is QEMU's legacy chardev shorthand with "path" implied
      // (chardev/char.c, qemu_chr_parse_compat); tcp:, stdio etc. are skipped.
      if (v.rfind("unix:", 0) == 0) {
        if (auto path = listening_unix_path(parse_qemu_opts(v.substr(5), "path"))) add_socket(*path);
      }
      ++i;
    } else if (a == "-chardev") {
      auto opts = parse_qemu_opts(v, "backend");
      auto id = opt(opts, "id");
      auto path = listening_unix_path(opts);
      if (opt(opts, "backend") == "socket" && id && path) socket_chardevs[*id] = *path;
      ++i;
    } else if (a == "-mon") {
      auto opts = parse_qemu_opts(v, "chardev");
      auto chardev = opt(opts, "chardev");
      if (chardev && opt(opts, "mode") == "control") control_mons.push_back(*chardev);
      ++i;
    }
  }
  // -mon may name a -chardev defined after it.
  for (const auto& id : control_mons) {
    if (auto it = socket_chardevs.find(id); it != socket_chardevs.end()) add_socket(it->second);
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
                                             const std::vector<std::uint32_t>& extra_pids, ScanCache* cache) {
  std::vector<QemuProcess> out;
  DIR* d = opendir(proc_root.c_str());
  if (d == nullptr) return out;
  std::vector<std::uint32_t> pids;
  while (dirent* e = readdir(d)) {
    if (auto pid = parse_pid(e->d_name)) pids.push_back(*pid);
  }
  closedir(d);
  std::sort(pids.begin(), pids.end());
  const bool full = cache == nullptr || cache->full_every == 0 || cache->scans++ % cache->full_every == 0;
  std::map<std::uint32_t, int> not_qemu;

  for (std::uint32_t pid : pids) {
    const bool extra = std::find(extra_pids.begin(), extra_pids.end(), pid) != extra_pids.end();
    if (cache != nullptr && !full && !extra) {
      if (auto nq = cache->not_qemu.find(pid); nq != cache->not_qemu.end() && nq->second >= 2) {
        not_qemu[pid] = nq->second;  // settled: not read again until the next full scan
        continue;
      }
    }
    const std::string dir = proc_root + "/" + std::to_string(pid);
    // A QEMU process found by an earlier scan needs no comm read between
    // full scans: its task listing below says whether it still exists, and
    // the agent notices an exit at its next tick anyway.
    const bool known = cache != nullptr && !full && cache->by_pid.count(pid) != 0;
    const std::string comm = known ? std::string("qemu-system") : read_file(dir + "/comm");
    const bool wanted = comm.rfind("qemu-system", 0) == 0 || extra;
    if (!wanted) {
      if (cache != nullptr && !comm.empty()) {
        auto nq = cache->not_qemu.find(pid);
        not_qemu[pid] = nq == cache->not_qemu.end() ? 1 : nq->second + 1;
      }
      continue;
    }
    // A known QEMU whose threads were the same in the last two scans has
    // finished starting: between full scans, one lookup of its first vCPU
    // thread stands for the listing (a tid is not reused while its thread
    // lives, so the process is the same). vCPUs added later (hot-plug) or
    // gone wait for the next full scan; the agent's tick sees an exit.
    if (known) {
      const ScanCache::Entry& e = cache->by_pid.at(pid);
      if (e.unchanged >= 2 && !e.vcpus.empty() &&
          ::faccessat(AT_FDCWD, (dir + "/task/" + std::to_string(e.vcpus.begin()->second)).c_str(), F_OK, 0) == 0) {
        out.push_back(e.proc);
        continue;
      }
    }
    // Its threads: a getdents, no file reads.
    std::vector<std::uint32_t> tids;
    if (DIR* td = opendir((dir + "/task").c_str())) {
      while (dirent* te = readdir(td)) {
        if (auto tid = parse_pid(te->d_name)) tids.push_back(*tid);
      }
      closedir(td);
    }
    std::sort(tids.begin(), tids.end());
    if (cache != nullptr) {
      if (auto hit = cache->by_pid.find(pid); hit != cache->by_pid.end()) {
        ScanCache::Entry& e = hit->second;
        std::vector<std::uint32_t> kept;
        std::set_intersection(tids.begin(), tids.end(), e.tids.begin(), e.tids.end(), std::back_inserter(kept));
        if (!kept.empty()) {
          // The same process: keep its command line; name only the threads
          // that are new, and drop vCPUs that exited.
          std::map<unsigned, std::uint32_t> vcpus;
          for (const auto& [idx, tid] : e.vcpus) {
            if (std::binary_search(tids.begin(), tids.end(), tid)) vcpus[idx] = tid;
          }
          if (tids != e.tids) {
            for (std::uint32_t tid : tids) {
              if (std::binary_search(e.tids.begin(), e.tids.end(), tid)) continue;
              if (auto idx = vcpu_index_from_comm(read_file(dir + "/task/" + std::to_string(tid) + "/comm"))) {
                vcpus[*idx] = tid;
              }
            }
          }
          e.proc.vcpu_tids.clear();
          for (const auto& [idx, tid] : vcpus) e.proc.vcpu_tids.push_back(tid);
          e.unchanged = tids == e.tids ? e.unchanged + 1 : 0;
          e.tids = tids;
          e.vcpus = std::move(vcpus);
          out.push_back(e.proc);
          continue;
        }
      }
    }
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
      for (const auto& path : cl->qmp_sockets) {
        if (path[0] == '/') {
          p.qmp_sockets.push_back(path);
        } else if (auto cwd = read_link(dir + "/cwd")) {  // QEMU resolves it from its working directory
          p.qmp_sockets.push_back(*cwd + "/" + path);
        }
      }
    }
    if (p.name.empty()) p.name = "pid" + std::to_string(pid);
    p.id = p.uuid.empty() ? "proc:" + std::to_string(pid) : p.uuid;

    std::map<unsigned, std::uint32_t> vcpus;
    for (std::uint32_t tid : tids) {
      if (auto idx = vcpu_index_from_comm(read_file(dir + "/task/" + std::to_string(tid) + "/comm"))) {
        vcpus[*idx] = tid;
      }
    }
    for (const auto& [idx, tid] : vcpus) p.vcpu_tids.push_back(tid);
    if (cache != nullptr) cache->by_pid[pid] = ScanCache::Entry{p, tids, vcpus, 0};
    out.push_back(std::move(p));
  }
  if (cache != nullptr) {
    cache->not_qemu = std::move(not_qemu);  // pids that are gone drop out
    // Forget processes that are gone.
    std::erase_if(cache->by_pid, [&](const auto& kv) {
      return std::none_of(out.begin(), out.end(), [&](const QemuProcess& q) { return q.pid == kv.first; });
    });
  }
  return out;
}

}  // namespace vmtide::discovery
