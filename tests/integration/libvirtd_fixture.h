// SPDX-License-Identifier: Apache-2.0
// A private libvirtd for integration tests (tests/integration/libvirtd.sh):
// started in a mount namespace of its own, its state under one directory,
// reached through qemu+unix:///system?socket=DIR/run/libvirt-sock.
#pragma once

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <poll.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>

namespace vmtide::testsupport {

using namespace std::chrono_literals;

// Waits until `path` exists, using inotify on its directory (no sleeps).
bool wait_for_file(const std::string& path, std::chrono::milliseconds timeout) {
  const std::string dir = path.substr(0, path.rfind('/'));
  int fd = inotify_init1(IN_CLOEXEC);
  if (fd < 0) return false;
  if (inotify_add_watch(fd, dir.c_str(), IN_CREATE | IN_MOVED_TO) < 0) {  // the directory must exist
    close(fd);
    return false;
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool found = access(path.c_str(), F_OK) == 0;
  while (!found && std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (poll(&p, 1, static_cast<int>(std::max<long>(1, left.count()))) > 0) {
      char buf[4096];
      (void)!read(fd, buf, sizeof buf);
    }
    found = access(path.c_str(), F_OK) == 0;
  }
  close(fd);
  return found;
}

class Libvirtd {
 public:
  explicit Libvirtd(std::string dir) : dir_(std::move(dir)) {}
  ~Libvirtd() { stop(); }
  std::string socket() const { return dir_ + "/run/libvirt-sock"; }
  std::string uri() const { return "qemu+unix:///system?socket=" + socket(); }
  std::string log_path() const { return dir_ + "/libvirtd.log"; }

  bool start() {
    unlink(socket().c_str());
    mkdir((dir_ + "/run").c_str(), 0700);  // before the watch in wait_for_file
    pid_ = fork();
    if (pid_ == 0) {
      FILE* log = std::fopen(log_path().c_str(), "a");
      if (log != nullptr) dup2(fileno(log), 2);
      execl(VMTIDE_SOURCE_DIR "/tests/integration/libvirtd.sh", "libvirtd.sh", dir_.c_str(), nullptr);
      _exit(127);
    }
    if (pid_ <= 0 || !wait_for_file(socket(), 30s)) return false;
    // The socket file appears at bind(), a moment before libvirtd listens:
    // until a client can connect, it is not ready (no event for that).
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (virConnectPtr c = virConnectOpenReadOnly(uri().c_str())) {
        virConnectClose(c);
        return true;
      }
      usleep(50'000);
    }
    return false;
  }
  void stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  std::string log_tail() const {
    std::ifstream in(log_path());
    std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return all.size() > 2000 ? all.substr(all.size() - 2000) : all;
  }

 private:
  std::string dir_;
  pid_t pid_ = -1;
};

}  // namespace vmtide::testsupport
