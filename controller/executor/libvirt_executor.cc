// SPDX-License-Identifier: Apache-2.0
// The libvirt executor (libvirt_executor.h). Per migration two threads: a
// worker blocked in virDomainMigrateToURI3 and a monitor that sets the
// downtime limit once the job exists and aborts it at the deadline. libvirt
// errors are thread-local, so each thread reads its own message right after
// the call that failed. Nothing here throws across the interface.
#include "libvirt_executor.h"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <optional>
#include <set>
#include <string_view>
#include <thread>
#include <utility>

#include "vmtide/libvirt_event_loop.h"

namespace vmtide::executor {

namespace {

using Clock = std::chrono::steady_clock;

std::string last_error() {
  const char* m = virGetLastErrorMessage();
  return m != nullptr ? m : "unknown libvirt error";
}

int last_error_code() {
  virErrorPtr e = virGetLastError();
  return e != nullptr ? e->code : VIR_ERR_OK;
}

bool get_u64(const virTypedParameter* params, int n, const char* name, std::uint64_t* out) {
  for (int i = 0; i < n; ++i) {
    const virTypedParameter& p = params[i];
    if (std::string_view(p.field) != name) continue;
    switch (p.type) {
      case VIR_TYPED_PARAM_INT:
        *out = p.value.i < 0 ? 0 : static_cast<std::uint64_t>(p.value.i);
        return true;
      case VIR_TYPED_PARAM_UINT:
        *out = p.value.ui;
        return true;
      case VIR_TYPED_PARAM_LLONG:
        *out = p.value.l < 0 ? 0 : static_cast<std::uint64_t>(p.value.l);
        return true;
      case VIR_TYPED_PARAM_ULLONG:
        *out = p.value.ul;
        return true;
      default:
        return false;
    }
  }
  return false;
}

std::string seconds_text(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", s);
  return buf;
}

// A virDomainPtr with its reference released on scope exit.
struct DomainRef {
  virDomainPtr d = nullptr;
  DomainRef() = default;
  explicit DomainRef(virDomainPtr p) : d(p) {}
  DomainRef(DomainRef&& o) noexcept : d(std::exchange(o.d, nullptr)) {}
  DomainRef& operator=(DomainRef&& o) noexcept {
    std::swap(d, o.d);
    return *this;
  }
  ~DomainRef() {
    if (d != nullptr) virDomainFree(d);
  }
};

// Job statistics of `dom` (live, or the last completed job's), or nullopt
// with the libvirt message in *err. Also returns the job type.
std::optional<Progress> job_stats(virDomainPtr dom, unsigned int flags, int* type, std::string* err,
                                  int* operation = nullptr) {
  virTypedParameterPtr params = nullptr;
  int n = 0;
  if (virDomainGetJobStats(dom, type, &params, &n, flags) != 0) {
    if (err != nullptr) *err = last_error();
    return std::nullopt;
  }
  Progress p = progress_from_job_stats(params, n, (flags & VIR_DOMAIN_JOB_STATS_COMPLETED) != 0);
  if (operation != nullptr) {
    std::uint64_t op = 0;
    *operation = get_u64(params, n, VIR_DOMAIN_JOB_OPERATION, &op) ? static_cast<int>(op) : -1;
  }
  virTypedParamsFree(params, n);
  return p;
}

constexpr unsigned int kCompleted = VIR_DOMAIN_JOB_STATS_COMPLETED | VIR_DOMAIN_JOB_STATS_KEEP_COMPLETED;

// One connection per host, opened on demand, reopened once libvirt says it
// is dead. get() hands out a reference of its own (virConnectClose it).
class HostConn {
 public:
  HostConn(std::string name, LibvirtHost host, LibvirtExecutorOptions opts)
      : name_(std::move(name)), host_(std::move(host)), opts_(opts) {}
  ~HostConn() {
    if (conn_ != nullptr) virConnectClose(conn_);
  }
  const std::string& name() const { return name_; }
  const LibvirtHost& host() const { return host_; }

