// SPDX-License-Identifier: Apache-2.0
// The decision log file (decision_log.h).
#include "decision_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <variant>
#include <vector>

#include "vmtide/wire/codec.h"

namespace vmtide::decision_log {
namespace {

// Longest line worth parsing: from_json's default size limit.
constexpr std::size_t kMaxLine = wire::DecodeLimits{}.max_bytes;

Error errno_error(int err, const std::string& what) {
  const Errc code = err == ENOENT ? Errc::kNotFound : (err == EACCES || err == EPERM) ? Errc::kPermission : Errc::kIo;
  return make_error(code, what + ": " + std::strerror(err));
}

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

// Calls on_line(text, number) for each line of the file, without its '\n'.
// A line longer than kMaxLine is passed as nullopt text, its bytes
// discarded as they are read, so no line costs more than kMaxLine memory.
Status for_each_line(const std::filesystem::path& path,
                     const std::function<void(std::optional<std::string_view>, std::size_t)>& on_line) {
  std::unique_ptr<std::FILE, FileCloser> f(std::fopen(path.c_str(), "re"));
  if (!f) return errno_error(errno, "decision log " + path.string());
  std::string line;
  bool too_long = false;
  std::size_t number = 0;
  const auto emit = [&] {
    ++number;
    on_line(too_long ? std::nullopt : std::optional<std::string_view>(line), number);
    line.clear();
    too_long = false;
  };
  std::vector<char> buf(64 * 1024);
  for (;;) {
    const std::size_t n = std::fread(buf.data(), 1, buf.size(), f.get());
    std::size_t start = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if (buf[i] != '\n') continue;
      if (!too_long) line.append(buf.data() + start, i - start);
      if (line.size() > kMaxLine) too_long = true;
      emit();
      start = i + 1;
    }
    if (!too_long) line.append(buf.data() + start, n - start);
    if (line.size() > kMaxLine) {
      too_long = true;
      line.clear();
    }
    if (n < buf.size()) break;
  }
  if (std::ferror(f.get())) return errno_error(errno ? errno : EIO, "reading decision log " + path.string());
  if (!line.empty() || too_long) emit();  // a last line without '\n' (a writer that died mid-line)
  return {};
}

// Parses one line into stats and, if it is a decision, `out`.
bool parse_line(std::optional<std::string_view> text, std::size_t number, ScanStats& stats, wire::Message& out) {
  ++stats.lines;
  const auto malformed = [&](std::string why) {
    if (stats.malformed++ == 0) {
      stats.first_malformed = number;
      stats.first_error = std::move(why);
    }
    return false;
  };
  if (!text) return malformed("longer than " + std::to_string(kMaxLine) + " bytes");
  if (text->find_first_not_of(" \t\r") == std::string_view::npos) return false;  // blank
  auto m = wire::from_json(*text);
  if (!m) return malformed(m.error().message());
  if (m->kind() != wire::Kind::kDecision) {
    ++stats.other_kinds;
    return false;
  }
  out = std::move(*m);
  return true;
}

}  // namespace

std::string describe(const ScanStats& s) {
  std::string d = std::to_string(s.lines) + (s.lines == 1 ? " line" : " lines") + " read, " +
                  std::to_string(s.malformed) + " malformed";
  if (s.malformed > 0) d += " (line " + std::to_string(s.first_malformed) + ": " + s.first_error + ")";
  if (s.other_kinds > 0) d += ", " + std::to_string(s.other_kinds) + " not decisions";
  return d;
}

Status append(const std::filesystem::path& path, const wire::Message& m) {
  std::string line = wire::to_json(m);
  // Whatever is logged must read back, or explain could not show it.
  if (auto back = wire::from_json(line); !back) {
    return make_error(Errc::kInvalidArgument, "not logged, it would not read back: " + back.error().message());
  }
  line += '\n';
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) {
    const int err = errno;
    const auto dir = path.parent_path();
    std::error_code ec;
    if (err == ENOENT && !dir.empty() && !std::filesystem::is_directory(dir, ec)) {
      return make_error(Errc::kNotFound, "decision log directory " + dir.string() +
                                             " does not exist (create it, e.g. install -d -m 0750 " + dir.string() +
                                             ")");
    }
    return errno_error(err, "opening decision log " + path.string());
  }
  std::size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(fd, line.data() + done, line.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      return errno_error(err, "writing decision log " + path.string());
    }
    done += static_cast<std::size_t>(n);
  }
  if (::close(fd) != 0) return errno_error(errno, "closing decision log " + path.string());
  return {};
}

Result<FindResult> find(const std::filesystem::path& path, std::string_view id) {
  FindResult r;
  wire::Message m;
  Status st = for_each_line(path, [&](std::optional<std::string_view> text, std::size_t number) {
    if (!parse_line(text, number, r.stats, m)) return;
    const auto& d = std::get<wire::Decision>(m.body);
    if (d.id != id) return;
    ++r.matches;
    if (r.outcomes.size() < 64) r.outcomes.push_back(d.outcome);
    r.found = Record{std::move(m), number};
  });
  if (!st) return st.error();
  return r;
}

Result<LastResult> last(const std::filesystem::path& path, std::size_t n) {
  LastResult r;
  std::deque<Record> tail;
  wire::Message m;
  Status st = for_each_line(path, [&](std::optional<std::string_view> text, std::size_t number) {
    if (!parse_line(text, number, r.stats, m) || n == 0) return;
    if (tail.size() == n) tail.pop_front();
    tail.push_back(Record{std::move(m), number});
  });
  if (!st) return st.error();
  r.records.assign(std::make_move_iterator(tail.begin()), std::make_move_iterator(tail.end()));
  return r;
}

}  // namespace vmtide::decision_log
