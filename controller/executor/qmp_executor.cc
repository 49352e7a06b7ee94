// SPDX-License-Identifier: Apache-2.0
// The QMP executor (qmp_executor.h). The commands and fields are QEMU's
// qapi/migration.json; the statuses and what they mean are MigrationStatus
// in the same file and migrate_set_state() in migration/migration.c.
#include "qmp_executor.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace vmtide::executor {
namespace json = discovery::json;

namespace {

std::string json_string(const std::string& s) {
  std::string o = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      o += '\\';
      o += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      o += buf;
    } else {
      o += c;
    }
  }
  return o + "\"";
}

// A number field of `obj`, or kWireType when it holds something else.
Result<std::optional<double>> number(const json::Value& obj, const char* key, const char* where) {
  const json::Value* v = obj.find(key);
  if (v == nullptr) return std::optional<double>();
  auto d = v->as_double();
  if (!d || !std::isfinite(*d)) {
    return make_error(Errc::kWireType, std::string("query-migrate: ") + where + key + " is not a number");
  }
  // QEMU's fields are 64-bit integers (or small doubles): anything beyond
  // +-2^62 is a broken reply, and would overflow the integer conversions
  // below (found by fuzz_qmp_json: a 66-digit total-time became negative).
  if (std::fabs(*d) > 4.6e18) {
    return make_error(Errc::kWireType, std::string("query-migrate: ") + where + key + " is out of range");
  }
  return std::optional<double>(*d);
}

std::uint64_t to_u64(double d) { return d <= 0 ? 0 : static_cast<std::uint64_t>(std::llround(d)); }

double seconds_between(QmpClock::time_point a, QmpClock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

}  // namespace

Result<QueryMigrate> parse_query_migrate(const json::Value& ret) {
  if (!ret.is_object()) return make_error(Errc::kWireType, "query-migrate: the reply is not an object");
  QueryMigrate q;
  if (const json::Value* s = ret.find("status")) {
    if (s->as_string() == nullptr) return make_error(Errc::kWireType, "query-migrate: status is not a string");
    q.status = *s->as_string();
  } else {
    q.status = "none";  // fill_source_migration_info(): nothing at all before the first migration
  }
  struct Top {
    const char* key;
    std::optional<std::int64_t>* out;
  };
  for (const Top& f : {Top{"total-time", &q.total_time_ms}, Top{"downtime", &q.downtime_ms},
                       Top{"setup-time", &q.setup_time_ms}, Top{"expected-downtime", &q.expected_downtime_ms}}) {
    auto v = number(ret, f.key, "");
    if (!v) return std::move(v).error();
    // Times in milliseconds are never negative in QEMU; a negative one is
    // a broken reply (found by fuzz_qmp_json: total-time -4847 made the
    // elapsed time negative).
    if (*v && **v < 0) return make_error(Errc::kWireType, std::string("query-migrate: ") + f.key + " is negative");
    if (*v) *f.out = static_cast<std::int64_t>(std::llround(**v));
  }
  auto throttle = number(ret, "cpu-throttle-percentage", "");
  if (!throttle) return std::move(throttle).error();
  q.throttle_pct = throttle->value_or(0);
  if (const json::Value* e = ret.find("error-desc")) {
    if (e->as_string() == nullptr) return make_error(Errc::kWireType, "query-migrate: error-desc is not a string");
    q.error_desc = *e->as_string();
  }
  if (const json::Value* ram = ret.find("ram")) {
    if (!ram->is_object()) return make_error(Errc::kWireType, "query-migrate: ram is not an object");
    struct U {
      const char* key;
      std::uint64_t* out;
    };
    for (const U& f : {U{"transferred", &q.transferred}, U{"remaining", &q.remaining}, U{"total", &q.ram_total},
                       U{"dirty-sync-count", &q.dirty_sync_count}, U{"downtime-bytes", &q.downtime_bytes},
                       U{"normal", &q.normal_pages}, U{"duplicate", &q.zero_pages}}) {
      auto v = number(*ram, f.key, "ram.");
      if (!v) return std::move(v).error();
      if (*v) *f.out = to_u64(**v);
    }
    auto rate = number(*ram, "dirty-pages-rate", "ram.");
    if (!rate) return std::move(rate).error();
    q.dirty_pages_rate = rate->value_or(0);
    auto mbps = number(*ram, "mbps", "ram.");
    if (!mbps) return std::move(mbps).error();
    q.mbps = mbps->value_or(0);
  }
  return q;
}

