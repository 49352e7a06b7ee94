// SPDX-License-Identifier: Apache-2.0
// /proc parsers and readers (procfs_stats.h).
#include "procfs_stats.h"

#include <fcntl.h>

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <charconv>
#include <fstream>
#include <iterator>
#include <sstream>

namespace vmtide::collectors {
namespace {

std::vector<std::string_view> fields(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    std::size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\t') ++j;
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

template <typename F>
void for_each_line(std::string_view text, F&& f) {
  while (!text.empty()) {
    auto nl = text.find('\n');
    f(text.substr(0, nl));
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
}

bool to_u64(std::string_view s, std::uint64_t& v) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size();
}

}  // namespace

Result<CpuTimes> parse_proc_stat(std::string_view text) {
  CpuTimes t;
  bool seen = false;
  Status bad;
  for_each_line(text, [&](std::string_view line) {
    auto f = fields(line);
    if (f.empty() || f[0].rfind("cpu", 0) != 0) return;
    if (f[0] != "cpu") {
      ++t.cpus;
      return;
    }
    // cpu user nice system idle iowait irq softirq steal guest guest_nice
    std::uint64_t v[8] = {};
    if (f.size() < 9) {
      bad = make_error(Errc::kInvalidArgument, "/proc/stat: short cpu line");
      return;
    }
    for (int i = 0; i < 8; ++i) {
      if (!to_u64(f[static_cast<std::size_t>(i) + 1], v[i])) {
        bad = make_error(Errc::kInvalidArgument, "/proc/stat: bad number in cpu line");
        return;
      }
    }
    t.busy = v[0] + v[1] + v[2] + v[5] + v[6];
    t.idle = v[3] + v[4];
    t.steal = v[7];
    seen = true;
  });
  if (!bad) return bad.error();
  if (!seen) return make_error(Errc::kInvalidArgument, "/proc/stat: no aggregate cpu line");
  return t;
}

Result<MemInfo> parse_meminfo(std::string_view text) {
  MemInfo m;
  bool total = false, avail = false;
  for_each_line(text, [&](std::string_view line) {
    auto f = fields(line);
    if (f.size() < 2) return;
    std::uint64_t kib = 0;
    if (!to_u64(f[1], kib)) return;
    if (f[0] == "MemTotal:") m.total_bytes = kib * 1024, total = true;
    else if (f[0] == "MemAvailable:") m.available_bytes = kib * 1024, avail = true;
  });
  if (!total || !avail) return make_error(Errc::kInvalidArgument, "/proc/meminfo: no MemTotal or MemAvailable");
  return m;
}

Result<LoadAvg> parse_loadavg(std::string_view text) {
  std::istringstream in{std::string(text)};
  LoadAvg l;
  if (!(in >> l.load1 >> l.load5 >> l.load15)) return make_error(Errc::kInvalidArgument, "/proc/loadavg: unparsable");
  return l;
}

Result<Pressure> parse_pressure(std::string_view text) {
  Pressure p;
  bool some = false;
  for_each_line(text, [&](std::string_view line) {
    auto f = fields(line);
    if (f.empty()) return;
    for (auto kv : f) {
      std::uint64_t v = 0;
      if (kv.rfind("total=", 0) == 0 && to_u64(kv.substr(6), v)) {
        if (f[0] == "some") p.some_us = v, some = true;
        else if (f[0] == "full") p.full_us = v;
      }
    }
  });
  if (!some) return make_error(Errc::kInvalidArgument, "pressure file: no 'some ... total=' line");
  return p;
}

Result<SchedStat> parse_schedstat(std::string_view text) {
  auto f = fields(text.substr(0, text.find('\n')));
  SchedStat s;
  if (f.size() < 3 || !to_u64(f[0], s.run_ns) || !to_u64(f[1], s.wait_ns) || !to_u64(f[2], s.pcount)) {
    return make_error(Errc::kInvalidArgument, "schedstat: expected three numbers");
  }
  return s;
}

Result<std::string> read_text_file(const std::string& path) {
  // open/read rather than ifstream: the agent reads a handful of these
  // every tick, and a stream's locale and buffer setup cost more than the
  // read itself. One read of a ProcFile, which then closes.
  ProcFile f(path);
  auto text = f.read();
  if (!text) return std::move(text).error();
  return std::string(*text);
}

ProcFile::~ProcFile() {
  if (fd_ >= 0) ::close(fd_);
}

Result<std::string_view> ProcFile::read() {
  if (fd_ < 0) {
    fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) return make_error(Errc::kNotFound, "cannot open " + path_);
  }
  if (buf_.empty()) buf_.resize(4096);
  std::size_t len = 0;
  for (;;) {
    if (len == buf_.size()) buf_.resize(buf_.size() * 2);
    const ssize_t n = ::pread(fd_, buf_.data() + len, buf_.size() - len, static_cast<off_t>(len));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int e = errno;
      ::close(fd_);
      fd_ = -1;  // opened afresh next time
      return make_error(e == ESRCH ? Errc::kNotFound : Errc::kIo, "reading " + path_ + ": " + std::strerror(e));
    }
    if (n == 0) break;
    len += static_cast<std::size_t>(n);
  }
  return std::string_view(buf_.data(), len);
}

