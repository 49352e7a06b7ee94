// SPDX-License-Identifier: Apache-2.0
// CURVE on the real binaries over 127.0.0.1 (docs/security.md): `vmtide
// keygen` writes a private .key and a public .pub and never overwrites by
// accident; the agent refuses a secret key others can read; with CURVE on,
// only subscribers holding the agent's public key receive anything, and
// `vmtide tap --server-key` prints the stream; with an allow-list, only
// listed client keys do.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include <zmq.h>
#include <zmq.hpp>

#include "agent_process.h"
#include "control_client.h"
#include "metrics_scrape.h"
#include "vmtide/wire/curve.h"
#include "vmtide/wire/zmq_io.h"

namespace vmtide {
namespace {

using Clock = std::chrono::steady_clock;
using testsupport::AgentProcess;

const std::string kAgent = VMTIDE_BINARY_DIR "/bin/vmtide-agent";
const std::string kCli = VMTIDE_BINARY_DIR "/bin/vmtide";

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/vmtide-curve-it.XXXXXX";
    if (mkdtemp(tmpl) == nullptr) std::abort();
    path_ = tmpl;
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

mode_t mode_of(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

struct Ran {
  int status = -1;
  std::string out, err;
};

// Runs a binary to completion with stdout and stderr in files under `dir`
// (no pipes to fill up); the status as a shell would report it.
Ran run(const std::vector<std::string>& args, const TempDir& dir) {
  static int n = 0;
  const std::string out = dir / ("out." + std::to_string(n));
  const std::string err = dir / ("err." + std::to_string(n));
  ++n;
  const pid_t pid = fork();
  if (pid < 0) std::abort();
  if (pid == 0) {
    const int o = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int e = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (o < 0 || e < 0) _exit(126);
    dup2(o, 1);
    dup2(e, 2);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  Ran r;
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

// The handshake outcomes of one socket, from zmq_socket_monitor: proof that
// a subscriber which receives nothing did reach the agent and was turned
// away, rather than not having connected yet.
class HandshakeWatch {
 public:
  HandshakeWatch(zmq::context_t& ctx, zmq::socket_t& watched, const std::string& name)
      : events_(ctx, zmq::socket_type::pair) {
    const std::string ep = "inproc://handshakes-" + name;
    const int want = ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                     ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
    if (zmq_socket_monitor(watched.handle(), ep.c_str(), want) != 0) std::abort();
    events_.set(zmq::sockopt::linger, 0);
    events_.connect(ep);
  }
  zmq::socket_t& socket() { return events_; }
  // Reads the events queued so far.
  void drain() {
    zmq::message_t head, endpoint;
    while (events_.recv(head, zmq::recv_flags::dontwait)) {
      (void)events_.recv(endpoint);  // every event is two frames
      std::uint16_t event = 0;
      if (head.size() >= sizeof event) std::memcpy(&event, head.data(), sizeof event);
      if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
        ++succeeded;
      } else {
        ++failed;
      }
    }
  }

  int succeeded = 0;
  int failed = 0;

 private:
  zmq::socket_t events_;
};

zmq::socket_t subscriber(zmq::context_t& ctx) {
  zmq::socket_t s(ctx, zmq::socket_type::sub);
  s.set(zmq::sockopt::linger, 0);
  s.set(zmq::sockopt::subscribe, "vmtide.v1.");
  if (!wire::apply_limits(s)) std::abort();
  return s;
}

// Consumes whatever a socket has queued; the number of frames.
int discard(zmq::socket_t& s) {
  int frames = 0;
  zmq::message_t m;
  while (s.recv(m, zmq::recv_flags::dontwait)) ++frames;
  return frames;
}

std::vector<std::string> curve_agent_args(const std::string& key) {
  // The test process itself stands in for a VM: procfs discovery samples
  // any pid it is given.
  return {kAgent,
          "--endpoint",
          "tcp://127.0.0.1:*",
          "--discovery",
          "procfs",
          "--pid",
          std::to_string(getpid()),
          "--no-bpf",
          "--metrics",
          "off",
          "--interval",
          "0.2",
          "--curve-secret-key",
          key,
          "--wait-subscriber",
          "30"};
}

TEST(CurveStream, OnlySubscribersWithTheAgentKeyReceive) {
  TempDir dir;
  const Ran kg = run({kCli, "keygen", dir / "agent"}, dir);
  ASSERT_EQ(kg.status, 0) << kg.err;
  AgentProcess agent(curve_agent_args(dir / "agent.key"));
  const auto ep = agent.endpoint();
  ASSERT_TRUE(ep) << "agent never reported its endpoint; log:\n" << agent.log;

  zmq::context_t ctx;
  // Two intruders connect first: one speaking plain ZMTP, one with CURVE
  // but another server's key (it cannot complete the handshake).
  zmq::socket_t plain = subscriber(ctx);
  HandshakeWatch plain_watch(ctx, plain, "plain");
  zmq::socket_t wrong = subscriber(ctx);
  auto impostor = wire::curve::generate();
  ASSERT_TRUE(impostor);
  ASSERT_TRUE(wire::curve::configure_subscriber(wrong, impostor->public_z85, ""));
  HandshakeWatch wrong_watch(ctx, wrong, "wrong");
  plain.connect(*ep);
  wrong.connect(*ep);
  // Then the one with the agent's .pub and an ephemeral keypair.
  zmq::socket_t good = subscriber(ctx);
  Status st = wire::curve::configure_subscriber(good, dir / "agent.pub", "");
  ASSERT_TRUE(st) << st.error().message();
  HandshakeWatch good_watch(ctx, good, "good");
  good.connect(*ep);

  int vms = 0, hosts = 0, hbs = 0, intruder_frames = 0;
  auto done = [&] { return hbs >= 3 && vms >= 1 && hosts >= 1 && plain_watch.failed > 0 && wrong_watch.failed > 0; };
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  while (!done() && Clock::now() < deadline) {
    zmq::pollitem_t items[] = {{good.handle(), 0, ZMQ_POLLIN, 0},
                               {plain.handle(), 0, ZMQ_POLLIN, 0},
                               {wrong.handle(), 0, ZMQ_POLLIN, 0},
                               {plain_watch.socket().handle(), 0, ZMQ_POLLIN, 0},
                               {wrong_watch.socket().handle(), 0, ZMQ_POLLIN, 0},
                               {good_watch.socket().handle(), 0, ZMQ_POLLIN, 0}};
    zmq::poll(items, 6, std::chrono::milliseconds(200));
    for (;;) {
      auto m = wire::recv_message(good, zmq::recv_flags::dontwait);
      ASSERT_TRUE(m) << m.error().message();
      if (!m->has_value()) break;
      const auto& body = (**m).body;
      vms += std::holds_alternative<wire::VmSample>(body);
      hosts += std::holds_alternative<wire::HostSample>(body);
      hbs += std::holds_alternative<wire::Heartbeat>(body);
    }
    intruder_frames += discard(plain) + discard(wrong);
    plain_watch.drain();
    wrong_watch.drain();
    good_watch.drain();
  }
  intruder_frames += discard(plain) + discard(wrong);

  EXPECT_GE(hbs, 3) << agent.log;
  EXPECT_GE(vms, 1) << "the agent samples the test process as a VM";
  EXPECT_GE(hosts, 1);
  EXPECT_GE(good_watch.succeeded, 1);
  EXPECT_EQ(intruder_frames, 0) << "a subscriber without the agent's key received data";
  EXPECT_GE(plain_watch.failed, 1) << "the plain subscriber never reached the agent";
  EXPECT_EQ(plain_watch.succeeded, 0);
  EXPECT_GE(wrong_watch.failed, 1) << "the wrong-key subscriber never reached the agent";
  EXPECT_EQ(wrong_watch.succeeded, 0);
}

// publish.curve_allowed_clients: the agent's ZAP handler admits only the
// listed client keys. A subscriber holding the agent's key but another
// client key is turned away at the handshake and gets nothing, while a
// listed one receives; an allow-list others may write is refused.
TEST(CurveAllowList, OnlyListedClientKeysReceive) {
  TempDir dir;
  ASSERT_EQ(run({kCli, "keygen", dir / "agent"}, dir).status, 0);
  ASSERT_EQ(run({kCli, "keygen", dir / "listed"}, dir).status, 0);
  ASSERT_EQ(run({kCli, "keygen", dir / "unlisted"}, dir).status, 0);
  const std::string allowed = dir / "allowed";
  ASSERT_EQ(mkdir(allowed.c_str(), 0755), 0);
  std::filesystem::copy_file(dir / "listed.pub", allowed + "/listed.pub");
  ASSERT_EQ(chmod((allowed + "/listed.pub").c_str(), 0644), 0);

  auto args = curve_agent_args(dir / "agent.key");
  args.insert(args.end(), {"--curve-allow", allowed});
  AgentProcess agent(args);
  const auto ep = agent.endpoint();
  ASSERT_TRUE(ep) << "agent never reported its endpoint; log:\n" << agent.log;

  zmq::context_t ctx;
  zmq::socket_t outsider = subscriber(ctx);
  Status st = wire::curve::configure_subscriber(outsider, dir / "agent.pub", dir / "unlisted.key");
  ASSERT_TRUE(st) << st.error().message();
  HandshakeWatch outsider_watch(ctx, outsider, "outsider");
  outsider.connect(*ep);
  zmq::socket_t member = subscriber(ctx);
  st = wire::curve::configure_subscriber(member, dir / "agent.pub", dir / "listed.key");
  ASSERT_TRUE(st) << st.error().message();
  HandshakeWatch member_watch(ctx, member, "member");
  member.connect(*ep);

  int hbs = 0, outsider_frames = 0;
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  while ((hbs < 3 || outsider_watch.failed == 0) && Clock::now() < deadline) {
    zmq::pollitem_t items[] = {{member.handle(), 0, ZMQ_POLLIN, 0},
                               {outsider.handle(), 0, ZMQ_POLLIN, 0},
                               {outsider_watch.socket().handle(), 0, ZMQ_POLLIN, 0}};
    zmq::poll(items, 3, std::chrono::milliseconds(200));
    for (;;) {
      auto m = wire::recv_message(member, zmq::recv_flags::dontwait);
      ASSERT_TRUE(m) << m.error().message();
      if (!m->has_value()) break;
      hbs += std::holds_alternative<wire::Heartbeat>((**m).body);
    }
    outsider_frames += discard(outsider);
    outsider_watch.drain();
    member_watch.drain();
  }
  outsider_frames += discard(outsider);
  EXPECT_GE(hbs, 3) << "the listed client received too little; log:\n" << agent.log;
  EXPECT_GE(member_watch.succeeded, 1);
  EXPECT_EQ(outsider_frames, 0) << "a client key not in the allow-list received data";
  EXPECT_GE(outsider_watch.failed, 1) << "the unlisted client never reached the agent";
  EXPECT_EQ(outsider_watch.succeeded, 0);
  EXPECT_TRUE(agent.wait_for(std::regex("CURVE clients allowed: 1 key\\(s\\)"))) << agent.log;

  // An allow-list that group or others may write lets them in: refused,
  // with the fix. A .pub in it gets the same rule.
  const std::vector<std::string> check = {kAgent,          "--check-config", "--curve-secret-key", dir / "agent.key",
                                          "--curve-allow", allowed};
  ASSERT_EQ(chmod(allowed.c_str(), 0775), 0);
  const Ran open_dir = run(check, dir);
  EXPECT_EQ(open_dir.status, 1) << open_dir.err;
  EXPECT_NE(open_dir.err.find("fix: chmod go-w " + allowed), std::string::npos) << open_dir.err;
  ASSERT_EQ(chmod(allowed.c_str(), 0755), 0);
  ASSERT_EQ(chmod((allowed + "/listed.pub").c_str(), 0666), 0);
  const Ran open_file = run(check, dir);
  EXPECT_EQ(open_file.status, 1) << open_file.err;
  EXPECT_NE(open_file.err.find("listed.pub has mode 0666"), std::string::npos) << open_file.err;
  ASSERT_EQ(chmod((allowed + "/listed.pub").c_str(), 0644), 0);
  const Ran fine = run(check, dir);
  EXPECT_EQ(fine.status, 0) << fine.err;
  EXPECT_NE(fine.err.find("1 client key(s) allowed"), std::string::npos) << fine.err;
  // Without CURVE an allow-list means nothing: a configuration error.
  const Ran lonely = run({kAgent, "--check-config", "--curve-allow", allowed}, dir);
  EXPECT_EQ(lonely.status, 1);
  EXPECT_NE(lonely.err.find("needs publish.curve_secret_key"), std::string::npos) << lonely.err;
}

TEST(CurveKeygen, PrivateFilesNoOverwriteAndTheAgentRefusesAnOpenKey) {
  TempDir dir;
  const std::string key = dir / "agent.key";
  const std::string pub = dir / "agent.pub";
  const Ran first = run({kCli, "keygen", dir / "agent"}, dir);
  ASSERT_EQ(first.status, 0) << first.err;
  EXPECT_EQ(mode_of(key), 0600u);
  EXPECT_EQ(mode_of(pub), 0644u);
  auto pair = wire::curve::load_secret_key_file(key);
  ASSERT_TRUE(pair) << pair.error().message();
  EXPECT_NE(first.out.find(pair->public_z85), std::string::npos) << "keygen prints the public key: " << first.out;
  EXPECT_EQ(*wire::curve::load_public_key(pub), pair->public_z85);

  const std::string key_text = slurp(key);
  const Ran again = run({kCli, "keygen", dir / "agent"}, dir);
  EXPECT_EQ(again.status, 1);
  EXPECT_NE(again.err.find(key + " already exists"), std::string::npos) << again.err;
  EXPECT_NE(again.err.find("--force"), std::string::npos) << again.err;
  EXPECT_EQ(slurp(key), key_text) << "a refused keygen changed the key";

  const Ran forced = run({kCli, "keygen", "--force", dir / "agent"}, dir);
  ASSERT_EQ(forced.status, 0) << forced.err;
  EXPECT_NE(slurp(key), key_text);
  EXPECT_EQ(mode_of(key), 0600u);
  EXPECT_EQ(mode_of(pub), 0644u);

  // A secret key others can read: a configuration error, at start and
  // under --check-config, with the command that fixes it. (--ticks 1: if
  // the agent wrongly started, it still ends.)
  ASSERT_EQ(chmod(key.c_str(), 0644), 0);
  const std::string want = "secret key file " + key + " has mode 0644";
  const Ran start = run({kAgent, "--endpoint", "tcp://127.0.0.1:*", "--metrics", "off", "--no-bpf", "--discovery",
                         "procfs", "--ticks", "1", "--curve-secret-key", key},
                        dir);
  EXPECT_EQ(start.status, 1) << start.err;
  EXPECT_NE(start.err.find(want), std::string::npos) << start.err;
  EXPECT_NE(start.err.find("fix: chmod 600 " + key), std::string::npos) << start.err;
  EXPECT_EQ(start.err.find("publishing on"), std::string::npos) << "the agent started anyway";

  const Ran check = run({kAgent, "--check-config", "--curve-secret-key", key}, dir);
  EXPECT_EQ(check.status, 1);
  EXPECT_NE(check.err.find(want), std::string::npos) << check.err;

  ASSERT_EQ(chmod(key.c_str(), 0600), 0);
  const Ran fixed = run({kAgent, "--check-config", "--curve-secret-key", key}, dir);
  EXPECT_EQ(fixed.status, 0) << fixed.err;
  auto replaced = wire::curve::load_public_key(pub);
  ASSERT_TRUE(replaced);
  EXPECT_NE(fixed.err.find("CURVE on; subscribers need public key " + *replaced), std::string::npos) << fixed.err;
  EXPECT_NE(fixed.out.find("curve_secret_key = '" + key + "'"), std::string::npos) << fixed.out;
}

TEST(CurveTap, PrintsJsonLinesFromACurveAgent) {
  TempDir dir;
  ASSERT_EQ(run({kCli, "keygen", dir / "agent"}, dir).status, 0);
  ASSERT_EQ(run({kCli, "keygen", dir / "client"}, dir).status, 0);
  AgentProcess agent(curve_agent_args(dir / "agent.key"));
  const auto ep = agent.endpoint();
  ASSERT_TRUE(ep) << agent.log;

  auto check_lines = [](const Ran& r) {
    EXPECT_EQ(r.status, 0) << r.err;
    std::istringstream in(r.out);
    std::string line;
    int lines = 0;
    while (std::getline(in, line)) {
      ++lines;
      EXPECT_EQ(line.rfind("{\"v\":1,\"kind\":", 0), 0u) << line;
    }
    EXPECT_EQ(lines, 3) << r.out;
  };
  // The .pub file and a client keypair of our own ...
  check_lines(run({kCli, "tap", "-c", *ep, "--server-key", dir / "agent.pub", "--client-key", dir / "client.key", "-n",
                   "3", "--timeout", "60"},
                  dir));
  // ... or the key pasted as Z85, with an ephemeral client keypair.
  auto z85 = wire::curve::load_public_key(dir / "agent.pub");
  ASSERT_TRUE(z85);
  check_lines(run({kCli, "tap", "-c", *ep, "--server-key", *z85, "-n", "3", "--timeout", "60"}, dir));

  // A key that is neither a file nor Z85 is an error before connecting.
  const Ran bad = run({kCli, "top", "-c", *ep, "--server-key", dir / "agent.pbu", "-n", "1"}, dir);
  EXPECT_EQ(bad.status, 1);
  EXPECT_NE(bad.err.find("neither an existing key file"), std::string::npos) << bad.err;
  const Ran lonely = run({kCli, "tap", "-c", *ep, "--client-key", dir / "client.key", "-n", "1"}, dir);
  EXPECT_EQ(lonely.status, 1);
  EXPECT_NE(lonely.err.find("--server-key"), std::string::npos) << lonely.err;
}

// The controller as a CURVE client (agents.curve_server_key(s) and
// agents.curve_secret_key, docs/security.md): from one SUB socket it reads
// a CURVE agent whose allow-list holds the controller's key and a plain
// agent beside it. A controller whose key is not listed learns nothing of
// that host; the agent logs the refusal and exports it.
TEST(CurveController, ReadsTheAgentsThatAdmitItAndNoOther) {
  TempDir dir;
  for (const char* k : {"agent", "ctl", "stranger"}) ASSERT_EQ(run({kCli, "keygen", dir / k}, dir).status, 0);
  const std::string allowed = dir / "allowed";
  ASSERT_EQ(mkdir(allowed.c_str(), 0755), 0);
  std::filesystem::copy_file(dir / "ctl.pub", allowed + "/ctl.pub");
  ASSERT_EQ(chmod((allowed + "/ctl.pub").c_str(), 0644), 0);
  auto args = curve_agent_args(dir / "agent.key");
  std::replace(args.begin(), args.end(), std::string("off"), std::string("127.0.0.1:0"));  // --metrics
  args.insert(args.end(), {"--curve-allow", allowed, "--host", "curvehost"});
  AgentProcess secure(args);
  const auto secure_ep = secure.endpoint();
  ASSERT_TRUE(secure_ep) << "agent never reported its endpoint; log:\n" << secure.log;
  std::smatch port;
  ASSERT_TRUE(std::regex_search(secure.log, port, std::regex("metrics on http://[0-9.]+:([0-9]+)/"))) << secure.log;
  // The match points into secure.log, which wait_for() below appends to.
  const int metrics_port = std::stoi(port[1]);
  AgentProcess plain({kAgent, "--endpoint", "tcp://127.0.0.1:*", "--discovery", "procfs", "--pid",
                      std::to_string(getpid()), "--no-bpf", "--metrics", "off", "--interval", "0.2", "--host",
                      "plainhost"});
  const auto plain_ep = plain.endpoint();
  ASSERT_TRUE(plain_ep) << "agent never reported its endpoint; log:\n" << plain.log;

  // One controller config per client key; the secure agent's key given per
  // endpoint in one, for every endpoint in the other.
  auto controller = [&](const std::string& name, const std::string& agents_section) {
    const std::string cfg = dir / (name + ".toml");
    std::ofstream(cfg) << "[controller]\nmode = \"observe\"\nround_interval = 0.3\nname = \"" << name << "\"\n"
                       << agents_section << "[publish]\nendpoint = \"tcp://127.0.0.1:*\"\n"
                       << "[control]\nendpoint = \"tcp://127.0.0.1:*\"\n[log]\ndecisions = \"\"\n";
    return cfg;
  };
  const std::string good_cfg = controller(
      "ctl", "[agents]\nendpoints = [\"" + *plain_ep + "\", \"" + *secure_ep + "\"]\ncurve_secret_key = \"" +
                 dir / "ctl.key" + "\"\n[agents.curve_server_keys]\n\"" + *secure_ep + "\" = \"" + dir / "agent.pub" +
                 "\"\n");
  const std::string bad_cfg =
      controller("stranger", "[agents]\nendpoints = [\"" + *secure_ep + "\"]\ncurve_server_key = \"" +
                                 dir / "agent.pub" + "\"\ncurve_secret_key = \"" + dir / "stranger.key" + "\"\n");
  const std::string kController = VMTIDE_BINARY_DIR "/bin/vmtide-controller";
  const Ran check = run({kController, "-c", good_cfg, "--check-config"}, dir);
  ASSERT_EQ(check.status, 0) << check.err;
  EXPECT_NE(check.out.find("curve_server_keys"), std::string::npos) << check.out;

  const std::regex started("decisions on (tcp://[0-9.]+:[0-9]+).*control (tcp://[0-9.]+:[0-9]+)");
  AgentProcess good({kController, "-c", good_cfg});
  auto g = good.wait_for(started);
  ASSERT_TRUE(g) << "the controller did not start; its log:\n" << good.log;
  AgentProcess bad({kController, "-c", bad_cfg});
  auto b = bad.wait_for(started);
  ASSERT_TRUE(b) << "the controller did not start; its log:\n" << bad.log;

  zmq::context_t ctx;
  std::string health;
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  auto fresh = [&](const std::string& h, const std::string& host) {
    return h.find("\"name\":\"" + host + "\",\"stale\":false") != std::string::npos;
  };
  while (!(fresh(health, "curvehost") && fresh(health, "plainhost")) && Clock::now() < deadline) {
    health = testsupport::ask_controller(ctx, (*g)[2], "health.json");
    if (!(fresh(health, "curvehost") && fresh(health, "plainhost"))) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_TRUE(fresh(health, "curvehost")) << "the listed controller never read the CURVE agent: " << health;
  EXPECT_TRUE(fresh(health, "plainhost")) << "the plain agent beside it was lost: " << health;

  // The stranger's handshakes are refused, logged and exported; by then it
  // has had its chance, and knows nothing of the host.
  ASSERT_TRUE(secure.wait_for(std::regex("CURVE allow-list refused [0-9]+ handshake"))) << secure.log;
  const std::string bad_health = testsupport::ask_controller(ctx, (*b)[2], "health.json");
  EXPECT_EQ(bad_health.find("curvehost"), std::string::npos) << bad_health;
  const std::string text = testsupport::scrape(metrics_port);
  const auto refused = testsupport::metric_value(text, "vmtide_agent_curve_handshakes", "result=\"refused\"");
  const auto admitted = testsupport::metric_value(text, "vmtide_agent_curve_handshakes", "result=\"admitted\"");
  ASSERT_TRUE(refused && admitted) << text;
  EXPECT_GE(*refused, 1);
  EXPECT_GE(*admitted, 1);
}

}  // namespace
}  // namespace vmtide
