// SPDX-License-Identifier: Apache-2.0
// libvirt discovery (libvirt.h). libvirt calls back from its event-loop
// thread: the callbacks only queue under a mutex and never throw.
#include "libvirt.h"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include "vmtide/libvirt_event_loop.h"

namespace vmtide::discovery {

const char* lifecycle_name(Lifecycle l) noexcept {
  switch (l) {
    case Lifecycle::kStarted: return "vm_started";
    case Lifecycle::kStopped: return "vm_stopped";
    case Lifecycle::kSuspended: return "vm_suspended";
    case Lifecycle::kResumed: return "vm_resumed";
    case Lifecycle::kMigrated: return "vm_migrated";
    case Lifecycle::kOther: return "vm_changed";
  }
  return "vm_changed";
}

namespace {

// A numeric stat whatever width libvirt gives it (calc_period is an int,
// megabytes_per_second a long long; the typed getters refuse a mismatch).
bool get_number(virTypedParameterPtr params, int n, const char* name, long long* out) {
  virTypedParameterPtr p = virTypedParamsGet(params, n, name);
  if (p == nullptr) return false;
  switch (p->type) {
    case VIR_TYPED_PARAM_INT: *out = p->value.i; return true;
    case VIR_TYPED_PARAM_UINT: *out = p->value.ui; return true;
    case VIR_TYPED_PARAM_LLONG: *out = p->value.l; return true;
    case VIR_TYPED_PARAM_ULLONG: *out = static_cast<long long>(p->value.ul); return true;
    default: return false;
  }
}

std::string last_libvirt_error() {
  const char* m = virGetLastErrorMessage();
  return m != nullptr ? m : "unknown libvirt error";
}

Lifecycle classify(int event, int detail) {
  switch (event) {
    case VIR_DOMAIN_EVENT_STARTED:
      return detail == VIR_DOMAIN_EVENT_STARTED_MIGRATED ? Lifecycle::kMigrated : Lifecycle::kStarted;
    case VIR_DOMAIN_EVENT_STOPPED:
      return detail == VIR_DOMAIN_EVENT_STOPPED_MIGRATED ? Lifecycle::kMigrated : Lifecycle::kStopped;
    case VIR_DOMAIN_EVENT_SUSPENDED: return Lifecycle::kSuspended;
    case VIR_DOMAIN_EVENT_RESUMED: return Lifecycle::kResumed;
    default: return Lifecycle::kOther;
  }
}

}  // namespace

struct LibvirtSource::Impl {
  std::string uri;
  std::atomic<virConnectPtr> conn{nullptr};
  int lifecycle_cb = -1;
  std::atomic<bool> connected{false};
  std::atomic<bool> read_write{false};
  std::atomic<std::uint64_t> reconnects{0};

  std::mutex mu;
  std::condition_variable cv;
  std::deque<LifecycleEvent> events;

  static int on_lifecycle(virConnectPtr, virDomainPtr dom, int event, int detail, void* opaque) noexcept {
    try {
      auto* self = static_cast<Impl*>(opaque);
      LifecycleEvent ev;
      char uuid[VIR_UUID_STRING_BUFLEN] = {};
      if (virDomainGetUUIDString(dom, uuid) == 0) ev.uuid = uuid;
      if (const char* n = virDomainGetName(dom)) ev.name = n;
      ev.kind = classify(event, detail);
      ev.libvirt_event = event;
      ev.libvirt_detail = detail;
      {
        std::lock_guard<std::mutex> lk(self->mu);
        if (self->events.size() < 10000) self->events.push_back(std::move(ev));  // bounded if nobody drains
      }
      self->cv.notify_all();
    } catch (...) {
      // Never let an exception cross libvirt's C frames.
    }
    return 0;
  }

  static void on_close(virConnectPtr, int, void* opaque) noexcept {
    static_cast<Impl*>(opaque)->connected.store(false);
  }

  Status connect() {
    ensure_libvirt_event_loop();
    // Read-write where allowed: starting a dirty-rate measurement needs it.
    virConnectPtr c = virConnectOpen(uri.c_str());
    read_write.store(c != nullptr);
    if (c == nullptr) c = virConnectOpenReadOnly(uri.c_str());
    if (c == nullptr) return make_error(Errc::kIo, "libvirt " + uri + ": " + last_libvirt_error());
    lifecycle_cb = virConnectDomainEventRegisterAny(c, nullptr, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                                     VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle), this, nullptr);
    if (lifecycle_cb < 0) {
      Error e = make_error(Errc::kIo, "libvirt " + uri + ": subscribing to lifecycle events: " + last_libvirt_error());
      virConnectClose(c);
      return e;
    }
    virConnectRegisterCloseCallback(c, on_close, this, nullptr);
    conn.store(c);
    connected.store(true);
    return {};
  }

  void disconnect() {
    virConnectPtr c = conn.exchange(nullptr);
    if (c == nullptr) return;
    if (lifecycle_cb >= 0) virConnectDomainEventDeregisterAny(c, lifecycle_cb);
    lifecycle_cb = -1;
    virConnectUnregisterCloseCallback(c, on_close);
    virConnectClose(c);
    connected.store(false);
  }
};

