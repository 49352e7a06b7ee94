// SPDX-License-Identifier: Apache-2.0
// Cross-language wire test over real TCP on 127.0.0.1: a Python publisher
// decoded by the C++ decoder, and C++ messages decoded by Python's msgpack
// (py_peer.py). Every wait is bounded; XPUB subscription frames replace sleeps.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "samples.h"
#include "vmtide/wire/codec.h"
#include "vmtide/wire/zmq_io.h"

extern char** environ;

namespace vmtide::wire {
namespace {

constexpr auto kTimeout = std::chrono::seconds(20);

std::string py_peer() { return std::string(VMTIDE_SOURCE_DIR) + "/tests/integration/wire/py_peer.py"; }

bool have_python() { return access(VMTIDE_PYTHON3, X_OK) == 0; }

// py_peer.py running under VMTIDE_PYTHON3 with its stdout on a pipe. The
// destructor kills it if the test ends (or fails) before it exited.
class PyPeer {
 public:
  explicit PyPeer(std::vector<std::string> args) {
    args.insert(args.begin(), {VMTIDE_PYTHON3, py_peer()});
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return;
    stdout_fd_ = fds[0];
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);  // dup2 clears O_CLOEXEC
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
    close(fds[1]);
  }
  ~PyPeer() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (stdout_fd_ >= 0) close(stdout_fd_);
  }
  PyPeer(const PyPeer&) = delete;
  PyPeer& operator=(const PyPeer&) = delete;

  bool started() const { return pid_ > 0; }
  int stdout_fd() const { return stdout_fd_; }

  // The next line of output (without '\n'), or nullopt on EOF or timeout.
  std::optional<std::string> read_line(std::chrono::milliseconds timeout = kTimeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      if (const auto nl = buf_.find('\n'); nl != std::string::npos) {
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return line;
      }
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      pollfd p{stdout_fd_, POLLIN, 0};
      if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) <= 0) return std::nullopt;
      char chunk[4096];
      const ssize_t n = read(stdout_fd_, chunk, sizeof(chunk));
      if (n <= 0) return std::nullopt;
      buf_.append(chunk, static_cast<std::size_t>(n));
    }
  }

  // Exit status once stdout reached EOF (the process is exiting), or -1 if
  // it did not close stdout in time or died of a signal.
  int wait_exit() {
    while (read_line()) {
    }
    pollfd p{stdout_fd_, POLLIN, 0};
    if (poll(&p, 1, 0) <= 0) return -1;  // timed out rather than EOF
    int status = 0;
    if (waitpid(pid_, &status, 0) != pid_) return -1;
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

 private:
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  std::string buf_;
};

