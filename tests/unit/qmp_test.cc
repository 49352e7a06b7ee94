// SPDX-License-Identifier: Apache-2.0
// The QMP dirty-rate fallback without QEMU: QEMU option and command-line
// parsing (QMP sockets), the JSON reader on good and malformed input,
// query-dirty-rate replies, and the client and ProcfsSource against a fake
// monitor on a unix socket (greeting, events, errors, a busy monitor).
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "json_reader.h"
#include "procfs.h"
#include "procfs_source.h"
#include "qmp.h"

namespace vmtide {
namespace {

using namespace std::string_literals;
using namespace std::chrono_literals;
using discovery::QmpClient;
using discovery::QmpClock;
namespace json = discovery::json;

// ---- QEMU option syntax and QMP sockets on the command line ----

TEST(QemuOpts, ImpliedKeyFlagsAndEscapedCommas) {
  auto o = discovery::parse_qemu_opts("/run/a,,b.sock,server,nowait,x=1,x=2", "path");
  ASSERT_EQ(o.size(), 5u);
  EXPECT_EQ(o[0], (std::pair<std::string, std::string>{"path", "/run/a,b.sock"}));
  EXPECT_EQ(o[1], (std::pair<std::string, std::string>{"server", "on"}));
  EXPECT_EQ(o[2], (std::pair<std::string, std::string>{"wait", "off"}));
  EXPECT_EQ(o[4].second, "2");
  // Only the first item may be the implied key's value.
  auto p = discovery::parse_qemu_opts("path=/x,server=on", "path");
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0].second, "/x");
  EXPECT_TRUE(discovery::parse_qemu_opts("", "path").empty());
  EXPECT_TRUE(discovery::parse_qemu_opts(",,,", "").size() == 1u);  // one item: ","
}

std::vector<std::string> sockets(const std::string& argv) {
  auto c = discovery::parse_qemu_cmdline(argv);
  EXPECT_TRUE(c) << c.error().message();
  return c ? c->qmp_sockets : std::vector<std::string>{};
}

TEST(QemuCmdline, QmpSocketForms) {
  using V = std::vector<std::string>;
  EXPECT_EQ(sockets("qemu-system-x86_64\0-qmp\0unix:/tmp/a.sock,server=on,wait=off\0"s), V{"/tmp/a.sock"});
  EXPECT_EQ(sockets("qemu\0-qmp\0unix:path=/tmp/b.sock,server=on\0"s), V{"/tmp/b.sock"});
  EXPECT_EQ(sockets("qemu\0--qmp\0unix:/tmp/c.sock,server,nowait\0"s), V{"/tmp/c.sock"});  // legacy flags
  EXPECT_EQ(sockets("qemu\0-qmp-pretty\0unix:/tmp/p.sock,server=yes\0"s), V{"/tmp/p.sock"});
  EXPECT_EQ(sockets("qemu\0-qmp\0unix:/tmp/we,,ird.sock,server=on\0"s), V{"/tmp/we,ird.sock"});
  EXPECT_EQ(sockets("qemu\0-qmp\0unix:rel/q.sock,server=on\0"s), V{"rel/q.sock"});  // scan() resolves it
  // A -chardev used by a control-mode -mon, in either order; a readline
  // (HMP) monitor is not QMP.
  EXPECT_EQ(sockets("qemu\0-chardev\0socket,id=m0,path=/tmp/m0.sock,server=on,wait=off\0"
                    "-mon\0chardev=m0,mode=control,pretty=on\0"s),
            V{"/tmp/m0.sock"});
  EXPECT_EQ(sockets("qemu\0-mon\0m1,mode=control\0-chardev\0socket,path=/tmp/m1.sock,id=m1,server\0"s),
            V{"/tmp/m1.sock"});
  EXPECT_EQ(sockets("qemu\0-chardev\0socket,id=h,path=/tmp/h.sock,server=on\0-mon\0chardev=h\0"s), V{});
  // Several monitors, in command-line order, each once.
  EXPECT_EQ(sockets("qemu\0-qmp\0unix:/tmp/1.sock,server=on\0-chardev\0socket,id=c,path=/tmp/2.sock,server=on\0"
                    "-mon\0chardev=c,mode=control\0-qmp\0unix:/tmp/1.sock,server=on\0"s),
            (V{"/tmp/1.sock", "/tmp/2.sock"}));
}