  // No libvirt call under mu_ but the reference count: virConnectOpen to an
  // unreachable host blocks for as long as TCP or SSH try, and libvirt
  // takes locks of its own and GLib's inside; holding mu_ meanwhile would
  // stall every other caller (monitor threads, running()) and order our
  // mutex before libvirt's locks. Two threads may open at once: the first
  // to come back is cached, the other's connection serves its caller only.
  Result<virConnectPtr> get() {
    virConnectPtr c = nullptr;
    {
      std::lock_guard<std::mutex> lk(mu_);
      c = conn_;
      if (c != nullptr) virConnectRef(c);  // an atomic reference count
    }
    if (c != nullptr) {
      if (virConnectIsAlive(c) == 1) return c;
      virConnectPtr dead = nullptr;
      {
        std::lock_guard<std::mutex> lk(mu_);
        if (conn_ == c) std::swap(dead, conn_);  // unless another thread replaced it already
      }
      if (dead != nullptr) virConnectClose(dead);  // the cache's reference
      virConnectClose(c);                          // ours
    }
    c = virConnectOpen(host_.uri.c_str());
    if (c == nullptr) return make_error(Errc::kIo, "host " + name_ + " (" + host_.uri + "): " + last_error());
    // Fails only where keepalive cannot work (a local driver): harmless.
    (void)virConnectSetKeepAlive(c, static_cast<int>(opts_.keepalive_interval.count()), opts_.keepalive_count);
    std::lock_guard<std::mutex> lk(mu_);
    if (conn_ == nullptr) {
      conn_ = c;
      virConnectRef(c);  // the cache's reference; the caller closes its own
    }
    return c;
  }

  // The active domain `uuid` on this host, or kNotFound.
  Result<DomainRef> active_domain(const std::string& uuid) {
    auto c = get();
    if (!c) return c.error();
    virDomainPtr d = virDomainLookupByUUIDString(*c, uuid.c_str());
    std::string err = d == nullptr ? last_error() : "";
    const int code = d == nullptr ? last_error_code() : VIR_ERR_OK;
    virConnectClose(*c);
    if (d == nullptr) {
      return make_error(code == VIR_ERR_NO_DOMAIN ? Errc::kNotFound : Errc::kIo,
                        "VM " + uuid + " on " + name_ + ": " + err);
    }
    DomainRef ref(d);
    const int active = virDomainIsActive(d);
    if (active < 0) return make_error(Errc::kIo, "VM " + uuid + " on " + name_ + ": " + last_error());
    if (active == 0) return make_error(Errc::kNotFound, "VM " + uuid + " is defined on " + name_ + " but not running");
    return ref;
  }

 private:
  std::string name_;
  LibvirtHost host_;
  LibvirtExecutorOptions opts_;
  std::mutex mu_;
  virConnectPtr conn_ = nullptr;
};

// One migration, shared by the executor's table and its threads (which
// may outlive the table entry: forget(), or the executor's destruction).
struct Migration {
  MigrationRequest req;
  std::string handle;
  bool adopted = false;  // found by running(), started by someone else
  std::shared_ptr<HostConn> src, dst;
  DomainRef dom;  // on src
  Clock::time_point started;

  std::mutex mu;
  std::condition_variable cv;
  bool finished = false;
  bool timed_out = false;
  bool abort_requested = false;
  std::string abort_reason;  // why the executor asked libvirt to abort
  bool stop_monitor = false;
  Progress progress;  // last live figures; final once finished
  std::thread worker, monitor;