LibvirtSource::LibvirtSource(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

LibvirtSource::~LibvirtSource() { impl_->disconnect(); }

Result<std::unique_ptr<LibvirtSource>> LibvirtSource::open(const std::string& uri) {
  ensure_libvirt_event_loop();
  auto impl = std::make_unique<Impl>();
  impl->uri = uri;
  if (Status st = impl->connect(); !st) return st.error();
  return std::unique_ptr<LibvirtSource>(new LibvirtSource(std::move(impl)));
}

bool LibvirtSource::connected() const { return impl_->connected.load(); }
std::uint64_t LibvirtSource::reconnects() const { return impl_->reconnects.load(); }

Result<std::vector<QemuProcess>> LibvirtSource::scan() {
  if (!impl_->connected.load()) {
    impl_->disconnect();
    if (Status st = impl_->connect(); !st) return st.error();
    impl_->reconnects.fetch_add(1);
  }
  virDomainPtr* doms = nullptr;
  const int n = virConnectListAllDomains(impl_->conn.load(), &doms, VIR_CONNECT_LIST_DOMAINS_ACTIVE);
  if (n < 0) {
    impl_->connected.store(false);  // reconnect next time
    return make_error(Errc::kIo, "libvirt " + impl_->uri + ": listing domains: " + last_libvirt_error());
  }
  // QEMU processes by the UUID on their command line.
  std::map<std::string, QemuProcess> by_uuid;
  for (auto& p : scan_qemu_processes("/proc")) {
    if (!p.uuid.empty()) by_uuid.emplace(p.uuid, std::move(p));
  }
  std::vector<QemuProcess> out;
  for (int i = 0; i < n; ++i) {
    char uuid[VIR_UUID_STRING_BUFLEN] = {};
    virDomainInfo info{};
    const char* name = virDomainGetName(doms[i]);
    if (virDomainGetUUIDString(doms[i], uuid) == 0 && virDomainGetInfo(doms[i], &info) == 0) {
      auto it = by_uuid.find(uuid);
      if (it != by_uuid.end()) {  // else: not a local QEMU process (yet), skip this tick
        QemuProcess p = std::move(it->second);
        p.id = uuid;
        p.uuid = uuid;
        if (name != nullptr) p.name = name;
        p.ram_bytes = static_cast<std::uint64_t>(info.maxMem) * 1024;  // KiB
        out.push_back(std::move(p));
      }
    }
    virDomainFree(doms[i]);
  }
  free(doms);  // allocated by libvirt with malloc
  return out;
}

std::vector<LifecycleEvent> LibvirtSource::drain_events() {
  std::lock_guard<std::mutex> lk(impl_->mu);
  std::vector<LifecycleEvent> out(impl_->events.begin(), impl_->events.end());
  impl_->events.clear();
  return out;
}

std::optional<LifecycleEvent> LibvirtSource::wait_event(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lk(impl_->mu);
  if (!impl_->cv.wait_for(lk, timeout, [&] { return !impl_->events.empty(); })) return std::nullopt;
  LifecycleEvent ev = std::move(impl_->events.front());
  impl_->events.pop_front();
  return ev;
}

bool LibvirtSource::supports_dirty_rate() const { return impl_->read_write.load(); }

Status LibvirtSource::start_dirty_rate(const std::string& uuid, int seconds) {
  virDomainPtr dom = virDomainLookupByUUIDString(impl_->conn.load(), uuid.c_str());
  if (dom == nullptr) return make_error(Errc::kNotFound, "libvirt: no domain " + uuid + ": " + last_libvirt_error());
  // page-sampling: the mode that works under TCG too (dirty-bitmap reads 0 there).
  const int rc = virDomainStartDirtyRateCalc(dom, seconds, VIR_DOMAIN_DIRTYRATE_MODE_PAGE_SAMPLING);
  Status out;
  if (rc != 0) out = make_error(Errc::kIo, "libvirt: starting dirty-rate calculation of " + uuid + ": " + last_libvirt_error());
  virDomainFree(dom);
  return out;
}

Result<std::optional<HypervisorDirtyRate>> LibvirtSource::dirty_rate(const std::string& uuid) {
  virDomainPtr dom = virDomainLookupByUUIDString(impl_->conn.load(), uuid.c_str());
  if (dom == nullptr) return make_error(Errc::kNotFound, "libvirt: no domain " + uuid + ": " + last_libvirt_error());
  virDomainPtr doms[] = {dom, nullptr};
  virDomainStatsRecordPtr* records = nullptr;
  const int n = virDomainListGetStats(doms, VIR_DOMAIN_STATS_DIRTYRATE, &records, 0);
  virDomainFree(dom);
  if (n < 0) return make_error(Errc::kIo, "libvirt: dirty-rate stats of " + uuid + ": " + last_libvirt_error());
  std::optional<HypervisorDirtyRate> out;
  if (n > 0) {
    // Keys as strings, not libvirt 11.2's macros, so older headers build.
    long long status = 0, mib = 0, start = 0, period = 0;
    virTypedParameterPtr p = records[0]->params;
    const int np = records[0]->nparams;
    const bool ok = get_number(p, np, "dirtyrate.calc_status", &status) &&
                    get_number(p, np, "dirtyrate.megabytes_per_second", &mib) &&
                    get_number(p, np, "dirtyrate.calc_start_time", &start) &&
                    get_number(p, np, "dirtyrate.calc_period", &period);
    if (ok && status == VIR_DOMAIN_DIRTYRATE_MEASURED) {
      out = HypervisorDirtyRate{static_cast<double>(mib), start, static_cast<std::uint64_t>(period) * 1'000'000'000ULL};
    }
  }
  virDomainStatsRecordListFree(records);
  return out;
}

}  // namespace vmtide::discovery