TEST(QemuCmdline, QmpSocketsLeftOut) {
  using V = std::vector<std::string>;
  EXPECT_EQ(sockets("qemu\0-qmp\0unix:/tmp/client.sock\0"s), V{});  // QEMU connects out
  EXPECT_EQ(sockets("qemu\0-qmp\0unix:/tmp/x.sock,server=off\0"s), V{});
  EXPECT_EQ(sockets("qemu\0-qmp\0tcp:127.0.0.1:4444,server=on\0"s), V{});
  EXPECT_EQ(sockets("qemu\0-qmp\0stdio\0"s), V{});
  EXPECT_EQ(sockets("qemu\0-qmp\0unix:\0"s), V{});
  EXPECT_EQ(sockets("qemu\0-qmp\0unix:,server=on\0"s), V{});
  EXPECT_EQ(sockets("qemu\0-qmp\0"s), V{});  // no value
  EXPECT_EQ(sockets("qemu\0-chardev\0socket,id=lv,fd=23,server=on,wait=off\0-mon\0chardev=lv,mode=control\0"s), V{});
  EXPECT_EQ(sockets("qemu\0-chardev\0socket,id=a,path=x,abstract=on,server=on\0-mon\0chardev=a,mode=control\0"s), V{});
  EXPECT_EQ(sockets("qemu\0-mon\0chardev=missing,mode=control\0"s), V{});
  EXPECT_EQ(sockets("qemu\0-monitor\0unix:/tmp/hmp.sock,server=on\0"s), V{});  // HMP, not QMP
  // Malformed monitor options never cost the VM its discovery.
  auto c = discovery::parse_qemu_cmdline("qemu\0-name\0g\0-qmp\0unix:,,,,,,\0-mon\0,,=\0-chardev\0=\0"s);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->name, "g");
}

TEST(QemuScan, RelativeQmpSocketResolvedFromCwd) {
  char tmpl[] = "/tmp/vmtide-qmpscan.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string root = tmpl;
  const std::string pid = root + "/4242";
  ASSERT_EQ(std::system(("mkdir -p '" + pid + "/task'").c_str()), 0);
  std::ofstream(pid + "/comm") << "qemu-system-x86\n";
  const std::string argv = "qemu-system-x86_64\0-qmp\0unix:run/q.sock,server=on\0-qmp\0unix:/abs.sock,server=on\0"s;
  std::ofstream(pid + "/cmdline", std::ios::binary) << argv;
  ASSERT_EQ(symlink("/srv/vm7", (pid + "/cwd").c_str()), 0);
  auto found = discovery::scan_qemu_processes(root);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].qmp_sockets, (std::vector<std::string>{"/srv/vm7/run/q.sock", "/abs.sock"}));
  std::system(("rm -rf '" + root + "'").c_str());
}

// ---- JSON reader ----

TEST(JsonReader, Values) {
  auto v = json::parse(R"( {"a": [1, -2, 3.5, 1e3, true, false, null], "s": "x\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00",
                            "big": 9223372036854775807, "bigger": 9223372036854775808, "o": {}} )");
  ASSERT_TRUE(v) << v.error().message();
  const auto* a = v->find("a")->as_array();
  ASSERT_NE(a, nullptr);
  ASSERT_EQ(a->size(), 7u);
  EXPECT_EQ((*a)[0].as_int(), 1);
  EXPECT_EQ((*a)[1].as_int(), -2);
  EXPECT_FALSE((*a)[2].as_int());  // not an integer literal
  EXPECT_DOUBLE_EQ(*(*a)[2].as_double(), 3.5);
  EXPECT_FALSE((*a)[3].as_int());
  EXPECT_DOUBLE_EQ(*(*a)[3].as_double(), 1000);
  EXPECT_EQ((*a)[4].as_bool(), true);
  EXPECT_EQ((*a)[5].as_bool(), false);
  EXPECT_TRUE((*a)[6].is_null());
  EXPECT_EQ(*v->find("s")->as_string(), "x\"\\/\b\f\n\r\t\xc3\xa9\xf0\x9f\x98\x80");
  EXPECT_EQ(v->find("big")->as_int(), INT64_MAX);
  EXPECT_FALSE(v->find("bigger")->as_int());  // too big for int64: a double only
  EXPECT_TRUE(v->find("o")->is_object());
  EXPECT_EQ(v->find("missing"), nullptr);
  EXPECT_EQ(v->find("a")->find("x"), nullptr);  // not an object
  EXPECT_EQ(v->find("s")->as_array(), nullptr);
  EXPECT_FALSE(v->find("s")->as_int());
}

