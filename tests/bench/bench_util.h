// SPDX-License-Identifier: Apache-2.0
// The benchmark convention (DESIGN.md "Benchmarks"): progress on stderr, and
// as the last line on stdout one JSON object {"bench", "metrics", "env"}.
#pragma once

#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "vmtide/version.h"

namespace vmtide::bench {

// The commit the bench ran at, asked of git when it runs: VMTIDE_GIT is
// the revision of the last build, which need not be the tree a bench run
// is started from (a table once said a765f5c for a run at f581ba5).
inline std::string source_revision() {
#ifdef VMTIDE_BENCH_GIT_DIR
  const std::string cmd = "git -C '" VMTIDE_BENCH_GIT_DIR "' describe --always --dirty 2>/dev/null";
  if (FILE* p = popen(cmd.c_str(), "r")) {
    char buf[128];
    std::string out = std::fgets(buf, sizeof buf, p) ? buf : "";
    pclose(p);
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
    if (!out.empty()) return out;
  }
#endif
  return VMTIDE_GIT;
}

inline double median(std::vector<double> v) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

inline std::string json_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      o += buf;
      continue;
    }
    o += c;
  }
  return o;
}

// Collects metrics (numbers) and notes (strings, e.g. why a metric is absent).
class Report {
 public:
  explicit Report(std::string name) : name_(std::move(name)) {}
  void metric(const std::string& key, double v) { metrics_[key] = v; }
  void note(const std::string& key, const std::string& v) { notes_[key] = v; }
  // A top-level member beside "metrics" holding JSON text as is (e.g. the
  // per-run results a plot is made from).
  void raw(const std::string& key, std::string json_text) { raw_[key] = std::move(json_text); }

  // Prints the JSON line on stdout.
  void print() const {
    utsname u{};
    uname(&u);
    std::string out = "{\"bench\":\"" + json_escape(name_) + "\",\"metrics\":{";
    bool first = true;
    for (const auto& [k, v] : metrics_) {
      char num[64];
      if (std::isfinite(v)) {
        std::snprintf(num, sizeof num, "%.6g", v);
      } else {
        std::snprintf(num, sizeof num, "null");
      }
      out += (first ? "\"" : ",\"") + json_escape(k) + "\":" + num;
      first = false;
    }
    out += "},\"notes\":{";
    first = true;
    for (const auto& [k, v] : notes_) {
      out += (first ? "\"" : ",\"") + json_escape(k) + "\":\"" + json_escape(v) + "\"";
      first = false;
    }
    out += "}";
    for (const auto& [k, v] : raw_) out += ",\"" + json_escape(k) + "\":" + v;
    out += ",\"env\":{\"kernel\":\"" + json_escape(u.release) +
           "\",\"cpus\":" + std::to_string(sysconf(_SC_NPROCESSORS_ONLN)) + ",\"git\":\"" + json_escape(source_revision()) +
           "\"}}";
    std::printf("%s\n", out.c_str());
    std::fflush(stdout);
  }

 private:
  std::string name_;
  std::map<std::string, double> metrics_;
  std::map<std::string, std::string> notes_;
  std::map<std::string, std::string> raw_;
};

// CPU time (utime + stime, /proc/PID/stat) of a process, in seconds.
inline double proc_cpu_seconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto close = s.rfind(')');  // the command may hold spaces and parentheses
  if (close == std::string::npos) return 0;
  std::istringstream rest(s.substr(close + 2));
  std::string f;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> f; ++i) {
    if (i == 14) utime = std::stoull(f);
    if (i == 15) stime = std::stoull(f);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// A kB line of /proc/PID/status ("VmHWM", "VmRSS"), in MiB; NAN if absent.
inline double proc_status_mib(pid_t pid, const std::string& key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) == 0) return std::strtod(line.c_str() + key.size() + 1, nullptr) / 1024.0;
  }
  return NAN;
}

// A progress line on stderr, printf-checked.
[[gnu::format(printf, 1, 2)]] inline void progress(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::vfprintf(stderr, fmt, ap);
  va_end(ap);
  std::fputc('\n', stderr);
}

}  // namespace vmtide::bench
