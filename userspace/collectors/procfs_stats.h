// SPDX-License-Identifier: Apache-2.0
// Host and per-process statistics read from /proc: pure parsers over the
// files' text (tested on fixtures) plus thin readers. The BPF collectors
// replace the per-thread polling on the hot path; these remain the ground
// truth and the fallback.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "vmtide/result.h"

namespace vmtide::collectors {

// The aggregate "cpu" line of /proc/stat, in USER_HZ ticks.
struct CpuTimes {
  std::uint64_t busy = 0;   // user+nice+system+irq+softirq (guest time is inside user/nice)
  std::uint64_t idle = 0;   // idle+iowait
  std::uint64_t steal = 0;  // time this host, itself a guest, waited for its hypervisor
  unsigned cpus = 0;        // number of "cpuN" lines
};
[[nodiscard]] Result<CpuTimes> parse_proc_stat(std::string_view text);

struct MemInfo {
  std::uint64_t total_bytes = 0;
  std::uint64_t available_bytes = 0;
};
[[nodiscard]] Result<MemInfo> parse_meminfo(std::string_view text);

struct LoadAvg {
  double load1 = 0, load5 = 0, load15 = 0;
};
[[nodiscard]] Result<LoadAvg> parse_loadavg(std::string_view text);

// A PSI file (/proc/pressure/*, cgroup *.pressure): cumulative stall µs.
struct Pressure {
  std::uint64_t some_us = 0;
  std::optional<std::uint64_t> full_us;  // /proc/pressure/cpu has "full" only since 5.13
};
[[nodiscard]] Result<Pressure> parse_pressure(std::string_view text);

// /proc/<pid>/task/<tid>/schedstat: "run_ns wait_ns timeslices".
struct SchedStat {
  std::uint64_t run_ns = 0;    // se.sum_exec_runtime
  std::uint64_t wait_ns = 0;   // sched_info.run_delay: runnable but waiting for a CPU (steal, for a vCPU)
  std::uint64_t pcount = 0;
};
[[nodiscard]] Result<SchedStat> parse_schedstat(std::string_view text);

// Reads a whole (small) file; an error if it cannot be opened.
[[nodiscard]] Result<std::string> read_text_file(const std::string& path);

// A /proc or /sys file read again every sample: kept open, and read from
// offset 0 with pread into a buffer kept between reads, so a sample costs
// one system call instead of open, read and close. A file that cannot be
// opened (a kernel without PSI) is tried again at the next read.
class ProcFile {
 public:
  explicit ProcFile(std::string path) : path_(std::move(path)) {}
  ~ProcFile();
  ProcFile(ProcFile&& o) noexcept : path_(std::move(o.path_)), fd_(o.fd_), buf_(std::move(o.buf_)) { o.fd_ = -1; }
  ProcFile& operator=(ProcFile&&) = delete;
  ProcFile(const ProcFile&) = delete;
  ProcFile& operator=(const ProcFile&) = delete;

  // The whole file; valid until the next read().
  [[nodiscard]] Result<std::string_view> read();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
  std::string buf_;
};

// One pass over every thread of `pid`: the sum over all of them, and the
// sum over `subset` (all of them again if `subset` is empty). For a VM:
// CPU of the whole process, and the run-queue wait of its vCPU threads.
// A thread that exited meanwhile is skipped; the process gone is kNotFound.
[[nodiscard]] Result<std::pair<SchedStat, SchedStat>> process_schedstat_split(
    std::uint32_t pid, const std::vector<std::uint32_t>& subset);

// What the agent reads of a VM process every tick, from one small file,
// /proc/<pid>/stat: CPU time of all its threads (user + system, at
// clock-tick resolution, 10 ms) and its resident set (field 24, the same
// count statm reports). kNotFound when the process is gone or a zombie.
struct ProcessStat {
  std::uint64_t cpu_ns = 0;
  std::uint64_t rss_bytes = 0;
};
[[nodiscard]] Result<ProcessStat> process_stat(std::uint32_t pid);

// /proc/<pid>/stat kept open: each read() is one pread() instead of open,
// read, read and close (the agent reads it for every VM every tick). The
// open file stays bound to that process: once it exits, reads fail with
// kNotFound even if its pid is reused.
class ProcessStatFile {
 public:
  ProcessStatFile() = default;
  explicit ProcessStatFile(std::uint32_t pid);
  ~ProcessStatFile();
  ProcessStatFile(ProcessStatFile&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  ProcessStatFile& operator=(ProcessStatFile&& o) noexcept;
  ProcessStatFile(const ProcessStatFile&) = delete;
  ProcessStatFile& operator=(const ProcessStatFile&) = delete;

  [[nodiscard]] Result<ProcessStat> read() const;

 private:
  int fd_ = -1;
};
// The parser, for tests: the text of /proc/<pid>/stat.
[[nodiscard]] Result<ProcessStat> parse_process_stat(std::string_view text);

}  // namespace vmtide::collectors
