// SPDX-License-Identifier: Apache-2.0
// The lab's QEMU processes and host-side telemetry (lab_qemu.h).
#include "lab_qemu.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <sstream>
#include <thread>

#include "qmp.h"

namespace vmtide::lab {
namespace {

std::string errno_text() { return std::strerror(errno); }

const char* qemu_binary() {
  const char* q = std::getenv("VMTIDE_QEMU");
  return q != nullptr && *q != '\0' ? q : "/usr/bin/qemu-system-x86_64";
}

std::string fmt_rate(double r) {
  char b[32];
  std::snprintf(b, sizeof b, "%.0f", r);
  return b;
}

}  // namespace

Result<Qemu> Qemu::start(const GuestSpec& g, const std::string& dir, const std::string& tag, bool incoming) {
  if (access(qemu_binary(), X_OK) != 0) return make_error(Errc::kNotFound, std::string(qemu_binary()) + " not found");
  Qemu q;
  q.qmp_ = dir + "/" + tag + ".qmp";
  q.console_ = dir + "/" + tag + ".console";
  q.log_ = dir + "/" + tag + ".log";
  unlink(q.qmp_.c_str());
  // clang-format off: one option and its value per pair
  std::vector<std::string> args = {
      qemu_binary(),
      "-accel",
      "tcg",
      "-m",
      std::to_string(g.mem_mib),
      "-smp",
      "1",
      "-nodefaults",
      "-display",
      "none",
      "-no-reboot",
      "-name",
      "vmtide-lab-" + tag + ",debug-threads=on",
      "-kernel",
      g.kernel,
      "-initrd",
      g.initrd,
      "-append",
      "console=ttyS0 quiet panic=-1 vmtide.ws_mib=" + std::to_string(g.ws_mib) + " vmtide.rate=" + fmt_rate(g.rate) +
          " vmtide.pattern=" + g.pattern + " vmtide.fill_mib=" + std::to_string(g.fill_mib),
      "-serial",
      "file:" + q.console_,
      "-qmp",
      "unix:" + q.qmp_ + ",server=on,wait=off",
  };
  // clang-format on
  if (incoming) {
    args.push_back("-incoming");
    args.push_back("defer");
  }
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) return make_error(Errc::kIo, "fork: " + errno_text());
  if (pid == 0) {
    // Never outlive the lab: a killed tool must not leave guests behind.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    const int log = open(q.log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (log >= 0) {
      dup2(log, 1);
      dup2(log, 2);
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  q.pid_ = pid;
  return q;
}

Qemu::Qemu(Qemu&& o) noexcept
    : pid_(o.pid_), qmp_(std::move(o.qmp_)), console_(std::move(o.console_)), log_(std::move(o.log_)) {
  o.pid_ = -1;
}

Qemu& Qemu::operator=(Qemu&& o) noexcept {
  if (this != &o) {
    kill();
    pid_ = o.pid_;
    o.pid_ = -1;
    qmp_ = std::move(o.qmp_);
    console_ = std::move(o.console_);
    log_ = std::move(o.log_);
  }
  return *this;
}

Qemu::~Qemu() { kill(); }

bool Qemu::alive() {
  if (pid_ <= 0) return false;
  if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
    pid_ = -1;
    return false;
  }
  return true;
}

void Qemu::kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);  // this QEMU only, by its pid
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

namespace {

// Waits (inotify on its directory) until `path` exists.
Status await_path(const std::string& path, Clock::time_point deadline, Qemu& q) {
  const std::size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash);
  const int fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (fd < 0) return make_error(Errc::kIo, "inotify_init1: " + errno_text());
  if (inotify_add_watch(fd, dir.c_str(), IN_CREATE | IN_MOVED_TO) < 0) {
    close(fd);
    return make_error(Errc::kIo, "inotify_add_watch " + dir + ": " + errno_text());
  }
  Status st;
  while (access(path.c_str(), F_OK) != 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      st = make_error(Errc::kIo, path + " did not appear in time");
      break;
    }
    if (!q.alive()) {
      st = make_error(Errc::kIo, "QEMU exited before creating " + path);
      break;
    }
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(std::min<long long>(left, 500))) > 0) {
      char buf[4096];
      while (read(fd, buf, sizeof buf) > 0) {
      }
    }
  }
  close(fd);
  return st;
}