bool migration_in_progress(const std::string& s) {
  return s == "setup" || s == "active" || s == "pre-switchover" || s == "device" || s == "wait-unplug" ||
         s == "cancelling" || s == "postcopy-active" || s == "postcopy-paused" || s == "postcopy-recover-setup" ||
         s == "postcopy-recover" || s == "colo";
}

std::string migrate_capabilities_arguments(bool auto_converge) {
  // "events" makes QEMU send MIGRATION (status changes) and MIGRATION_PASS
  // (each dirty-bitmap sync), which wait() awaits instead of polling.
  return std::string(R"({"capabilities":[{"capability":"events","state":true},)") +
         R"({"capability":"auto-converge","state":)" + (auto_converge ? "true" : "false") + "}]}";
}

std::string migrate_parameters_arguments(const MigrationRequest& req) {
  // QEMU takes max-bandwidth in bytes/s and downtime-limit in ms, both
  // integers. max-bandwidth 0 would mean "no limit" to QEMU; the request's
  // 0 means "QEMU's default", so it is left out.
  std::string a = "{\"downtime-limit\":" + std::to_string(std::llround(std::max(0.0, req.downtime_limit_ms)));
  if (req.max_bandwidth_bytes_per_s > 0) {
    a += ",\"max-bandwidth\":" + std::to_string(std::llround(req.max_bandwidth_bytes_per_s));
  }
  return a + "}";
}

std::string migrate_arguments(const std::string& uri) { return "{\"uri\":" + json_string(uri) + "}"; }

Step advance(Tracked& t, const QueryMigrate& q, QmpClock::time_point now) {
  Step s;
  if (t.final) {
    s.progress = *t.final;
    return s;
  }
  Progress& p = s.progress;
  p.elapsed_s = q.total_time_ms ? static_cast<double>(*q.total_time_ms) / 1000.0 : seconds_between(t.started, now);
  p.bytes = q.transferred;
  p.remaining_bytes = q.remaining;
  p.passes = q.dirty_sync_count;
  p.dirty_pages_per_s = q.dirty_pages_rate;
  p.bandwidth_bytes_per_s = q.mbps * 1e6 / 8.0;  // QEMU's mbps: 10^6 bit/s
  const double waited_s = seconds_between(t.started, now);
  if (q.status == "completed") {
    p.state = State::kSucceeded;
    p.total_ms = q.total_time_ms ? static_cast<double>(*q.total_time_ms) : waited_s * 1000.0;
    p.downtime_ms = q.downtime_ms ? static_cast<double>(*q.downtime_ms) : 0;
    p.setup_ms = q.setup_time_ms ? static_cast<double>(*q.setup_time_ms) : 0;
    p.downtime_bytes = q.downtime_bytes;
    p.remaining_bytes = 0;
  } else if (q.status == "failed") {
    p.state = State::kFailed;
    p.error = "failed: " + (q.error_desc.empty() ? std::string("QEMU gave no reason") : q.error_desc);
  } else if (q.status == "cancelled") {
    p.state = State::kFailed;
    if (t.timed_out) {
      char buf[96];
      std::snprintf(buf, sizeof buf, "timeout: aborted after %.0f s", waited_s);
      p.error = buf;
    } else {
      p.error = t.aborted ? "aborted" : "cancelled outside vmtide";
    }
  } else if (!migration_in_progress(q.status)) {
    // "none" (the source QEMU knows of no migration: it restarted) or a
    // status newer than this code.
    p.state = State::kFailed;
    p.error = "the source reports no migration (status '" + q.status + "')";
  } else {
    p.state = State::kRunning;
    if (!t.aborted && !t.timed_out && now - t.started >= t.req.timeout && q.status != "cancelling") {
      t.timed_out = true;
      s.cancel = true;
    }
  }
  if (p.state != State::kSucceeded && q.transferred == 0 && t.last.bytes > 0) {
    // QEMU reports no RAM statistics once cancelling or cancelled: what was
    // sent is what the last poll with them saw.
    p.bytes = t.last.bytes;
    p.remaining_bytes = t.last.remaining_bytes;
    p.passes = t.last.passes;
    p.dirty_pages_per_s = t.last.dirty_pages_per_s;
    p.bandwidth_bytes_per_s = t.last.bandwidth_bytes_per_s;
    p.elapsed_s = std::max(waited_s, t.last.elapsed_s);
  }
  if (p.state != State::kRunning) {
    p.elapsed_s = std::max(p.elapsed_s, p.total_ms / 1000.0);
    t.final = p;
  } else {
    t.last = p;
  }
  return s;
}

// ---- the executor ----

struct QmpExecutor::Migration {
  Tracked t;
  std::string handle;
  std::string socket;
  std::optional<discovery::QmpClient> qmp;
  std::optional<QueryMigrate> last;
  std::vector<SyncMark> syncs;
};