TEST(JsonReader, PrefixFramesAStream) {
  const std::string stream = "{\"QMP\": {}}\r\n{\"return\": {},\n \"id\": \"x\"}\r\n{\"ev";
  auto first = json::parse_prefix(stream);
  ASSERT_TRUE(first);
  EXPECT_NE(first->value.find("QMP"), nullptr);
  auto second = json::parse_prefix(std::string_view(stream).substr(first->consumed));
  ASSERT_TRUE(second);
  EXPECT_EQ(*second->value.find("id")->as_string(), "x");
  auto third = json::parse_prefix(std::string_view(stream).substr(first->consumed + second->consumed));
  ASSERT_FALSE(third);
  EXPECT_EQ(third.error().code, Errc::kWireTruncated);
}

TEST(JsonReader, TruncatedInput) {
  // clang-format off
  for (const char* t : {"", "  ", "{", "{\"a\"", "{\"a\":", "{\"a\":1", "[1,", "\"abc", "\"\\", "\"\\u12", "tru",
                        "-", "12", "1.", "1e", "1e+", "\"\\ud83d", "{\"a\":[{\"b\":"}) {
    // clang-format on
    auto r = json::parse_prefix(t);
    ASSERT_FALSE(r) << t;
    EXPECT_EQ(r.error().code, Errc::kWireTruncated) << t << ": " << r.error().message();
  }
  // A whole document may end in a number.
  EXPECT_EQ(json::parse("12")->as_int(), 12);
}

TEST(JsonReader, MalformedInput) {
  // clang-format off
  for (const char* t : {"}", "]", "{1:2}", "{\"a\" 1}", "{\"a\":1,}", "[1,]", "[1 2]", "trux", "nul!", "01x", "-x",
                        "1.x", "1ex", "+1", ".5", "'a'", "\"a\tb\"", "\"\\x\"", "\"\\u12g4\"", "\"\\udc00\"",
                        "\"\\ud83dx\"", "\"\\ud83d\\u0041\"", "{\"a\":1,\"a\":2}", "1e999", "{\"a\":1}}", "[] x"}) {
    // clang-format on
    auto r = json::parse(t);
    ASSERT_FALSE(r) << t;
    EXPECT_EQ(r.error().code, Errc::kWireMalformed) << t << ": " << r.error().message();
  }
}

TEST(JsonReader, Limits) {
  const std::string deep = std::string(40, '[') + std::string(40, ']');
  auto d = json::parse(deep);
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().code, Errc::kWireTooDeep);
  EXPECT_TRUE(json::parse(std::string(32, '[') + std::string(32, ']')));
  std::string many = "[";
  for (int i = 0; i < 200; ++i) many += "0,";
  many += "0]";
  auto m = json::parse(many, {.max_depth = 32, .max_values = 100, .max_string = 10});
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code, Errc::kWireOversize);
  auto s = json::parse("\"" + std::string(100, 'x') + "\"", {.max_depth = 32, .max_values = 100, .max_string = 10});
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, Errc::kWireOversize);
}

TEST(JsonReader, GarbageNeverCrashes) {
  // Every prefix and a byte-flipped copy of a real reply: a value, or an
  // error, and nothing else (run under ASan in the sanitizer builds).
  const std::string reply =
      R"({"return": {"status": "measured", "sample-pages": 4096, "dirty-rate": 11, "mode": "page-sampling",)"
      R"( "start-time": 1723, "calc-time": 2, "calc-time-unit": "second"}, "id": "vmtide-2"})";
  for (std::size_t n = 0; n <= reply.size(); ++n) {
    (void)json::parse_prefix(std::string_view(reply).substr(0, n));
    std::string flipped = reply;
    if (n < flipped.size()) flipped[n] = static_cast<char>(flipped[n] ^ 0x5a);
    (void)json::parse(flipped);
  }
  SUCCEED();
}

// ---- query-dirty-rate and calc-dirty-rate ----

Result<std::optional<discovery::HypervisorDirtyRate>> query(const std::string& text) {
  auto v = json::parse(text);
  EXPECT_TRUE(v) << text;
  return discovery::parse_query_dirty_rate(*v);
}

