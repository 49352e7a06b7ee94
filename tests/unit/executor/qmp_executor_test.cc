// SPDX-License-Identifier: Apache-2.0
// The QMP executor without QEMU: query-migrate replies as QEMU 10 sends
// them, the command arguments, the pure state logic (statuses, timeout,
// abort), and the executor against a scripted monitor on a unix socket
// (commands in order, cancel, events awaited, errors).
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "json_reader.h"
#include "qmp_executor.h"

namespace vmtide::executor {
namespace {

using namespace std::chrono_literals;
namespace json = discovery::json;

json::Value parse(const std::string& s) {
  auto v = json::parse(s);
  EXPECT_TRUE(v) << s;
  return v ? *v : json::Value();
}

// What QEMU 10.0.2 answered at the end of a lab migration (trimmed).
constexpr const char* kCompleted = R"({"status": "completed", "setup-time": 7, "downtime": 17, "total-time": 8163,
  "ram": {"total": 268967936, "postcopy-requests": 0, "dirty-sync-count": 9, "multifd-bytes": 0,
  "pages-per-second": 8237, "downtime-bytes": 8831817, "page-size": 4096, "remaining": 0, "postcopy-bytes": 0,
  "mbps": 265.24064443354587, "transferred": 270412837, "dirty-sync-missed-zero-copy": 0,
  "precopy-bytes": 261466300, "duplicate": 25050, "dirty-pages-rate": 0, "normal-bytes": 269545472,
  "normal": 65807}})";
constexpr const char* kActive = R"({"expected-downtime": 300, "status": "active", "setup-time": 7,
  "total-time": 4847, "ram": {"total": 268967936, "dirty-sync-count": 2, "remaining": 56393728,
  "mbps": 273.9635643564356, "transferred": 162443719, "dirty-pages-rate": 2585}, "cpu-throttle-percentage": 20})";

TEST(QueryMigrate, ParsesQemuReplies) {
  auto c = parse_query_migrate(parse(kCompleted));
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->status, "completed");
  EXPECT_EQ(c->total_time_ms, 8163);
  EXPECT_EQ(c->downtime_ms, 17);
  EXPECT_EQ(c->setup_time_ms, 7);
  EXPECT_EQ(c->transferred, 270412837u);
  EXPECT_EQ(c->dirty_sync_count, 9u);
  EXPECT_EQ(c->downtime_bytes, 8831817u);
  EXPECT_EQ(c->normal_pages, 65807u);
  EXPECT_EQ(c->zero_pages, 25050u);
  EXPECT_NEAR(c->mbps, 265.24, 0.01);
  auto a = parse_query_migrate(parse(kActive));
  ASSERT_TRUE(a);
  EXPECT_EQ(a->status, "active");
  EXPECT_EQ(a->remaining, 56393728u);
  EXPECT_EQ(a->dirty_pages_rate, 2585);
  EXPECT_EQ(a->throttle_pct, 20);
  EXPECT_EQ(a->expected_downtime_ms, 300);
  EXPECT_FALSE(a->downtime_ms);
  // Before any migration QEMU answers {}.
  auto none = parse_query_migrate(parse("{}"));
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, "none");
  auto failed = parse_query_migrate(parse(R"({"status": "failed", "error-desc": "Unable to write to socket"})"));
  ASSERT_TRUE(failed);
  EXPECT_EQ(failed->error_desc, "Unable to write to socket");
}

TEST(QueryMigrate, RejectsWrongTypes) {
  for (const char* bad : {R"({"status": 3})", R"({"status": "active", "total-time": "1"})",
                          R"({"status": "active", "ram": []})", R"({"status": "active", "ram": {"transferred": true}})",
                          R"({"status": "failed", "error-desc": 5})", R"([1])",
                          // Found by fuzz_qmp_json in CI: overflowed to a negative elapsed time.
                          R"({"status": "active", "total-time": 4222222222222222222222222222222222})",
                          R"({"status": "active", "ram": {"transferred": 1e300}})",
                          // Found by fuzz_qmp_json in CI: a negative elapsed time.
                          R"({"status": "active", "total-time": -4847})", R"({"status": "completed", "downtime": -1})"}) {
    auto q = parse_query_migrate(parse(bad));
    ASSERT_FALSE(q) << bad;
    EXPECT_EQ(q.error().code, Errc::kWireType) << bad;
  }
  EXPECT_TRUE(migration_in_progress("active"));
  EXPECT_TRUE(migration_in_progress("cancelling"));
  EXPECT_TRUE(migration_in_progress("device"));
  EXPECT_FALSE(migration_in_progress("completed"));
  EXPECT_FALSE(migration_in_progress("none"));
}