  double wall_s() const { return std::chrono::duration<double>(Clock::now() - started).count(); }
};

// The worker: the blocking migration call, then the final figures.
void run_migration(const std::shared_ptr<Migration>& m, unsigned long flags) {
  virTypedParameterPtr params = nullptr;
  int n = 0, max = 0;
  bool params_ok = true;
  if (const std::uint64_t mib = bandwidth_mib_per_s(m->req.max_bandwidth_bytes_per_s); mib > 0) {
    params_ok = virTypedParamsAddULLong(&params, &n, &max, VIR_MIGRATE_PARAM_BANDWIDTH, mib) == 0;
  }
  const LibvirtHost& dh = m->dst->host();
  if (params_ok && !dh.migrate_uri.empty()) {
    params_ok = virTypedParamsAddString(&params, &n, &max, VIR_MIGRATE_PARAM_URI, dh.migrate_uri.c_str()) == 0;
  }
  const std::string dconnuri = dh.peer_uri.empty() ? dh.uri : dh.peer_uri;
  int rc = -1;
  std::string err;
  if (params_ok) {
    rc = virDomainMigrateToURI3(m->dom.d, dconnuri.c_str(), params, static_cast<unsigned int>(n), flags);
    if (rc != 0) err = last_error();
  } else {
    err = "building migration parameters: " + last_error();
  }
  virTypedParamsFree(params, n);

  // Final figures: after success the source has forgotten the domain (it
  // is undefined there), and libvirt hands the statistics to the
  // destination with the migration cookie; after a failure the source
  // keeps the failed job's statistics. KEEP_COMPLETED leaves them for an
  // operator's `virsh domjobinfo --completed`.
  // The operation check keeps an older job's statistics (an earlier
  // incoming migration of the same VM) out of this one's.
  std::optional<Progress> fin;
  int type = 0, op = -1;
  if (rc == 0) {
    if (auto d = m->dst->active_domain(m->req.vm_id)) fin = job_stats(d->d, kCompleted, &type, nullptr, &op);
    if (op != VIR_DOMAIN_JOB_OPERATION_MIGRATION_IN) fin.reset();
  } else {
    fin = job_stats(m->dom.d, kCompleted, &type, nullptr, &op);
    if (op != VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT || (fin && fin->bytes == 0)) fin.reset();
  }

  std::lock_guard<std::mutex> lk(m->mu);
  Progress& p = m->progress;
  if (fin) p = *fin;
  // elapsed_s is the controller's view (since start(), setup included);
  // total_ms libvirt's own job time when it has one.
  p.elapsed_s = m->wall_s();
  if (p.total_ms == 0) p.total_ms = p.elapsed_s * 1000;
  if (rc == 0) {
    p.state = State::kSucceeded;
    p.error.clear();
    p.remaining_bytes = 0;
  } else {
    p.state = State::kFailed;
    if (m->timed_out) {
      p.error = "timeout: aborted after " + seconds_text(std::chrono::duration<double>(m->req.timeout).count()) + " (" +
                err + ")";
    } else if (m->abort_requested) {
      p.error = m->abort_reason + " (" + err + ")";
    } else {
      p.error = err;
    }
  }
  m->finished = true;
  m->cv.notify_all();
}

// The monitor: downtime limit as soon as the job exists (libvirt 11 has no
// migration parameter for it, and before the job there is nothing to set
// it on), then the deadline. Aborts are retried while libvirt answers that
// no job is active yet (a timeout shorter than the job's start).
void monitor_migration(const std::shared_ptr<Migration>& m, std::chrono::milliseconds job_poll) {
  const auto deadline = m->started + m->req.timeout;
  bool downtime_set = false;
  std::unique_lock<std::mutex> lk(m->mu);
  for (;;) {
    const bool want_abort = m->abort_requested || m->timed_out;
    if (!downtime_set || want_abort) {
      m->cv.wait_for(lk, job_poll, [&] { return m->finished || m->stop_monitor; });
    } else {
      m->cv.wait_until(lk, deadline, [&] { return m->finished || m->stop_monitor || m->abort_requested; });
    }
    if (m->finished || m->stop_monitor) return;
    if (!m->timed_out && Clock::now() >= deadline) m->timed_out = true;
    if (m->timed_out || m->abort_requested) {
      lk.unlock();
      const bool aborted = virDomainAbortJob(m->dom.d) == 0;
      lk.lock();
      if (aborted) {
        // The worker reports the end; wait for it without polling.
        m->cv.wait(lk, [&] { return m->finished || m->stop_monitor; });
        return;
      }
      continue;
    }
    if (!downtime_set) {
      lk.unlock();
      virDomainJobInfo info{};
      const bool started = virDomainGetJobInfo(m->dom.d, &info) == 0 && info.type != VIR_DOMAIN_JOB_NONE;
      std::string err;
      bool set_failed = false;
      if (started) {
        const auto ms = static_cast<unsigned long long>(std::llround(std::max(1.0, m->req.downtime_limit_ms)));
        if (virDomainMigrateSetMaxDowntime(m->dom.d, ms, 0) != 0) {
          set_failed = true;
          err = last_error();
        }
      }
      lk.lock();
      if (started) downtime_set = true;
      // The planner accepted this migration for this downtime limit; one
      // that would switch over with another limit is not the one it chose.
      if (set_failed && !m->finished && !m->abort_requested) {
        m->abort_requested = true;
        m->abort_reason = "aborted: the downtime limit could not be set: " + err;
      }
    }
  }
}

}  // namespace

unsigned long migration_flags(const MigrationRequest& req) noexcept {
  // LIVE: pre-copy while the guest runs. PEER2PEER: the source libvirtd
  // talks to the destination itself, so a controller crash does not strand
  // the job. PERSIST_DEST + UNDEFINE_SOURCE: the definition moves with the
  // VM, so it is never defined (and autostartable) on two hosts. Never
  // POSTCOPY: after a post-copy switch-over a failure loses the VM, while
  // a failed pre-copy leaves it running on the source. ABORT_ON_ERROR:
  // an I/O error pauses and fails the migration instead of carrying a
  // paused VM over.
  unsigned long f = VIR_MIGRATE_LIVE | VIR_MIGRATE_PEER2PEER | VIR_MIGRATE_PERSIST_DEST | VIR_MIGRATE_UNDEFINE_SOURCE |
                    VIR_MIGRATE_ABORT_ON_ERROR;
  if (req.auto_converge) f |= VIR_MIGRATE_AUTO_CONVERGE;
  return f;
}

std::uint64_t bandwidth_mib_per_s(double bytes_per_s) noexcept {
  if (!(bytes_per_s > 0)) return 0;
  return std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::ceil(bytes_per_s / (1024.0 * 1024.0))));
}

