// SPDX-License-Identifier: Apache-2.0
// A stuck subscriber never stalls the agent (docs/security.md): the real
// vmtide-agent with a small send high-water mark, two subscribers that stop
// reading (a ZeroMQ SUB that never calls recv, and a raw TCP socket that
// completes the ZMTP handshake and then never reads), and a healthy SUB.
// The agent keeps ticking on time, the healthy subscriber loses nothing,
// and the overflow shows in /metrics.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <regex>
#include <string>
#include <variant>
#include <vector>

#include <zmq.hpp>

#include "agent_process.h"
#include "metrics_scrape.h"
#include "vmtide/wire/zmq_io.h"

namespace vmtide {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
using testsupport::AgentProcess;
using testsupport::metric_value;
using testsupport::scrape;

const std::string kAgent = VMTIDE_BINARY_DIR "/bin/vmtide-agent";
constexpr double kInterval = 0.05;

// A ZMTP 3.0 subscriber written by hand: it sends its greeting, READY
// (Socket-Type SUB) and a subscription to everything, then never reads,
// with a small receive buffer, so the agent's TCP send queue and then its
// ZeroMQ queue for it fill up: a peer stuck below ZeroMQ. It does send a
// PING now and then: a peer that sends nothing is disconnected by the
// agent's ZMTP heartbeat (3 s) before its queue can fill, which protects
// the agent from plainly dead peers but would not test the queue.
class StuckTcpSubscriber {
 public:
  explicit StuckTcpSubscriber(const std::string& endpoint) {
    static const std::regex re("tcp://([0-9.]+):([0-9]+)");
    std::smatch m;
    if (!std::regex_match(endpoint, m, re)) return;
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int small = 4096;
    setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);  // before connect: it sets the window
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(std::stoi(m[2].str())));
    inet_pton(AF_INET, m[1].str().c_str(), &a.sin_addr);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return;
    std::string out;
    // Greeting: signature, version 3.0, mechanism NULL, as-server 0, filler.
    out += '\xff';
    out += std::string(8, '\0');
    out += '\x7f';
    out += '\x03';
    out += '\x00';
    out += std::string("NULL") + std::string(16, '\0');
    out += std::string(32, '\0');
    // READY command with Socket-Type = SUB (short command frame).
    std::string ready = std::string("\x05READY") + '\x0b' + "Socket-Type" + std::string("\0\0\0\x03", 4) + "SUB";
    out += '\x04';
    out += static_cast<char>(ready.size());
    out += ready;
    if (write(fd_, out.data(), out.size()) != static_cast<ssize_t>(out.size())) return;
    // The agent's greeting and READY (a short command: flags, size, body)
    // end the handshake; a message sent before that would be taken for a
    // handshake command.
    const timeval tv{10, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string in;
    while (in.size() < 66 || in.size() < 66 + static_cast<unsigned char>(in[65])) {
      char c = 0;
      if (read(fd_, &c, 1) != 1) return;
      in += c;
    }
    if (in.compare(66, 6, "\x05READY") != 0) return;
    // A ZMTP 3.0 subscription: a one-frame message "\x01" + prefix (empty).
    const char sub[] = {'\x00', '\x01', '\x01'};
    sent_ok_ = write(fd_, sub, sizeof sub) == static_cast<ssize_t>(sizeof sub);
  }
  ~StuckTcpSubscriber() {
    if (fd_ >= 0) close(fd_);
  }
  StuckTcpSubscriber(const StuckTcpSubscriber&) = delete;
  StuckTcpSubscriber& operator=(const StuckTcpSubscriber&) = delete;
  bool ok() const { return sent_ok_; }
  // A ZMTP PING command (TTL 0, no context); false once the agent has
  // closed the connection.
  bool ping() {
    static const char kPing[] = {'\x04', '\x07', '\x04', 'P', 'I', 'N', 'G', '\0', '\0'};
    return send(fd_, kPing, sizeof kPing, MSG_NOSIGNAL) == static_cast<ssize_t>(sizeof kPing);
  }
  // Bytes the kernel holds for us unread: proof the agent did send to it.
  int unread_bytes() const {
    int n = 0;
    return ioctl(fd_, FIONREAD, &n) == 0 ? n : 0;
  }

 private:
  int fd_ = -1;
  bool sent_ok_ = false;
};

// Sleeping children the agent samples as VMs: more messages per tick, so
// the stuck peer's kernel buffers (over a MiB on loopback) fill sooner.
class Sleepers {
 public:
  explicit Sleepers(int n) {
    for (int i = 0; i < n; ++i) {
      const pid_t pid = fork();
      if (pid < 0) std::abort();
      if (pid == 0) {
        for (;;) pause();
      }
      pids.push_back(pid);
    }
  }
  ~Sleepers() {
    for (pid_t p : pids) testsupport::kill_and_reap(p);
  }
  std::vector<pid_t> pids;
};