TEST(QmpArguments, CommandsAsQemuTakesThem) {
  EXPECT_EQ(parse(migrate_capabilities_arguments(true)).find("capabilities")->as_array()->size(), 2u);
  EXPECT_EQ(migrate_capabilities_arguments(false),
            R"({"capabilities":[{"capability":"events","state":true},{"capability":"auto-converge","state":false}]})");
  MigrationRequest r;
  r.max_bandwidth_bytes_per_s = 32 * 1024 * 1024;
  r.downtime_limit_ms = 300;
  EXPECT_EQ(migrate_parameters_arguments(r), R"({"downtime-limit":300,"max-bandwidth":33554432})");
  r.max_bandwidth_bytes_per_s = 0;  // QEMU's default: left out (0 would mean unlimited to QEMU)
  EXPECT_EQ(migrate_parameters_arguments(r), R"({"downtime-limit":300})");
  EXPECT_EQ(migrate_arguments("tcp:10.0.0.2:4444"), R"({"uri":"tcp:10.0.0.2:4444"})");
  EXPECT_EQ(*parse(migrate_arguments("unix:/a\"b\\c")).find("uri")->as_string(), "unix:/a\"b\\c");
}

QueryMigrate q(const std::string& status) {
  QueryMigrate m;
  m.status = status;
  return m;
}

TEST(MigrationState, RunningTimeoutCancelThenFailed) {
  const auto t0 = QmpClock::time_point{} + 1000s;
  Tracked t;
  t.started = t0;
  t.req.timeout = 10s;
  QueryMigrate a = q("active");
  a.total_time_ms = 4000;
  a.transferred = 1000;
  a.remaining = 500;
  a.dirty_sync_count = 3;
  a.mbps = 80;
  Step s = advance(t, a, t0 + 4s);
  EXPECT_EQ(s.progress.state, State::kRunning);
  EXPECT_FALSE(s.cancel);
  EXPECT_EQ(s.progress.bytes, 1000u);
  EXPECT_EQ(s.progress.passes, 3u);
  EXPECT_DOUBLE_EQ(s.progress.elapsed_s, 4.0);
  EXPECT_DOUBLE_EQ(s.progress.bandwidth_bytes_per_s, 10e6);  // 80 Mbit/s
  // Past the timeout: cancel, once.
  s = advance(t, a, t0 + 10s);
  EXPECT_TRUE(s.cancel);
  EXPECT_EQ(s.progress.state, State::kRunning);
  s = advance(t, q("cancelling"), t0 + 11s);
  EXPECT_FALSE(s.cancel);
  EXPECT_EQ(s.progress.state, State::kRunning);
  s = advance(t, q("cancelled"), t0 + 12s);
  EXPECT_EQ(s.progress.state, State::kFailed);
  EXPECT_EQ(s.progress.error, "timeout: aborted after 12 s");
  // QEMU drops the RAM figures once cancelled: the last running ones stay.
  EXPECT_EQ(s.progress.bytes, 1000u);
  EXPECT_EQ(s.progress.passes, 3u);
  // Final: later answers change nothing.
  s = advance(t, q("completed"), t0 + 13s);
  EXPECT_EQ(s.progress.state, State::kFailed);
}