Progress progress_from_job_stats(const _virTypedParameter* params, int n, bool completed) {
  Progress p;
  std::uint64_t v = 0;
  if (get_u64(params, n, VIR_DOMAIN_JOB_TIME_ELAPSED, &v)) p.elapsed_s = static_cast<double>(v) / 1000.0;
  if (get_u64(params, n, VIR_DOMAIN_JOB_MEMORY_PROCESSED, &v)) p.bytes = v;
  if (get_u64(params, n, VIR_DOMAIN_JOB_MEMORY_REMAINING, &v)) p.remaining_bytes = v;
  if (get_u64(params, n, VIR_DOMAIN_JOB_MEMORY_ITERATION, &v)) p.passes = v;
  if (get_u64(params, n, VIR_DOMAIN_JOB_MEMORY_DIRTY_RATE, &v)) p.dirty_pages_per_s = static_cast<double>(v);
  if (get_u64(params, n, VIR_DOMAIN_JOB_MEMORY_BPS, &v)) p.bandwidth_bytes_per_s = static_cast<double>(v);
  if (completed) {
    if (get_u64(params, n, VIR_DOMAIN_JOB_DOWNTIME, &v)) p.downtime_ms = static_cast<double>(v);
    if (get_u64(params, n, VIR_DOMAIN_JOB_SETUP_TIME, &v)) p.setup_ms = static_cast<double>(v);
    p.total_ms = p.elapsed_s * 1000.0;
  }
  return p;
}

struct LibvirtExecutor::Impl {
  LibvirtExecutorOptions opts;
  std::map<std::string, std::shared_ptr<HostConn>> hosts;

  std::mutex mu;
  std::map<std::string, std::shared_ptr<Migration>> migrations;  // by handle
  std::vector<std::shared_ptr<Migration>> retired;               // forgotten while running
  std::uint64_t next_id = 0;

  std::string new_handle(const std::string& vm_id) { return "libvirt-" + std::to_string(++next_id) + "-" + vm_id; }

  std::shared_ptr<Migration> find(const std::string& handle) {
    std::lock_guard<std::mutex> lk(mu);
    auto it = migrations.find(handle);
    return it == migrations.end() ? nullptr : it->second;
  }

  // An unfinished migration of `vm_id` this executor knows (call with mu).
  std::shared_ptr<Migration> in_flight(const std::string& vm_id) {
    for (auto& [h, m] : migrations) {
      std::lock_guard<std::mutex> lk(m->mu);
      if (m->req.vm_id == vm_id && !m->finished) return m;
    }
    return nullptr;
  }

