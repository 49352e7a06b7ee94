// SPDX-License-Identifier: Apache-2.0
// A workload in a child process, driven over pipes: it prepares (maps
// memory, opens files), reports ready, runs on "go", reports done, and
// exits when the test lets go of it. The BPF tests track its pid.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <functional>

namespace vmtide::testsupport {

// A child that prepares (maps and pre-faults its memory), reports ready,
// runs its workload on "go", reports done, and waits to be told to exit.
class ChildWorkload {
 public:
  ChildWorkload(const std::function<void*()>& prepare, const std::function<void(void*)>& work) {
    int to[2], from[2];
    if (pipe(to) != 0 || pipe(from) != 0) std::abort();
    pid_ = fork();
    if (pid_ < 0) std::abort();
    if (pid_ == 0) {
      close(to[1]);
      close(from[0]);
      void* mem = prepare();
      char b = 'r';
      if (write(from[1], &b, 1) != 1 || read(to[0], &b, 1) != 1) _exit(1);
      if (b == 'g') {
        work(mem);
        b = 'd';
        if (write(from[1], &b, 1) != 1) _exit(1);
        (void)!read(to[0], &b, 1);
      }
      _exit(0);
    }
    close(to[0]);
    close(from[1]);
    to_ = to[1];
    from_ = from[0];
    char b;
    ready_ = read(from_, &b, 1) == 1 && b == 'r';
  }
  // Owns the child and its pipes: never copied (returning one by value is
  // guaranteed copy elision).
  ChildWorkload(const ChildWorkload&) = delete;
  ChildWorkload& operator=(const ChildWorkload&) = delete;
  ~ChildWorkload() {
    close(to_);  // EOF: the child exits
    close(from_);
    if (pid_ > 0) waitpid(pid_, nullptr, 0);
  }
  bool ready() const { return ready_; }
  std::uint32_t pid() const { return static_cast<std::uint32_t>(pid_); }
  bool run() {
    char b = 'g';
    return write(to_, &b, 1) == 1 && read(from_, &b, 1) == 1 && b == 'd';
  }

 private:
  pid_t pid_ = -1;
  int to_ = -1, from_ = -1;
  bool ready_ = false;
};

}  // namespace vmtide::testsupport