Result<std::pair<SchedStat, SchedStat>> process_schedstat_split(std::uint32_t pid,
                                                                const std::vector<std::uint32_t>& subset) {
  const std::string dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return make_error(Errc::kNotFound, "process " + std::to_string(pid) + " is gone");
  SchedStat all, sub;
  bool any = false;
  while (dirent* e = readdir(d)) {
    std::uint64_t tid = 0;
    if (!to_u64(e->d_name, tid)) continue;
    auto text = read_text_file(dir + "/" + e->d_name + "/schedstat");
    if (!text) continue;  // the thread exited: skip it
    auto st = parse_schedstat(*text);
    if (!st) {
      closedir(d);
      return st.error();
    }
    any = true;
    all.run_ns += st->run_ns;
    all.wait_ns += st->wait_ns;
    all.pcount += st->pcount;
    if (subset.empty() || std::find(subset.begin(), subset.end(), static_cast<std::uint32_t>(tid)) != subset.end()) {
      sub.run_ns += st->run_ns;
      sub.wait_ns += st->wait_ns;
      sub.pcount += st->pcount;
    }
  }
  closedir(d);
  if (!any) return make_error(Errc::kNotFound, "process " + std::to_string(pid) + " is gone");
  return std::make_pair(all, sub);
}

Result<ProcessStat> parse_process_stat(std::string_view text) {
  // The command name (field 2) may contain spaces and parentheses: the
  // fields after the last ')' are fixed. State is field 3, utime and stime
  // fields 14 and 15, rss (pages) field 24.
  const auto close = text.rfind(')');
  if (close == std::string_view::npos || close + 2 >= text.size()) {
    return make_error(Errc::kInvalidArgument, "stat: unparsable");
  }
  auto f = fields(text.substr(close + 2));
  if (!f.empty() && (f[0] == "Z" || f[0] == "X")) return make_error(Errc::kNotFound, "process is a zombie");
  std::uint64_t utime = 0, stime = 0, rss_pages = 0;
  if (f.size() < 22 || !to_u64(f[11], utime) || !to_u64(f[12], stime) || !to_u64(f[21], rss_pages)) {
    return make_error(Errc::kInvalidArgument, "stat: unparsable");
  }
  static const std::uint64_t ns_per_tick = 1'000'000'000ULL / static_cast<std::uint64_t>(sysconf(_SC_CLK_TCK));
  static const std::uint64_t page = static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
  return ProcessStat{(utime + stime) * ns_per_tick, rss_pages * page};
}

ProcessStatFile::ProcessStatFile(std::uint32_t pid)
    : fd_(::open(("/proc/" + std::to_string(pid) + "/stat").c_str(), O_RDONLY | O_CLOEXEC)) {}

ProcessStatFile::~ProcessStatFile() {
  if (fd_ >= 0) ::close(fd_);
}

ProcessStatFile& ProcessStatFile::operator=(ProcessStatFile&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

Result<ProcessStat> ProcessStatFile::read() const {
  if (fd_ < 0) return make_error(Errc::kNotFound, "process is gone");
  char buf[1024];
  const ssize_t n = ::pread(fd_, buf, sizeof buf - 1, 0);
  if (n <= 0) return make_error(Errc::kNotFound, "process is gone");
  return parse_process_stat(std::string_view(buf, static_cast<std::size_t>(n)));
}

Result<ProcessStat> process_stat(std::uint32_t pid) {
  auto text = read_text_file("/proc/" + std::to_string(pid) + "/stat");
  if (!text) return make_error(Errc::kNotFound, "process " + std::to_string(pid) + " is gone");
  return parse_process_stat(*text);
}

}  // namespace vmtide::collectors
