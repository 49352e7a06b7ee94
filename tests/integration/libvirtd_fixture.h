// SPDX-License-Identifier: Apache-2.0
// Private libvirt daemons for integration tests: one libvirtd
// (tests/integration/libvirtd.sh) in a mount namespace of its own, its state
// under one directory, reached through
// qemu+unix:///system?socket=DIR/run/libvirt-sock; or N lab hosts (lab/hosts,
// docs/lab.md), each a libvirtd in network, mount and UTS namespaces of its
// own, reached over TCP, between which VMs really migrate.
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
#include <optional>
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

// The lab of lab/hosts under its own id (so a developer's lab 0 is left
// alone): up() brings N hosts up, the destructor takes them all down.
class LabHosts {
 public:
  explicit LabHosts(int id, std::string log_path) : id_(id), log_path_(std::move(log_path)) {}
  ~LabHosts() { down(); }
  LabHosts(const LabHosts&) = delete;
  LabHosts& operator=(const LabHosts&) = delete;

  // Takes down what a crashed earlier run may have left, then brings up n.
  bool up(int n) {
    (void)run("down");
    up_ = true;
    return run("up " + std::to_string(n));
  }
  void down() {
    if (up_) (void)run("down");
    up_ = false;
  }
  // The controller's URI of host i (qemu+tcp://10.77.ID.(10+i)/system).
  std::string uri(int i) const {
    return "qemu+tcp://10.77." + std::to_string(id_) + "." + std::to_string(10 + i) + "/system";
  }
  std::string state_dir() const { return "/run/vmtide-lab/" + std::to_string(id_); }
  // The QEMU of domain `name` on host i, from that host's libvirt pidfile.
  std::optional<pid_t> qemu_pid(int i, const std::string& name) const {
    std::ifstream in(state_dir() + "/lab" + std::to_string(i) + "/run/libvirt/qemu/" + name + ".pid");
    long pid = 0;
    if (!(in >> pid) || pid <= 1) return std::nullopt;
    return static_cast<pid_t>(pid);
  }
  // Whether pid runs in host i's network namespace (what a pidfile names
  // could be a recycled pid: never signal one that is not the lab's).
  bool in_host(pid_t pid, int i) const {
    struct stat a = {};
    struct stat b = {};
    const std::string ns = "/run/netns/vtlab" + std::to_string(id_) + "-lab" + std::to_string(i);
    return stat(("/proc/" + std::to_string(pid) + "/ns/net").c_str(), &a) == 0 && stat(ns.c_str(), &b) == 0 &&
           a.st_ino == b.st_ino && a.st_dev == b.st_dev;
  }
  std::string log_tail() const {
    std::ifstream in(log_path_);
    std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return all.size() > 3000 ? all.substr(all.size() - 3000) : all;
  }

 private:
  bool run(const std::string& args) const {
    const std::string cmd = std::string(VMTIDE_SOURCE_DIR "/lab/hosts --id ") + std::to_string(id_) + " " + args +
                            " >>'" + log_path_ + "' 2>&1";
    return std::system(cmd.c_str()) == 0;
  }
  int id_;
  std::string log_path_;
  bool up_ = false;
};

}  // namespace vmtide::testsupport