  // The end of a migration started by someone else: where does the VM run
  // now? nullopt while a host does not answer (try again later).
  std::optional<Progress> resolve_adopted(Migration& m) {
    auto on_src = m.src->active_domain(m.req.vm_id);
    if (!on_src && on_src.error().code != Errc::kNotFound) return std::nullopt;
    std::string found_on;
    std::optional<Progress> fin;
    for (auto& [name, host] : hosts) {
      if (name == m.src->name() || (m.dst && name != m.dst->name())) continue;
      auto d = host->active_domain(m.req.vm_id);
      if (!d) {
        if (d.error().code != Errc::kNotFound) return std::nullopt;
        continue;
      }
      found_on = name;
      int type = 0, op = -1;
      fin = job_stats(d->d, kCompleted, &type, nullptr, &op);
      if (op != VIR_DOMAIN_JOB_OPERATION_MIGRATION_IN) fin.reset();
      break;
    }
    std::lock_guard<std::mutex> lk(m.mu);
    Progress& p = m.progress;
    if (!found_on.empty() && !on_src) {
      if (fin) p = *fin;
      p.state = State::kSucceeded;
      p.error.clear();
    } else if (on_src) {
      p.state = State::kFailed;
      p.error = "the migration ended and the VM still runs on " + m.src->name();
    } else {
      p.state = State::kFailed;
      p.error = "the migration ended and the VM runs on no configured host";
    }
    m.finished = true;
    return p;
  }
};

LibvirtExecutor::LibvirtExecutor(std::map<std::string, LibvirtHost> hosts, LibvirtExecutorOptions opts)
    : impl_(std::make_unique<Impl>()) {
  ensure_libvirt_event_loop();
  impl_->opts = opts;
  for (auto& [name, h] : hosts) impl_->hosts.emplace(name, std::make_shared<HostConn>(name, std::move(h), opts));
}

LibvirtExecutor::~LibvirtExecutor() {
  std::vector<std::shared_ptr<Migration>> all;
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    for (auto& [h, m] : impl_->migrations) all.push_back(m);
    all.insert(all.end(), impl_->retired.begin(), impl_->retired.end());
  }
  for (auto& m : all) {
    {
      std::lock_guard<std::mutex> lk(m->mu);
      m->stop_monitor = true;
    }
    m->cv.notify_all();
    if (m->monitor.joinable()) m->monitor.join();
    if (!m->worker.joinable()) continue;
    bool finished = false;
    {
      std::lock_guard<std::mutex> lk(m->mu);
      finished = m->finished;
    }
    // A worker still inside virDomainMigrateToURI3 cannot be interrupted
    // without aborting the migration; it owns what it uses, so let it go.
    if (finished) {
      m->worker.join();
    } else {
      m->worker.detach();
    }
  }
}