// Connects to the monitor of a QEMU that may have just started: awaits its
// socket file, then connects (QEMU binds and listens in one go, so a
// refusal after the file exists is a matter of microseconds).
Result<discovery::QmpClient> connect_when_up(const std::string& path, Qemu& q, Clock::time_point deadline) {
  if (Status st = await_path(path, deadline, q); !st) return st.error();
  while (true) {
    auto c = discovery::QmpClient::connect(path, deadline);
    if (c || Clock::now() >= deadline || c.error().code != Errc::kIo || !q.alive()) return c;
    std::this_thread::yield();
  }
}

}  // namespace

Result<std::string> Qemu::listen_incoming(Clock::time_point deadline) {
  auto c = connect_when_up(qmp_, *this, deadline);
  if (!c) return std::move(c).error();
  auto r = c->execute("migrate-incoming", R"({"uri":"tcp:127.0.0.1:0"})", deadline);
  if (!r) return std::move(r).error();
  auto q = c->execute("query-migrate", "", deadline);
  if (!q) return std::move(q).error();
  const auto* addrs = q->find("socket-address");
  if (addrs == nullptr || addrs->as_array() == nullptr || addrs->as_array()->empty()) {
    return make_error(Errc::kIo, "incoming QEMU reports no socket-address");
  }
  const auto& a = addrs->as_array()->front();
  const auto* port = a.find("port");
  if (port == nullptr || port->as_string() == nullptr) return make_error(Errc::kIo, "incoming QEMU: no port");
  return "tcp:127.0.0.1:" + *port->as_string();
}

Result<std::string> Qemu::run_state(Clock::time_point deadline) {
  auto c = connect_when_up(qmp_, *this, deadline);
  if (!c) return std::move(c).error();
  auto r = c->execute("query-status", "", deadline);
  if (!r) return std::move(r).error();
  const auto* s = r->find("status");
  if (s == nullptr || s->as_string() == nullptr) return make_error(Errc::kIo, "query-status: no status");
  return *s->as_string();
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

int count_in_file(const std::string& path, const std::string& needle) {
  const std::string s = read_file(path);
  int n = 0;
  for (std::size_t at = s.find(needle); at != std::string::npos; at = s.find(needle, at + needle.size())) ++n;
  return n;
}

std::optional<double> last_dirtier_rate(const std::string& console) {
  const std::string s = read_file(console);
  const std::size_t at = s.rfind(" rate=");
  const std::size_t line = s.rfind("dirtier: t=");
  if (at == std::string::npos || line == std::string::npos || at < line) return std::nullopt;
  return std::strtod(s.c_str() + at + 6, nullptr);
}

Result<int> await_console(const std::string& path, const std::string& needle, int count, Clock::time_point deadline,
                          Qemu* q) {
  const std::size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash);
  const int fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (fd < 0) return make_error(Errc::kIo, "inotify_init1: " + errno_text());
  // The directory, so a console file QEMU has not created yet is seen too.
  if (inotify_add_watch(fd, dir.c_str(), IN_MODIFY | IN_CREATE | IN_CLOSE_WRITE) < 0) {
    close(fd);
    return make_error(Errc::kIo, "inotify_add_watch " + dir + ": " + errno_text());
  }
  const int base = count_in_file(path, needle);
  int n = base;
  while (n - base < count) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) break;
    pollfd p{fd, POLLIN, 0};
    // Woken by the console's writes; at most every 500 ms to notice a QEMU
    // that died without writing.
    const int r = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 500)));
    if (r > 0) {
      char buf[4096];
      while (read(fd, buf, sizeof buf) > 0) {
      }
    }
    n = count_in_file(path, needle);
    if (q != nullptr && !q->alive()) break;
  }
  close(fd);
  return n - base;
}