TEST(MigrationState, CompletedAbortedFailedAndGone) {
  const auto t0 = QmpClock::time_point{} + 5s;
  Tracked t;
  t.started = t0;
  auto done = parse_query_migrate(parse(kCompleted));
  ASSERT_TRUE(done);
  Step s = advance(t, *done, t0 + 9s);
  EXPECT_EQ(s.progress.state, State::kSucceeded);
  EXPECT_EQ(s.progress.total_ms, 8163);
  EXPECT_EQ(s.progress.downtime_ms, 17);
  EXPECT_EQ(s.progress.setup_ms, 7);
  EXPECT_EQ(s.progress.downtime_bytes, 8831817u);
  EXPECT_EQ(s.progress.bytes, 270412837u);
  EXPECT_EQ(s.progress.remaining_bytes, 0u);
  ASSERT_TRUE(t.final);

  Tracked ab;
  ab.started = t0;
  ab.aborted = true;
  EXPECT_EQ(advance(ab, q("cancelled"), t0 + 1s).progress.error, "aborted");
  Tracked other;
  other.started = t0;
  EXPECT_EQ(advance(other, q("cancelled"), t0 + 1s).progress.error, "cancelled outside vmtide");
  Tracked f;
  f.started = t0;
  QueryMigrate fq = q("failed");
  fq.error_desc = "Connection refused";
  Step fs = advance(f, fq, t0 + 1s);
  EXPECT_EQ(fs.progress.state, State::kFailed);
  EXPECT_EQ(fs.progress.error, "failed: Connection refused");
  Tracked gone;
  gone.started = t0;
  Step gs = advance(gone, q("none"), t0 + 1s);
  EXPECT_EQ(gs.progress.state, State::kFailed);
  EXPECT_NE(gs.progress.error.find("no migration"), std::string::npos);
  // An aborted migration is never cancelled again by the timeout.
  Tracked late;
  late.started = t0;
  late.req.timeout = 1s;
  late.aborted = true;
  EXPECT_FALSE(advance(late, q("active"), t0 + 5s).cancel);
}

// ---- the executor against a scripted monitor ----

// A QMP monitor in a thread, one client at a time like QEMU's: answers each
// command with `reply(cmd, args)` (a reply object without its id) and sends
// any queued events.
class ScriptedQemu {
 public:
  using Reply = std::function<std::string(const std::string& cmd, const json::Value& args)>;
  ScriptedQemu(std::string path, Reply reply) : path_(std::move(path)), reply_(std::move(reply)) {
    fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path_.c_str());
    if (bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd_, 4) != 0) std::abort();
    thread_ = std::thread([this] { run(); });
  }
  ~ScriptedQemu() {
    stop_ = true;
    thread_.join();
    close(fd_);
    unlink(path_.c_str());
  }
  void event(const std::string& name) {
    std::lock_guard<std::mutex> lk(mu_);
    events_.push_back(R"({"timestamp": {"seconds": 1, "microseconds": 2}, "event": ")" + name +
                      R"(", "data": {"status": "completed"}})");
  }
  std::vector<std::string> commands() {
    std::lock_guard<std::mutex> lk(mu_);
    return commands_;
  }

 private:
  static void send_text(int c, const std::string& s) { (void)!send(c, s.data(), s.size(), MSG_NOSIGNAL); }
  void run() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 10) <= 0) continue;
      const int c = accept(fd_, nullptr, nullptr);
      if (c < 0) continue;
      send_text(c, "{\"QMP\": {\"version\": {}, \"capabilities\": []}}\r\n");
      std::string buf;
      char chunk[4096];
      while (!stop_) {
        {
          std::lock_guard<std::mutex> lk(mu_);
          for (const auto& e : events_) send_text(c, e + "\r\n");
          events_.clear();
        }
        pollfd q{c, POLLIN, 0};
        if (poll(&q, 1, 5) <= 0) continue;
        const ssize_t n = recv(c, chunk, sizeof chunk, 0);
        if (n <= 0) break;
        buf.append(chunk, static_cast<std::size_t>(n));
        while (auto m = json::parse_prefix(buf)) {
          buf.erase(0, m->consumed);
          const std::string cmd = *m->value.find("execute")->as_string();
          const std::string id = *m->value.find("id")->as_string();
          const json::Value* a = m->value.find("arguments");
          std::string reply;
          {
            std::lock_guard<std::mutex> lk(mu_);
            commands_.push_back(cmd);
          }
          reply = cmd == "qmp_capabilities" ? "{\"return\": {}}" : reply_(cmd, a ? *a : json::Value());
          reply.insert(reply.rfind('}'), ", \"id\": \"" + id + "\"");
          send_text(c, reply + "\r\n");
        }
      }
      close(c);
    }
  }

  std::string path_;
  Reply reply_;
  int fd_ = -1;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<std::string> commands_;
  std::deque<std::string> events_;
  std::thread thread_;
};

class QmpExecutorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vmtide-qmpex.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::system(("rm -rf '" + dir_ + "'").c_str()); }

  QmpExecutorOptions options() {
    QmpExecutorOptions o;
    o.qmp_socket = [this](const std::string& host, const std::string& vm) -> Result<std::string> {
      if (host != "h1") return make_error(Errc::kInvalidArgument, "unknown host " + host);
      if (vm != "vm-1") return make_error(Errc::kNotFound, "no VM " + vm + " on " + host);
      return dir_ + "/src.qmp";
    };
    o.incoming_uri = [](const std::string& host, const std::string&) -> Result<std::string> {
      if (host != "h2") return make_error(Errc::kInvalidArgument, "unknown host " + host);
      return std::string("tcp:127.0.0.1:4444");
    };
    o.qmp_timeout = 2000ms;
    o.now = [this] { return now_; };
    return o;
  }
  MigrationRequest request() {
    MigrationRequest r;
    r.vm_id = "vm-1";
    r.src = "h1";
    r.dst = "h2";
    r.max_bandwidth_bytes_per_s = 64e6;
    r.downtime_limit_ms = 250;
    r.auto_converge = true;
    r.timeout = 30s;
    return r;
  }

  std::string dir_;
  QmpClock::time_point now_ = QmpClock::now();
  std::atomic<int> state_{0};  // 0 none, 1 active, 2 completed, 3 cancelled
};

TEST_F(QmpExecutorTest, StartPollCompleteAndForget) {
  ScriptedQemu qemu(dir_ + "/src.qmp", [this](const std::string& cmd, const json::Value& args) -> std::string {
    if (cmd == "migrate") {
      EXPECT_EQ(*args.find("uri")->as_string(), "tcp:127.0.0.1:4444");
      state_ = 1;
    }
    if (cmd == "migrate-set-parameters") {
      EXPECT_EQ(*args.find("max-bandwidth")->as_int(), 64000000);
      EXPECT_EQ(*args.find("downtime-limit")->as_int(), 250);
    }
    if (cmd == "query-migrate") {
      if (state_ == 0) return "{\"return\": {}}";
      if (state_ == 1) return std::string("{\"return\": ") + kActive + "}";
      return std::string("{\"return\": ") + kCompleted + "}";
    }
    return "{\"return\": {}}";
  });
  QmpExecutor ex(options());
  EXPECT_STREQ(ex.name(), "qmp");
  auto h = ex.start(request());
  ASSERT_TRUE(h) << h.error().message();
  EXPECT_EQ(qemu.commands(), (std::vector<std::string>{"qmp_capabilities", "query-migrate", "migrate-set-capabilities",
                                                       "migrate-set-parameters", "migrate"}));
  // The same VM again while it migrates: refused.
  auto again = ex.start(request());
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, Errc::kInvalidArgument);
  auto p = ex.poll(*h);
  ASSERT_TRUE(p) << p.error().message();
  EXPECT_EQ(p->state, State::kRunning);
  EXPECT_EQ(p->passes, 2u);
  auto r = ex.running();
  ASSERT_TRUE(r);
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].vm_id, "vm-1");
  EXPECT_EQ((*r)[0].dst, "h2");
  state_ = 2;
  p = ex.poll(*h);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->state, State::kSucceeded);
  EXPECT_EQ(p->total_ms, 8163);
  EXPECT_EQ(ex.last_query(*h)->dirty_sync_count, 9u);
  EXPECT_GE(ex.syncs(*h).size(), 2u);
  EXPECT_TRUE(ex.running()->empty());
  ex.forget(*h);
  EXPECT_EQ(ex.poll(*h).error().code, Errc::kNotFound);
}

TEST_F(QmpExecutorTest, AbortCancelsAndTimeoutCancels) {
  std::atomic<int> cancels{0};
  ScriptedQemu qemu(dir_ + "/src.qmp", [&](const std::string& cmd, const json::Value&) -> std::string {
    if (cmd == "migrate") state_ = 1;
    if (cmd == "migrate_cancel") {
      ++cancels;
      state_ = 3;
    }
    if (cmd == "query-migrate") {
      if (state_ == 0) return "{\"return\": {}}";
      if (state_ == 1) return std::string("{\"return\": ") + kActive + "}";
      return R"({"return": {"status": "cancelled"}})";
    }
    return "{\"return\": {}}";
  });
  QmpExecutor ex(options());
  auto h = ex.start(request());
  ASSERT_TRUE(h);
  ASSERT_TRUE(ex.abort(*h));
  EXPECT_EQ(cancels.load(), 1);
  auto p = ex.poll(*h);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->state, State::kFailed);
  EXPECT_EQ(p->error, "aborted");
  EXPECT_TRUE(ex.abort(*h)) << "aborting an ended migration is a no-op";
  EXPECT_EQ(cancels.load(), 1);
  ex.forget(*h);

  // A new migration past its timeout on the (injected) clock.
  state_ = 0;
  auto h2 = ex.start(request());
  ASSERT_TRUE(h2) << h2.error().message();
  now_ += 31s;
  p = ex.poll(*h2);
  ASSERT_TRUE(p);
  EXPECT_EQ(cancels.load(), 2);
  p = ex.poll(*h2);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->state, State::kFailed);
  EXPECT_EQ(p->error.rfind("timeout: aborted after 31 s", 0), 0u) << p->error;
}