TEST(SlowSubscriber, StuckSubscribersDoNotStallTheAgent) {
  Sleepers vms(40);
  // --sndhwm 1000: above any tick's burst (other VMs on this machine may
  // add to the 40), so only a stuck subscriber's queue can fill.
  std::vector<std::string> args = {
      kAgent,        "--endpoint", "tcp://127.0.0.1:*",       "--discovery", "procfs", "--no-bpf",          "--metrics",
      "127.0.0.1:0", "--interval", std::to_string(kInterval), "--sndhwm",    "1000",   "--wait-subscriber", "30"};
  for (pid_t p : vms.pids) args.insert(args.end(), {"--pid", std::to_string(p)});
  AgentProcess agent(args);
  const auto ep = agent.endpoint();
  ASSERT_TRUE(ep) << "agent never reported its endpoint; log:\n" << agent.log;
  // The metrics line comes before the endpoint's, so it is in the log read.
  std::smatch mp;
  ASSERT_TRUE(std::regex_search(agent.log, mp, std::regex("metrics on http://127.0.0.1:([0-9]+)/metrics")))
      << agent.log;
  const int metrics_port = std::stoi(mp[1].str());
  const std::string host_label = "host=\"";

  zmq::context_t ctx;
  // The healthy subscriber joins first (the agent waits for it).
  zmq::socket_t healthy(ctx, zmq::socket_type::sub);
  healthy.set(zmq::sockopt::linger, 0);
  healthy.set(zmq::sockopt::subscribe, "vmtide.v1.");
  ASSERT_TRUE(wire::apply_limits(healthy));
  healthy.connect(*ep);
  // A SUB that never reads, with the smallest queues it can have.
  zmq::socket_t stuck(ctx, zmq::socket_type::sub);
  stuck.set(zmq::sockopt::linger, 0);
  stuck.set(zmq::sockopt::rcvhwm, 1);
  stuck.set(zmq::sockopt::rcvbuf, 4096);
  stuck.set(zmq::sockopt::subscribe, "");
  stuck.connect(*ep);
  StuckTcpSubscriber raw(*ep);
  ASSERT_TRUE(raw.ok()) << "could not connect the raw ZMTP subscriber to " << *ep;

  // Read the healthy stream until the agent reports an overflow, then for
  // three more seconds; heartbeats must keep arriving on time and in order.
  std::optional<std::uint64_t> last_seq;
  std::uint64_t gaps = 0, hbs = 0;
  double worst_hb_gap_s = 0;
  std::optional<Clock::time_point> last_hb;
  double dropped = 0, ticks_at_drop = 0, ticks_after = 0, dropped_in_hb = 0;
  // The pace before any overflow, to compare with the pace after (other
  // load on the machine may slow the agent's ticks; the stuck peers must not).
  const auto start = Clock::now();
  std::optional<double> ticks_at_start;
  double worst_hb_gap_before_s = 0;
  std::optional<Clock::time_point> dropped_at;
  Clock::time_point next_scrape = Clock::now();
  Clock::time_point next_ping = Clock::now();
  bool raw_connected = true;
  const auto deadline = Clock::now() + 90s;
  while (Clock::now() < deadline) {
    zmq::pollitem_t item{healthy.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, 100ms);
    for (;;) {
      auto m = wire::recv_message(healthy, zmq::recv_flags::dontwait);
      ASSERT_TRUE(m) << m.error().message();
      if (!m->has_value()) break;
      const wire::Message& msg = **m;
      if (last_seq && msg.env.seq != *last_seq + 1) gaps += msg.env.seq - *last_seq - 1;
      last_seq = msg.env.seq;
      if (const auto* hb = std::get_if<wire::Heartbeat>(&msg.body)) {
        const auto now = Clock::now();
        if (last_hb) worst_hb_gap_s = std::max(worst_hb_gap_s, std::chrono::duration<double>(now - *last_hb).count());
        last_hb = now;
        ++hbs;
        dropped_in_hb = static_cast<double>(hb->dropped);
      }
    }
    if (Clock::now() >= next_ping) {
      next_ping = Clock::now() + 1s;
      raw_connected = raw_connected && raw.ping();
    }
    if (Clock::now() >= next_scrape) {
      next_scrape = Clock::now() + 500ms;
      const std::string text = scrape(metrics_port);
      const double d = metric_value(text, "vmtide_agent_messages_dropped", host_label).value_or(0);
      const double t = metric_value(text, "vmtide_agent_ticks_total", host_label).value_or(0);
      if (!ticks_at_start) ticks_at_start = t;
      if (d > 0 && !dropped_at) {
        dropped_at = Clock::now();
        ticks_at_drop = t;
        worst_hb_gap_before_s = worst_hb_gap_s;
        worst_hb_gap_s = 0;
      }
      dropped = d;
      ticks_after = t;
      if (dropped_at && Clock::now() - *dropped_at >= 3s) break;
    }
  }

  ASSERT_TRUE(dropped_at) << "the agent never counted an overflow in 90 s (raw subscriber holds " << raw.unread_bytes()
                          << " unread bytes, " << (raw_connected ? "connected" : "disconnected") << ")";
  EXPECT_GE(dropped, 1);
  EXPECT_GE(dropped_in_hb, 1) << "the heartbeat carries the same counter";
  const double before_s = std::chrono::duration<double>(*dropped_at - start).count();
  const double pace_before = (ticks_at_drop - ticks_at_start.value_or(0)) / before_s;
  const double pace_after = (ticks_after - ticks_at_drop) / 3.0;
  EXPECT_GE(pace_after, pace_before / 2) << "ticks per second: " << pace_before << " before the overflow, "
                                         << pace_after << " after";
  EXPECT_GT(pace_after, 0) << "the agent stopped ticking";
  EXPECT_GT(hbs, 10u);
  EXPECT_LT(worst_hb_gap_s, std::max(1.0, 3 * worst_hb_gap_before_s))
      << "heartbeats to the healthy subscriber stalled after the overflow (worst gap before: " << worst_hb_gap_before_s
      << " s)";
  EXPECT_EQ(gaps, 0u) << "the healthy subscriber lost messages because of the stuck ones";
  EXPECT_GT(raw.unread_bytes(), 0) << "the raw subscriber was never sent anything";
  EXPECT_TRUE(raw_connected) << "the agent disconnected the raw subscriber: its queue was not what overflowed";
}

}  // namespace
}  // namespace vmtide