QmpExecutor::QmpExecutor(QmpExecutorOptions opts) : opts_(std::move(opts)) {}
QmpExecutor::~QmpExecutor() = default;

Status QmpExecutor::ensure_connected(Migration& m) {
  if (m.qmp) return {};
  auto c = discovery::QmpClient::connect(m.socket, opts_.now() + opts_.qmp_timeout);
  if (!c) return std::move(c).error();
  m.qmp.emplace(std::move(c).value());
  return {};
}

Result<std::string> QmpExecutor::start(const MigrationRequest& req) {
  if (!opts_.qmp_socket || !opts_.incoming_uri) {
    return make_error(Errc::kInvalidArgument, "qmp executor: no qmp_socket or incoming_uri lookup configured");
  }
  if (req.vm_id.empty() || req.src.empty() || req.dst.empty() || req.src == req.dst) {
    return make_error(Errc::kInvalidArgument, "qmp executor: a migration needs a VM and two different hosts");
  }
  if (!(req.timeout.count() > 0) || !std::isfinite(req.max_bandwidth_bytes_per_s) ||
      req.max_bandwidth_bytes_per_s < 0 || !std::isfinite(req.downtime_limit_ms) || req.downtime_limit_ms < 0) {
    return make_error(Errc::kInvalidArgument, "qmp executor: bad timeout, bandwidth or downtime limit");
  }
  std::lock_guard<std::mutex> lk(mu_);
  for (const auto& [h, m] : migrations_) {
    if (m->t.req.vm_id == req.vm_id && !m->t.final) {
      return make_error(Errc::kInvalidArgument, "qmp executor: " + req.vm_id + " is already migrating (" + h + ")");
    }
  }
  auto sock = opts_.qmp_socket(req.src, req.vm_id);
  if (!sock) return std::move(sock).error();
  auto uri = opts_.incoming_uri(req.dst, req.vm_id);
  if (!uri) return std::move(uri).error();

  auto m = std::make_unique<Migration>();
  m->t.req = req;
  m->socket = *sock;
  if (Status st = ensure_connected(*m); !st) {
    // No monitor at that path: the VM is not (or no longer) there.
    if (st.error().code == Errc::kIo) return make_error(Errc::kNotFound, st.error().context);
    return st.error();
  }
  const auto deadline = opts_.now() + opts_.qmp_timeout;
  auto before = m->qmp->execute("query-migrate", "", deadline);
  if (!before) return std::move(before).error();
  auto q = parse_query_migrate(*before);
  if (!q) return make_error(Errc::kIo, "qmp executor: " + q.error().message());
  if (migration_in_progress(q->status)) {
    return make_error(Errc::kInvalidArgument,
                      "qmp executor: " + req.vm_id + " on " + req.src + " is already migrating (" + q->status + ")");
  }
  for (const auto& [cmd, args] : {std::pair<const char*, std::string>{
                                      "migrate-set-capabilities", migrate_capabilities_arguments(req.auto_converge)},
                                  {"migrate-set-parameters", migrate_parameters_arguments(req)},
                                  {"migrate", migrate_arguments(*uri)}}) {
    if (cmd == std::string("migrate")) m->t.started = opts_.now();
    auto r = m->qmp->execute(cmd, args, opts_.now() + opts_.qmp_timeout);
    if (!r)
      return make_error(Errc::kIo, "qmp executor: " + std::string(cmd) + " on " + req.src + ": " + r.error().context);
  }
  m->handle = "qmp:" + req.src + ":" + req.vm_id + ":" + std::to_string(next_++);
  const std::string h = m->handle;
  migrations_.emplace(h, std::move(m));
  return h;
}

Result<Progress> QmpExecutor::poll_locked(Migration& m) {
  if (m.t.final) return *m.t.final;
  if (Status st = ensure_connected(m); !st) return st.error();
  auto r = m.qmp->execute("query-migrate", "", opts_.now() + opts_.qmp_timeout);
  if (!r) {
    m.qmp.reset();  // reconnect next time: the monitor may have dropped us
    return std::move(r).error();
  }
  auto q = parse_query_migrate(*r);
  if (!q) return make_error(Errc::kIo, "qmp executor: " + q.error().message());
  const auto now = opts_.now();
  if (m.syncs.empty() || m.syncs.back().sync_count != q->dirty_sync_count) {
    m.syncs.push_back({seconds_between(m.t.started, now), q->dirty_sync_count, q->transferred, q->throttle_pct,
                       q->dirty_pages_rate});
  }
  m.last = *q;
  Step s = advance(m.t, *q, now);
  if (s.cancel) {
    auto c = m.qmp->execute("migrate_cancel", "", opts_.now() + opts_.qmp_timeout);
    if (!c) {
      // Retried on the next poll: the timeout still stands.
      m.t.timed_out = false;
      m.qmp.reset();
      return std::move(c).error();
    }
  }
  return s.progress;
}