Result<std::string> LibvirtExecutor::start(const MigrationRequest& req) {
  auto s = impl_->hosts.find(req.src);
  auto d = impl_->hosts.find(req.dst);
  if (s == impl_->hosts.end()) return make_error(Errc::kInvalidArgument, "unknown source host '" + req.src + "'");
  if (d == impl_->hosts.end()) return make_error(Errc::kInvalidArgument, "unknown destination host '" + req.dst + "'");
  if (req.src == req.dst) return make_error(Errc::kInvalidArgument, "source and destination are both " + req.src);
  if (req.vm_id.empty()) return make_error(Errc::kInvalidArgument, "no VM id (libvirt UUID)");
  if (req.timeout <= std::chrono::nanoseconds::zero()) return make_error(Errc::kInvalidArgument, "timeout must be > 0");

  auto m = std::make_shared<Migration>();
  m->req = req;
  m->src = s->second;
  m->dst = d->second;
  {
    // Reserve the VM before the first blocking call: two concurrent
    // start()s of one VM must not both get through.
    std::lock_guard<std::mutex> lk(impl_->mu);
    if (auto other = impl_->in_flight(req.vm_id)) {
      return make_error(Errc::kInvalidArgument, "VM " + req.vm_id + " is already migrating (" + other->handle + ")");
    }
    m->handle = impl_->new_handle(req.vm_id);
    impl_->migrations.emplace(m->handle, m);
  }
  auto drop = [&](Error e) -> Result<std::string> {
    std::lock_guard<std::mutex> lk(impl_->mu);
    impl_->migrations.erase(m->handle);
    return e;
  };

  auto dom = m->src->active_domain(req.vm_id);
  if (!dom) return drop(dom.error());
  m->dom = std::move(*dom);
  virDomainJobInfo info{};
  if (virDomainGetJobInfo(m->dom.d, &info) != 0) {
    return drop(make_error(Errc::kIo, "VM " + req.vm_id + " on " + req.src + ": job info: " + last_error()));
  }
  if (info.type != VIR_DOMAIN_JOB_NONE) {
    return drop(make_error(Errc::kInvalidArgument,
                           "VM " + req.vm_id + " on " + req.src + " already has a job running (a migration?)"));
  }

  m->started = Clock::now();
  const unsigned long flags = migration_flags(req);
  try {
    m->worker = std::thread([m, flags] {
      try {
        run_migration(m, flags);
      } catch (...) {  // bad_alloc: end the migration's record, not the process
        std::lock_guard<std::mutex> lk(m->mu);
        m->progress.state = State::kFailed;
        m->progress.error = "internal error while following the migration";
        m->finished = true;
        m->cv.notify_all();
      }
    });
    m->monitor = std::thread([m, poll = impl_->opts.job_poll] {
      try {
        monitor_migration(m, poll);
      } catch (...) {  // the timeout is lost, the migration goes on
      }
    });
  } catch (const std::system_error& e) {
    // No thread, no migration (if the worker started, it owns the outcome).
    if (!m->worker.joinable()) return drop(make_error(Errc::kIo, std::string("starting a thread: ") + e.what()));
  }
  return m->handle;
}

Result<Progress> LibvirtExecutor::poll(const std::string& handle) {
  auto m = impl_->find(handle);
  if (!m) return make_error(Errc::kNotFound, "no migration " + handle);
  {
    std::lock_guard<std::mutex> lk(m->mu);
    if (m->finished) return m->progress;
  }
  int type = VIR_DOMAIN_JOB_NONE;
  std::string err;
  auto live = job_stats(m->dom.d, 0, &type, &err);
  std::unique_lock<std::mutex> lk(m->mu);
  if (m->finished) return m->progress;  // ended while we asked
  // While a job is cancelled libvirt still shows it, with empty figures:
  // keep the last real ones (what a failed migration cost is worth
  // reporting too).
  const bool moving = type == VIR_DOMAIN_JOB_BOUNDED || type == VIR_DOMAIN_JOB_UNBOUNDED;
  if (live && moving && (live->bytes > 0 || m->progress.bytes == 0)) {
    live->state = State::kRunning;
    if (!m->adopted) live->elapsed_s = m->wall_s();  // as at the end (run_migration)
    m->progress = *live;
    return m->progress;
  }
  if (m->adopted && !(live && moving)) {
    // Not ours: no worker tells us it ended; the job list and where the
    // VM runs now do.
    lk.unlock();
    if (auto fin = impl_->resolve_adopted(*m)) return *fin;
    lk.lock();
  }
  // Not started yet, just ended (the worker is collecting the figures), or
  // the source did not answer: the last figures, with wall-clock time.
  Progress p = m->progress;
  p.state = State::kRunning;
  p.elapsed_s = std::max(p.elapsed_s, m->wall_s());
  return p;
}

Status LibvirtExecutor::abort(const std::string& handle) {
  auto m = impl_->find(handle);
  if (!m) return make_error(Errc::kNotFound, "no migration " + handle);
  std::unique_lock<std::mutex> lk(m->mu);
  if (m->finished) return make_error(Errc::kInvalidArgument, "migration " + handle + " has already ended");
  if (!m->adopted) {
    // The monitor aborts (and retries while the job has not started yet).
    if (!m->abort_requested) {
      m->abort_requested = true;
      m->abort_reason = "aborted by the controller";
    }
    lk.unlock();
    m->cv.notify_all();
    return {};
  }
  lk.unlock();
  if (virDomainAbortJob(m->dom.d) != 0) {
    return make_error(Errc::kIo,
                      "aborting the migration of " + m->req.vm_id + " on " + m->src->name() + ": " + last_error());
  }
  return {};
}