TEST(WirePython, PythonPublishesCppDecodes) {
  if (!have_python()) GTEST_SKIP() << "no python3 at '" << VMTIDE_PYTHON3 << "'";
  PyPeer peer({"pub"});
  ASSERT_TRUE(peer.started()) << "cannot run " << VMTIDE_PYTHON3;
  const auto endpoint = peer.read_line();
  ASSERT_TRUE(endpoint) << "py_peer.py pub printed no endpoint within 20 s";
  if (endpoint->starts_with("skip: ")) GTEST_SKIP() << VMTIDE_PYTHON3 << ": " << endpoint->substr(6);
  ASSERT_TRUE(endpoint->starts_with("tcp://127.0.0.1:")) << *endpoint;

  zmq::context_t ctx;
  zmq::socket_t sub(ctx, zmq::socket_type::sub);
  sub.set(zmq::sockopt::linger, 0);
  ASSERT_TRUE(apply_limits(sub).ok());
  sub.set(zmq::sockopt::subscribe, "vmtide.v1.");
  sub.connect(*endpoint);

  zmq::pollitem_t item{sub.handle(), 0, ZMQ_POLLIN, 0};
  ASSERT_EQ(zmq::poll(&item, 1, kTimeout), 1) << "no message from the python publisher within 20 s";
  auto got = recv_message(sub, zmq::recv_flags::dontwait);
  ASSERT_TRUE(got) << got.error().message();
  ASSERT_TRUE(got->has_value());
  const Message& m = **got;

  // What python sent, as python's json.dumps printed it (without the
  // unknown key it added on the wire, which the decoder must ignore).
  const auto sent_json = peer.read_line();
  ASSERT_TRUE(sent_json) << "py_peer.py pub did not print what it sent";
  EXPECT_EQ(to_json(m), *sent_json);

  ASSERT_EQ(m.kind(), Kind::kVm);
  EXPECT_EQ(m.env.host, "pyhost");
  EXPECT_EQ(m.env.seq, 7u);
  const auto& vm = std::get<VmSample>(m.body);
  EXPECT_EQ(vm.pid, 31337u);
  ASSERT_EQ(vm.preempt.size(), 2u);
  EXPECT_EQ(vm.preempt[0].comm, "ffmpeg");
  ASSERT_TRUE(vm.dirty);
  EXPECT_EQ(vm.dirty->src, DirtySource::kQemu);
  ASSERT_EQ(vm.dirty->curve.size(), 3u);
  EXPECT_EQ(vm.dirty->curve[1], (DirtyPoint{500'000'000, 30'000}));
  ASSERT_TRUE(vm.psi);
  EXPECT_EQ(vm.psi->io_full_us, 10u);
  EXPECT_FALSE(vm.psi->cpu_full_us);
  EXPECT_EQ(peer.wait_exit(), 0);
}

TEST(WirePython, CppPublishesPythonDecodes) {
  if (!have_python()) GTEST_SKIP() << "no python3 at '" << VMTIDE_PYTHON3 << "'";
  zmq::context_t ctx;
  zmq::socket_t pub(ctx, zmq::socket_type::xpub);
  pub.set(zmq::sockopt::linger, 0);
  pub.bind("tcp://127.0.0.1:*");
  const std::string endpoint = pub.get(zmq::sockopt::last_endpoint);

  PyPeer peer({"sub", endpoint});
  ASSERT_TRUE(peer.started()) << "cannot run " << VMTIDE_PYTHON3;

  // Wait for the subscription, or for the script to print (a skip) or exit.
  zmq::pollitem_t items[] = {{pub.handle(), 0, ZMQ_POLLIN, 0}, {nullptr, peer.stdout_fd(), ZMQ_POLLIN, 0}};
  ASSERT_GT(zmq::poll(items, 2, kTimeout), 0) << "no subscription from py_peer.py sub within 20 s";
  if (!(items[0].revents & ZMQ_POLLIN)) {
    const auto line = peer.read_line();
    if (line && line->starts_with("skip: ")) GTEST_SKIP() << VMTIDE_PYTHON3 << ": " << line->substr(6);
    FAIL() << "py_peer.py sub ended before subscribing: " << line.value_or("(no output)");
  }
  zmq::message_t subscription;
  ASSERT_TRUE(pub.recv(subscription));
  EXPECT_EQ(subscription.to_string(), std::string("\x01vmtide.v1."));

  const std::vector<Message> sent = {samples::full_vm(), samples::full_host()};
  for (const auto& m : sent) {
    auto r = send_message(pub, m);
    ASSERT_TRUE(r && *r) << (r ? "would block" : r.error().message());
  }
  // py_peer.py re-encodes what it decoded with json.dumps in wire key order;
  // the samples use floats whose shortest form is the same in both languages.
  for (const auto& m : sent) {
    const auto line = peer.read_line();
    ASSERT_TRUE(line) << "py_peer.py sub printed nothing for " << kind_name(m.kind());
    EXPECT_EQ(*line, to_json(m));
  }
  EXPECT_EQ(peer.wait_exit(), 0);
}

}  // namespace
}  // namespace vmtide::wire