TEST_F(QmpExecutorTest, WaitReturnsOnTheMigrationEvent) {
  ScriptedQemu* self = nullptr;
  ScriptedQemu qemu(dir_ + "/src.qmp", [&](const std::string& cmd, const json::Value&) -> std::string {
    if (cmd == "migrate") state_ = 1;
    if (cmd == "query-migrate") {
      if (state_ == 0) return "{\"return\": {}}";
      if (state_ == 1) {
        // QEMU finishes between two polls and says so with an event.
        state_ = 2;
        self->event("MIGRATION");
        return std::string("{\"return\": ") + kActive + "}";
      }
      return std::string("{\"return\": ") + kCompleted + "}";
    }
    return "{\"return\": {}}";
  });
  self = &qemu;
  auto o = options();
  o.now = [] { return QmpClock::now(); };
  QmpExecutor ex(o);
  auto h = ex.start(request());
  ASSERT_TRUE(h);
  const auto t0 = QmpClock::now();
  // A 10 s poll period: only the event can end the wait early.
  auto p = ex.wait(*h, t0 + 20s, 10s);
  ASSERT_TRUE(p) << p.error().message();
  EXPECT_EQ(p->state, State::kSucceeded);
  EXPECT_LT(QmpClock::now() - t0, 5s);
}

TEST_F(QmpExecutorTest, ErrorsFromLookupsAndQemu) {
  QmpExecutor ex(options());
  MigrationRequest r = request();
  r.src = "nowhere";
  EXPECT_EQ(ex.start(r).error().code, Errc::kInvalidArgument);
  r = request();
  r.dst = r.src;
  EXPECT_EQ(ex.start(r).error().code, Errc::kInvalidArgument);
  r = request();
  r.vm_id = "vm-2";
  EXPECT_EQ(ex.start(r).error().code, Errc::kNotFound);
  // The VM's monitor is not there (QEMU gone): not found.
  EXPECT_EQ(ex.start(request()).error().code, Errc::kNotFound);
  {
    // QEMU refuses the migration: kIo with its reason.
    ScriptedQemu qemu(dir_ + "/src.qmp", [](const std::string& cmd, const json::Value&) -> std::string {
      if (cmd == "migrate") return R"({"error": {"class": "GenericError", "desc": "disk not shared"}})";
      return "{\"return\": {}}";
    });
    auto h = ex.start(request());
    ASSERT_FALSE(h);
    EXPECT_EQ(h.error().code, Errc::kIo);
    EXPECT_NE(h.error().context.find("disk not shared"), std::string::npos) << h.error().context;
  }
  {
    // Already migrating (someone else started it): refused, and running()
    // with known_vms adopts it.
    ScriptedQemu qemu(dir_ + "/src.qmp", [](const std::string& cmd, const json::Value&) -> std::string {
      if (cmd == "query-migrate") return std::string("{\"return\": ") + kActive + "}";
      return "{\"return\": {}}";
    });
    EXPECT_EQ(ex.start(request()).error().code, Errc::kInvalidArgument);
    auto o = options();
    o.known_vms = [] { return std::vector<std::pair<std::string, std::string>>{{"h1", "vm-1"}}; };
    QmpExecutor adopt(o);
    auto r2 = adopt.running();
    ASSERT_TRUE(r2);
    ASSERT_EQ(r2->size(), 1u);
    EXPECT_EQ((*r2)[0].src, "h1");
    EXPECT_TRUE((*r2)[0].dst.empty());
    auto p = adopt.poll((*r2)[0].handle);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->state, State::kRunning);
    EXPECT_EQ(adopt.running()->size(), 1u) << "adopted once, not again";
  }
}

}  // namespace
}  // namespace vmtide::executor