TEST(QueryDirtyRate, Replies) {
  auto measuring = query(R"({"status": "measuring", "start-time": 5, "calc-time": 2, "sample-pages": 4096})");
  ASSERT_TRUE(measuring);
  EXPECT_FALSE(*measuring);
  EXPECT_FALSE(*query(R"({"status": "unstarted", "start-time": 0, "calc-time": 0})"));
  // QEMU 10: with calc-time-unit.
  auto done = query(R"({"status": "measured", "sample-pages": 4096, "dirty-rate": 11, "mode": "page-sampling",
                        "start-time": 1723, "calc-time": 2, "calc-time-unit": "second"})");
  ASSERT_TRUE(done) << done.error().message();
  ASSERT_TRUE(*done);
  EXPECT_DOUBLE_EQ((*done)->mib_per_s, 11);
  EXPECT_EQ((*done)->start_time_s, 1723);
  EXPECT_EQ((*done)->period_ns, 2'000'000'000u);
  // Before QEMU 8.2 (no unit: seconds), and in milliseconds.
  EXPECT_EQ((*query(R"({"status": "measured", "dirty-rate": 0, "start-time": 1, "calc-time": 3})"))->period_ns,
            3'000'000'000u);
  EXPECT_EQ((*query(R"({"status": "measured", "dirty-rate": 4, "start-time": 1, "calc-time": 500,
                        "calc-time-unit": "millisecond"})"))
                ->period_ns,
            500'000'000u);
}

TEST(QueryDirtyRate, BadReplies) {
  struct Case {
    const char* json;
    Errc want;
  };
  const Case cases[] = {
      {R"({})", Errc::kWireMissingKey},
      {R"({"status": 1})", Errc::kWireType},
      {R"({"status": "exploded"})", Errc::kWireRange},
      {R"({"status": "measured", "start-time": 1, "calc-time": 2})", Errc::kWireMissingKey},
      {R"({"status": "measured", "dirty-rate": "11", "start-time": 1, "calc-time": 2})", Errc::kWireType},
      {R"({"status": "measured", "dirty-rate": 1.5, "start-time": 1, "calc-time": 2})", Errc::kWireType},
      {R"({"status": "measured", "dirty-rate": -1, "start-time": 1, "calc-time": 2})", Errc::kWireRange},
      {R"({"status": "measured", "dirty-rate": 1, "start-time": 1, "calc-time": 0})", Errc::kWireRange},
      {R"({"status": "measured", "dirty-rate": 1, "start-time": 1, "calc-time": 2, "calc-time-unit": "hour"})",
       Errc::kWireRange},
      {R"({"status": "measured", "dirty-rate": 1, "start-time": 1, "calc-time": 2, "calc-time-unit": 7})",
       Errc::kWireType},
  };
  for (const auto& c : cases) {
    auto r = query(c.json);
    ASSERT_FALSE(r) << c.json;
    EXPECT_EQ(r.error().code, c.want) << c.json << ": " << r.error().message();
  }
}

TEST(CalcDirtyRate, ArgumentsWithinQemuLimits) {
  EXPECT_EQ(discovery::calc_dirty_rate_arguments(2, 4096),
            R"({"calc-time":2,"sample-pages":4096,"mode":"page-sampling"})");
  EXPECT_EQ(discovery::calc_dirty_rate_arguments(0, 10),
            R"({"calc-time":1,"sample-pages":128,"mode":"page-sampling"})");
  EXPECT_EQ(discovery::calc_dirty_rate_arguments(600, 1 << 20),
            R"({"calc-time":60,"sample-pages":4096,"mode":"page-sampling"})");
}

// ---- the client against a fake monitor ----

// A QMP monitor in a thread: one client at a time, like QEMU's. Replies to
// commands from `replies` (the reply object without its id), an event
// before each reply; `greet = false` accepts nobody, as a monitor busy with
// another client does.
class FakeMonitor {
 public:
  FakeMonitor(std::string path, std::map<std::string, std::string> replies, bool greet = true, bool pretty = false)
      : path_(std::move(path)), replies_(std::move(replies)), greet_(greet), pretty_(pretty) {
    fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path_.c_str());
    if (bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd_, 1) != 0) std::abort();
    thread_ = std::thread([this] { run(); });
  }
  ~FakeMonitor() {
    stop_ = true;
    thread_.join();
    close(fd_);
    unlink(path_.c_str());
  }
  std::vector<std::string> commands() {
    std::lock_guard<std::mutex> lk(mu_);
    return commands_;
  }
  int clients() const { return clients_.load(); }

 private:
  void send_text(int c, const std::string& s) { (void)!send(c, s.data(), s.size(), MSG_NOSIGNAL); }
  void run() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (!greet_ || poll(&p, 1, 20) <= 0) {
        std::this_thread::sleep_for(5ms);
        continue;
      }
      const int c = accept(fd_, nullptr, nullptr);
      if (c < 0) continue;
      ++clients_;
      send_text(c, pretty_
                       ? "{\n    \"QMP\": {\n        \"version\": {},\n        \"capabilities\": [\"oob\"]\n    }\n}\n"
                       : "{\"QMP\": {\"version\": {}, \"capabilities\": [\"oob\"]}}\r\n");
      std::string buf;
      char chunk[4096];
      while (!stop_) {
        pollfd q{c, POLLIN, 0};
        if (poll(&q, 1, 20) <= 0) continue;
        const ssize_t n = recv(c, chunk, sizeof chunk, 0);
        if (n <= 0) break;
        buf.append(chunk, static_cast<std::size_t>(n));
        while (auto m = json::parse_prefix(buf)) {
          buf.erase(0, m->consumed);
          const std::string cmd = *m->value.find("execute")->as_string();
          const std::string id = *m->value.find("id")->as_string();
          {
            std::lock_guard<std::mutex> lk(mu_);
            commands_.push_back(cmd);
          }
          send_text(c, "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, \"event\": \"RESUME\"}\r\n");
          std::string reply = "{\"return\": {}}";
          if (auto it = replies_.find(cmd); it != replies_.end()) {
            reply = it->second;
          } else if (cmd != "qmp_capabilities") {
            reply = "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"no command " + cmd + "\"}}";
          }
          reply.insert(reply.rfind('}'), ", \"id\": \"" + id + "\"");
          send_text(c, reply + "\r\n");
        }
      }
      close(c);
    }
  }

  std::string path_;
  std::map<std::string, std::string> replies_;
  bool greet_, pretty_;
  int fd_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<int> clients_{0};
  std::mutex mu_;
  std::vector<std::string> commands_;
  std::thread thread_;
};

class QmpClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vmtide-qmp.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::system(("rm -rf '" + dir_ + "'").c_str()); }
  std::string dir_;
};

TEST_F(QmpClientTest, ExecutesSkippingEvents) {
  for (bool pretty : {false, true}) {
    FakeMonitor mon(dir_ + "/m.sock", {{"query-dirty-rate", R"({"return": {"status": "measuring"}})"}}, true, pretty);
    auto c = QmpClient::connect(dir_ + "/m.sock", QmpClock::now() + 2s);
    ASSERT_TRUE(c) << c.error().message();
    auto r = c->execute("query-dirty-rate", "", QmpClock::now() + 2s);
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(*r->find("status")->as_string(), "measuring");
    EXPECT_EQ(c->events_skipped(), 2u);  // one before each reply
    // QEMU's error reply: class and description in the error.
    auto e = c->execute("no-such-command", R"({"x": 1})", QmpClock::now() + 2s);
    ASSERT_FALSE(e);
    EXPECT_EQ(e.error().code, Errc::kIo);
    EXPECT_NE(e.error().context.find("CommandNotFound"), std::string::npos) << e.error().context;
    EXPECT_EQ(mon.commands(), (std::vector<std::string>{"qmp_capabilities", "query-dirty-rate", "no-such-command"}));
  }
}

TEST_F(QmpClientTest, BusyMonitorTimesOutOnTime) {
  FakeMonitor mon(dir_ + "/busy.sock", {}, /*greet=*/false);
  const auto t0 = QmpClock::now();
  auto c = QmpClient::connect(dir_ + "/busy.sock", t0 + 200ms);
  const auto took = QmpClock::now() - t0;
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, Errc::kBusy) << c.error().message();
  EXPECT_GE(took, 190ms);
  EXPECT_LT(took, 1s) << "the deadline bounds the wait";
}