Result<Progress> QmpExecutor::poll(const std::string& handle) {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = migrations_.find(handle);
  if (it == migrations_.end()) return make_error(Errc::kNotFound, "qmp executor: no migration " + handle);
  return poll_locked(*it->second);
}

Status QmpExecutor::abort(const std::string& handle) {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = migrations_.find(handle);
  if (it == migrations_.end()) return make_error(Errc::kNotFound, "qmp executor: no migration " + handle);
  Migration& m = *it->second;
  if (m.t.final) return {};  // already over: nothing to cancel
  if (Status st = ensure_connected(m); !st) return st.error();
  auto c = m.qmp->execute("migrate_cancel", "", opts_.now() + opts_.qmp_timeout);
  if (!c) {
    m.qmp.reset();
    return make_error(Errc::kIo, "qmp executor: migrate_cancel: " + c.error().context);
  }
  m.t.aborted = true;
  return {};
}

void QmpExecutor::forget(const std::string& handle) {
  std::lock_guard<std::mutex> lk(mu_);
  migrations_.erase(handle);
}

Result<std::vector<Running>> QmpExecutor::running() {
  std::lock_guard<std::mutex> lk(mu_);
  std::vector<Running> out;
  for (auto& [h, m] : migrations_) {
    if (!m->t.final) out.push_back({m->t.req.vm_id, m->t.req.src, m->t.req.dst, h});
  }
  if (!opts_.known_vms || !opts_.qmp_socket) return out;
  for (const auto& known : opts_.known_vms()) {
    const std::string& host = known.first;
    const std::string& vm = known.second;
    const bool mine = std::any_of(migrations_.begin(), migrations_.end(), [&](const auto& e) {
      return e.second->t.req.vm_id == vm && e.second->t.req.src == host && !e.second->t.final;
    });
    if (mine) continue;
    auto sock = opts_.qmp_socket(host, vm);
    if (!sock) continue;
    auto c = discovery::QmpClient::connect(*sock, opts_.now() + opts_.qmp_timeout);
    if (!c) continue;  // busy or gone: asked again on the next call
    auto r = c->execute("query-migrate", "", opts_.now() + opts_.qmp_timeout);
    if (!r) continue;
    auto q = parse_query_migrate(*r);
    if (!q || !migration_in_progress(q->status)) continue;
    // Adopt it, so the controller can follow and abort it like its own.
    auto m = std::make_unique<Migration>();
    m->t.req.vm_id = vm;
    m->t.req.src = host;
    m->t.started = opts_.now() - std::chrono::milliseconds(q->total_time_ms.value_or(0));
    m->socket = *sock;
    m->handle = "qmp:" + host + ":" + vm + ":" + std::to_string(next_++);
    out.push_back({vm, host, "", m->handle});
    migrations_.emplace(m->handle, std::move(m));
  }
  return out;
}

Result<Progress> QmpExecutor::wait(const std::string& handle, QmpClock::time_point deadline,
                                   std::chrono::milliseconds period) {
  std::unique_lock<std::mutex> lk(mu_);
  auto it = migrations_.find(handle);
  if (it == migrations_.end()) return make_error(Errc::kNotFound, "qmp executor: no migration " + handle);
  Migration& m = *it->second;
  while (true) {
    auto p = poll_locked(m);
    if (!p) return p;
    if (p->state != State::kRunning || opts_.now() >= deadline) return p;
    // Until the next poll, wake early for a MIGRATION event (a status
    // change, e.g. completed): the end is seen when it happens.
    const auto until = std::min(deadline, opts_.now() + period);
    while (m.qmp && opts_.now() < until) {
      auto ev = m.qmp->next_event(until);
      if (!ev) {
        m.qmp.reset();
        break;
      }
      if (!*ev) break;
      const json::Value* name = (*ev)->find("event");
      if (name != nullptr && name->as_string() != nullptr && *name->as_string() == "MIGRATION") break;
    }
  }
}

std::optional<QueryMigrate> QmpExecutor::last_query(const std::string& handle) const {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = migrations_.find(handle);
  if (it == migrations_.end()) return std::nullopt;
  return it->second->last;
}

std::vector<SyncMark> QmpExecutor::syncs(const std::string& handle) const {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = migrations_.find(handle);
  if (it == migrations_.end()) return {};
  return it->second->syncs;
}

}  // namespace vmtide::executor