Result<double> nonzero_fraction(pid_t pid, std::uint64_t ram_bytes, int samples) {
  std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
  if (!maps) return make_error(Errc::kNotFound, "no /proc/" + std::to_string(pid) + "/maps");
  std::uint64_t best_start = 0, best_len = 0;
  for (std::string line; std::getline(maps, line);) {
    std::istringstream ls(line);
    std::string range, perms, off, dev, inode, name;
    ls >> range >> perms >> off >> dev >> inode;
    std::getline(ls, name);
    if (perms != "rw-p" || inode != "0") continue;
    const std::size_t dash = range.find('-');
    const std::uint64_t a = std::stoull(range.substr(0, dash), nullptr, 16);
    const std::uint64_t b = std::stoull(range.substr(dash + 1), nullptr, 16);
    const std::uint64_t len = b - a;
    // Guest RAM: the anonymous mapping of exactly its size (the smallest
    // one at least that large otherwise).
    if (len >= ram_bytes && (best_len == 0 || len < best_len)) {
      best_start = a;
      best_len = len;
    }
  }
  if (best_len == 0) return make_error(Errc::kNotFound, "no guest-RAM mapping in pid " + std::to_string(pid));
  constexpr std::size_t kPage = 4096, kBatch = 256;
  const std::uint64_t pages = ram_bytes / kPage;
  std::mt19937_64 rng(0x5eed);
  std::uniform_int_distribution<std::uint64_t> pick(0, pages - 1);
  std::vector<unsigned char> buf(kBatch * kPage);
  int nonzero = 0, read_pages = 0;
  for (int done = 0; done < samples;) {
    const int n = std::min<int>(kBatch, samples - done);
    std::vector<iovec> local(n), remote(n);
    for (int i = 0; i < n; ++i) {
      local[i] = {buf.data() + i * kPage, kPage};
      remote[i] = {reinterpret_cast<void*>(best_start + pick(rng) * kPage), kPage};
    }
    const ssize_t got = process_vm_readv(pid, local.data(), n, remote.data(), n, 0);
    if (got < 0)
      return make_error(Errc::kPermission, "process_vm_readv pid " + std::to_string(pid) + ": " + errno_text());
    const int full = static_cast<int>(got / static_cast<ssize_t>(kPage));
    for (int i = 0; i < full; ++i) {
      const unsigned char* p = buf.data() + i * kPage;
      if (std::any_of(p, p + kPage, [](unsigned char c) { return c != 0; })) ++nonzero;
    }
    read_pages += full;
    done += n;
  }
  if (read_pages == 0) return make_error(Errc::kIo, "read no guest page of pid " + std::to_string(pid));
  return static_cast<double>(nonzero) / read_pages;
}

Result<VcpuTime> vcpu_time(pid_t pid) {
  const std::string task = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = opendir(task.c_str());
  if (d == nullptr) return make_error(Errc::kNotFound, "no " + task);
  VcpuTime t;
  int found = 0;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    const std::string comm = read_file(task + "/" + e->d_name + "/comm");
    if (comm.rfind("CPU ", 0) != 0 ||
        (comm.find("/TCG") == std::string::npos && comm.find("/KVM") == std::string::npos)) {
      continue;
    }
    // schedstat: time run (ns), time waited runnable (ns), timeslices.
    std::istringstream ss(read_file(task + "/" + e->d_name + "/schedstat"));
    double run_ns = 0, wait_ns = 0;
    if (!(ss >> run_ns >> wait_ns)) continue;
    t.run_s += run_ns / 1e9;
    t.wait_s += wait_ns / 1e9;
    ++found;
  }
  closedir(d);
  if (found == 0) return make_error(Errc::kNotFound, "no vCPU thread in pid " + std::to_string(pid));
  return t;
}

Result<double> loopback_bytes_per_s(std::uint64_t bytes) {
  const int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (ls < 0) return make_error(Errc::kIo, "socket: " + errno_text());
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (bind(ls, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(ls, 1) != 0 ||
      getsockname(ls, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    close(ls);
    return make_error(Errc::kIo, "loopback listen: " + errno_text());
  }
  const int cs = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (cs < 0 || connect(cs, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    if (cs >= 0) close(cs);
    close(ls);
    return make_error(Errc::kIo, "loopback connect: " + errno_text());
  }
  const int ss = accept(ls, nullptr, nullptr);
  close(ls);
  if (ss < 0) {
    close(cs);
    return make_error(Errc::kIo, "loopback accept: " + errno_text());
  }
  const auto t0 = Clock::now();
  std::thread writer([cs, bytes] {
    std::vector<char> chunk(1 << 20, 1);
    for (std::uint64_t sent = 0; sent < bytes;) {
      const ssize_t n = send(cs, chunk.data(), std::min<std::uint64_t>(chunk.size(), bytes - sent), MSG_NOSIGNAL);
      if (n <= 0) break;
      sent += static_cast<std::uint64_t>(n);
    }
    shutdown(cs, SHUT_WR);
  });
  std::vector<char> buf(1 << 20);
  std::uint64_t got = 0;
  while (true) {
    const ssize_t n = recv(ss, buf.data(), buf.size(), 0);
    if (n <= 0) break;
    got += static_cast<std::uint64_t>(n);
  }
  writer.join();
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  close(cs);
  close(ss);
  if (got < bytes || s <= 0) return make_error(Errc::kIo, "loopback transfer fell short");
  return static_cast<double>(got) / s;
}

}  // namespace vmtide::lab