TEST_F(QmpClientTest, NothingListening) {
  auto c = QmpClient::connect(dir_ + "/absent.sock", QmpClock::now() + 200ms);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, Errc::kIo);
  // A socket file nobody listens on (QEMU killed with -9 leaves one).
  const int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof a.sun_path, "%s", (dir_ + "/stale.sock").c_str());
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  close(fd);  // bound, never listened: connect is refused
  auto r = QmpClient::connect(dir_ + "/stale.sock", QmpClock::now() + 200ms);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kIo) << r.error().message();
  auto too_long = QmpClient::connect("/" + std::string(200, 'x'), QmpClock::now() + 200ms);
  ASSERT_FALSE(too_long);
  EXPECT_EQ(too_long.error().code, Errc::kInvalidArgument);
}

TEST_F(QmpClientTest, PeerThatIsNotAMonitor) {
  // Talks garbage, then hangs up: errors, promptly, never a crash or a hang.
  const std::string path = dir_ + "/junk.sock";
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(listen(fd, 4), 0);
  for (const char* junk : {"HTTP/1.1 400 Bad Request\r\n\r\n", "[1,2,3]\n", "{\"QMP\": {}}\n{\"return\": {}}\n"}) {
    std::thread peer([&] {
      const int c = accept(fd, nullptr, nullptr);
      (void)!send(c, junk, std::strlen(junk), MSG_NOSIGNAL);
      char b[256];
      (void)!recv(c, b, sizeof b, 0);  // the client's first command, then hang up
      close(c);
    });
    auto c = QmpClient::connect(path, QmpClock::now() + 1s);
    peer.join();
    ASSERT_FALSE(c) << junk;
    EXPECT_EQ(c.error().code, Errc::kIo) << c.error().message();
  }
  close(fd);
}

TEST_F(QmpClientTest, ProcfsSourceMeasuresThroughTheMonitor) {
  // A fake /proc with one QEMU whose command line names the fake monitor.
  const std::string root = dir_ + "/proc";
  const std::string sock = dir_ + "/vm.sock";
  ASSERT_EQ(std::system(("mkdir -p '" + root + "/4242/task' '" + root + "/4343/task'").c_str()), 0);
  std::ofstream(root + "/4242/comm") << "qemu-system-x86\n";
  std::ofstream(root + "/4242/cmdline", std::ios::binary)
      << "qemu-system-x86_64\0-name\0vm1\0-qmp\0unix:"s << sock << ",server=on,wait=off\0"s;
  std::ofstream(root + "/4343/comm") << "qemu-system-x86\n";
  std::ofstream(root + "/4343/cmdline", std::ios::binary) << "qemu-system-x86_64\0-name\0noqmp\0"s;
  FakeMonitor mon(sock, {{"calc-dirty-rate", R"({"return": {}})"},
                         {"query-dirty-rate", R"({"return": {"status": "measured", "dirty-rate": 11,
                             "start-time": 77, "calc-time": 2, "calc-time-unit": "second"}})"}});
  discovery::ProcfsSource src({.qmp = true, .qmp_timeout = 1000ms, .proc_root = root});
  EXPECT_TRUE(src.supports_dirty_rate());
  EXPECT_EQ(src.dirty_rate_source(), wire::DirtySource::kQemu);
  auto vms = src.scan();
  ASSERT_TRUE(vms);
  ASSERT_EQ(vms->size(), 2u);
  ASSERT_TRUE(src.start_dirty_rate("proc:4242", 2));
  auto r = src.dirty_rate("proc:4242");
  ASSERT_TRUE(r) << r.error().message();
  ASSERT_TRUE(*r);
  EXPECT_DOUBLE_EQ((*r)->mib_per_s, 11);
  EXPECT_EQ(mon.commands(),
            (std::vector<std::string>{"qmp_capabilities", "calc-dirty-rate", "qmp_capabilities", "query-dirty-rate"}));
  EXPECT_EQ(mon.clients(), 2) << "one short connection per call";
  // No QMP socket: unsupported, not an error to count.
  EXPECT_EQ(src.start_dirty_rate("proc:4343", 2).error().code, Errc::kUnsupported);
  // The VM exits (its /proc entry and its monitor go): not found, quietly.
  ASSERT_EQ(std::system(("rm -rf '" + root + "/4242'").c_str()), 0);
  unlink(sock.c_str());
  EXPECT_EQ(src.dirty_rate("proc:4242").error().code, Errc::kNotFound);
  EXPECT_EQ(src.dirty_rate("proc:999").error().code, Errc::kNotFound);
  discovery::ProcfsSource off({.proc_root = root});
  EXPECT_FALSE(off.supports_dirty_rate());
}

}  // namespace
}  // namespace vmtide