void LibvirtExecutor::forget(const std::string& handle) {
  std::lock_guard<std::mutex> lk(impl_->mu);
  auto it = impl_->migrations.find(handle);
  if (it == impl_->migrations.end()) return;
  bool finished = false;
  {
    std::lock_guard<std::mutex> mlk(it->second->mu);
    finished = it->second->finished;
  }
  if (!finished && (it->second->worker.joinable() || it->second->monitor.joinable())) {
    impl_->retired.push_back(it->second);  // its threads are joined (or let go) at destruction
  } else if (it->second->worker.joinable()) {
    it->second->worker.join();  // finished: returns at once
    if (it->second->monitor.joinable()) it->second->monitor.join();
  }
  impl_->migrations.erase(it);
}

Result<std::vector<Running>> LibvirtExecutor::running() {
  struct Seen {
    std::string host;
    DomainRef dom;
  };
  std::map<std::string, Seen> out_by_vm;        // migration_out, by UUID
  std::map<std::string, std::string> in_by_vm;  // migration_in: host, by UUID
  for (auto& [name, host] : impl_->hosts) {
    auto c = host->get();
    if (!c) return c.error();
    virDomainPtr* doms = nullptr;
    const int n = virConnectListAllDomains(*c, &doms, VIR_CONNECT_LIST_DOMAINS_ACTIVE);
    const std::string err = n < 0 ? last_error() : "";
    virConnectClose(*c);
    if (n < 0) return make_error(Errc::kIo, "listing the VMs of " + name + ": " + err);
    for (int i = 0; i < n; ++i) {
      DomainRef d(doms[i]);
      char uuid[VIR_UUID_STRING_BUFLEN] = {};
      if (virDomainGetUUIDString(d.d, uuid) != 0) continue;
      int type = VIR_DOMAIN_JOB_NONE, op = -1;
      if (job_stats(d.d, 0, &type, nullptr, &op) && type != VIR_DOMAIN_JOB_NONE) {
        if (op == VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT) out_by_vm[uuid] = Seen{name, std::move(d)};
        if (op == VIR_DOMAIN_JOB_OPERATION_MIGRATION_IN) in_by_vm[uuid] = name;
        continue;  // other jobs (save, dump, snapshot, backup) are not migrations
      }
      // libvirt 11 keeps job statistics of a migration for the source
      // ("available only on the source host"); the destination's half is a
      // domain paused for an incoming migration.
      int state = 0, reason = 0;
      if (virDomainGetState(d.d, &state, &reason, 0) == 0 && state == VIR_DOMAIN_PAUSED &&
          reason == VIR_DOMAIN_PAUSED_MIGRATION) {
        in_by_vm[uuid] = name;
      }
    }
    free(doms);
  }

  std::vector<Running> result;
  std::lock_guard<std::mutex> lk(impl_->mu);
  std::set<std::string> listed;
  for (auto& [uuid, seen] : out_by_vm) {
    Running r;
    r.vm_id = uuid;
    r.src = seen.host;
    if (auto it = in_by_vm.find(uuid); it != in_by_vm.end()) r.dst = it->second;
    if (auto m = impl_->in_flight(uuid)) {
      r.handle = m->handle;
      if (r.dst.empty()) r.dst = m->req.dst;
    } else {
      // Someone else's (a previous controller's): follow it from now on.
      auto a = std::make_shared<Migration>();
      a->adopted = true;
      a->req.vm_id = uuid;
      a->req.src = r.src;
      a->req.dst = r.dst;
      a->src = impl_->hosts.at(r.src);
      if (!r.dst.empty()) a->dst = impl_->hosts.at(r.dst);
      a->dom = std::move(seen.dom);
      a->started = Clock::now();
      a->handle = impl_->new_handle(uuid);
      impl_->migrations.emplace(a->handle, a);
      r.handle = a->handle;
    }
    listed.insert(uuid);
    result.push_back(std::move(r));
  }
  // Ours whose job libvirt does not show yet (starting) are running too.
  for (auto& [h, m] : impl_->migrations) {
    std::lock_guard<std::mutex> mlk(m->mu);
    if (m->finished || listed.count(m->req.vm_id) != 0) continue;
    result.push_back(Running{m->req.vm_id, m->req.src, m->req.dst, m->handle});
  }
  return result;
}

}  // namespace vmtide::executor
