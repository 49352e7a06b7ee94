// SPDX-License-Identifier: Apache-2.0
// The real vmtide-agent (or vmtide-controller) binary as a child of a test: its log (stderr) on a
// pipe, the endpoint it bound read from that log, and a kill that never
// signals pid 0 or -1.
#pragma once

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <regex>
#include <string>
#include <vector>

namespace vmtide::testsupport {

// Never signal pid 0 or -1 (the process group, or everything).
inline void kill_and_reap(pid_t pid) {
  if (pid <= 0) return;
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
}

class AgentProcess {
 public:
  explicit AgentProcess(const std::vector<std::string>& args) {
    int fds[2];
    if (pipe(fds) != 0) std::abort();
    pid = fork();
    if (pid < 0) std::abort();
    if (pid == 0) {
      dup2(fds[1], 2);
      close(fds[0]);
      close(fds[1]);
      std::vector<char*> argv;
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(fds[1]);
    fd_ = fds[0];
  }
  AgentProcess(const AgentProcess&) = delete;
  AgentProcess& operator=(const AgentProcess&) = delete;
  ~AgentProcess() {
    kill9();
    if (fd_ >= 0) close(fd_);
  }

  // Reads the log until the line naming the bound endpoint.
  std::optional<std::string> endpoint() {
    static const std::regex re("publishing on (tcp://[0-9.]+:[0-9]+)");
    auto m = wait_for(re);
    if (!m) return std::nullopt;
    return (*m)[1];
  }
  // Reads the log until a line matches `re`; the match and its groups, or
  // nullopt when the process closed its stderr (exited) first or `timeout`
  // passed (the log then says so, for the test's failure message).
  std::optional<std::vector<std::string>> wait_for(const std::regex& re,
                                                   std::chrono::milliseconds timeout = std::chrono::minutes{3}) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      for (std::size_t nl; (nl = pending_.find('\n')) != std::string::npos;) {
        const std::string line = pending_.substr(0, nl + 1);
        pending_.erase(0, nl + 1);
        log += line;
        std::smatch m;
        if (std::regex_search(line, m, re)) {
          std::vector<std::string> groups;
          for (const auto& g : m) groups.push_back(g.str());
          return groups;
        }
      }
      if (fd_ < 0) return std::nullopt;
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        log += "[test: no matching line within " + std::to_string(timeout.count() / 1000) + " s]\n";
        return std::nullopt;
      }
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), 1000))) <= 0) continue;
      char buf[4096];
      const ssize_t n = read(fd_, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        // Closed: what is left is a last line without its newline.
        close(fd_);
        fd_ = -1;
        if (!pending_.empty()) pending_ += '\n';
        continue;
      }
      pending_.append(buf, static_cast<std::size_t>(n));
    }
  }
  void kill9() {
    kill_and_reap(pid);
    pid = -1;
  }
  // Waits for the exit; the status as a shell would report it.
  int wait_exit() {
    int status = 0;
    waitpid(pid, &status, 0);
    pid = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  pid_t pid = -1;
  std::string log;  // what endpoint() has read so far

 private:
  int fd_ = -1;
  std::string pending_;  // read from the pipe, not yet a whole line
};

}  // namespace vmtide::testsupport
