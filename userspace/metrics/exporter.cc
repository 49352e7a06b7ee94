// SPDX-License-Identifier: Apache-2.0
// MetricsExporter implementation (exporter.h). prometheus-cpp's exceptions
// (a port in use) stop at create().
#include "exporter.h"

#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <variant>

namespace vmtide::metrics {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::Counter;
using prometheus::Family;
using prometheus::Gauge;

namespace {
constexpr double kNs = 1e9;
}

struct MetricsExporter::Impl {
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  std::unique_ptr<prometheus::Exposer> exposer;
  std::string host;

  // Per VM.
  Family<Counter>& vm_cpu = BuildCounter().Name("vmtide_vm_cpu_seconds_total")
      .Help("CPU time of all the VM's threads").Register(*registry);
  Family<Counter>& vm_steal = BuildCounter().Name("vmtide_vm_steal_seconds_total")
      .Help("Time the VM's vCPU threads were runnable but waited for a CPU (steal as the guest sees it)")
      .Register(*registry);
  Family<Gauge>& vm_steal_ratio = BuildGauge().Name("vmtide_vm_steal_ratio")
      .Help("Steal over the last interval, per second of wall time, summed over vCPUs").Register(*registry);
  Family<Gauge>& vm_ram = BuildGauge().Name("vmtide_vm_memory_bytes").Help("Guest RAM size").Register(*registry);
  Family<Gauge>& vm_rss = BuildGauge().Name("vmtide_vm_resident_bytes")
      .Help("Resident memory of the QEMU process").Register(*registry);
  Family<Gauge>& vm_dirty_rate = BuildGauge().Name("vmtide_vm_dirty_bytes_per_second")
      .Help("Distinct bytes written per second in the last dirty-tracking window").Register(*registry);
  Family<Gauge>& vm_dirty_pages = BuildGauge().Name("vmtide_vm_dirty_pages")
      .Help("Distinct pages written in the last dirty-tracking window").Register(*registry);
  Family<Counter>& vm_io_bytes = BuildCounter().Name("vmtide_vm_io_bytes_total")
      .Help("Block I/O bytes submitted by the VM's process, by direction").Register(*registry);
  Family<Counter>& vm_io_ops = BuildCounter().Name("vmtide_vm_io_requests_total")
      .Help("Block requests completed for the VM's process, by direction").Register(*registry);
  Family<Counter>& vm_io_dstate = BuildCounter().Name("vmtide_vm_io_dstate_seconds_total")
      .Help("Time the VM's threads spent in uninterruptible sleep (D state)").Register(*registry);
  Family<Counter>& vm_pressure = BuildCounter().Name("vmtide_vm_pressure_stalled_seconds_total")
      .Help("Stall time of the VM's cgroup (PSI), by resource and kind").Register(*registry);

  // Host and agent.
  Family<Counter>& host_busy = BuildCounter().Name("vmtide_host_cpu_busy_seconds_total")
      .Help("CPU time the host spent busy, summed over CPUs").Register(*registry);
  Family<Gauge>& host_cpus = BuildGauge().Name("vmtide_host_cpus").Help("Online CPUs").Register(*registry);
  Family<Gauge>& agent = BuildGauge().Name("vmtide_agent_info")
      .Help("The agent's version and which collectors run (value 1)").Register(*registry);
  Family<Counter>& ticks = BuildCounter().Name("vmtide_agent_ticks_total").Help("Samples taken").Register(*registry);
  Family<Gauge>& tick_seconds = BuildGauge().Name("vmtide_agent_tick_duration_seconds")
      .Help("How long the last tick's sampling took").Register(*registry);
  Family<Gauge>& published = BuildGauge().Name("vmtide_agent_messages_published")
      .Help("Messages published since start (a counter; a gauge because it is copied)").Register(*registry);
  Family<Gauge>& dropped = BuildGauge().Name("vmtide_agent_messages_dropped")
      .Help("Messages the socket refused since start").Register(*registry);
  Family<Gauge>& errors = BuildGauge().Name("vmtide_agent_errors")
      .Help("Errors counted since start (BPF, /proc, discovery)").Register(*registry);
  Family<Gauge>& tracked = BuildGauge().Name("vmtide_agent_tracked_vms").Help("VMs tracked now").Register(*registry);
  Family<Gauge>& curve_clients = BuildGauge().Name("vmtide_agent_curve_handshakes")
      .Help("CURVE handshakes the allow-list admitted or refused since start (a counter; a gauge because it is copied)")
      .Register(*registry);

  std::uint64_t last_ticks = 0;

  prometheus::Labels vm_labels(const std::string& id, const std::string& name) const {
    return {{"host", host}, {"vm", name}, {"vm_id", id}};
  }

  // Removes every series of a vanished VM, so dashboards do not show ghosts.
  void forget(const std::string& id, const std::string& name) {
    const auto l = vm_labels(id, name);
    auto rm_counter = [&](Family<Counter>& f, prometheus::Labels extra = {}) {
      extra.insert(l.begin(), l.end());
      if (f.Has(extra)) f.Remove(&f.Add(extra));
    };
    auto rm_gauge = [&](Family<Gauge>& f) {
      if (f.Has(l)) f.Remove(&f.Add(l));
    };
    rm_counter(vm_cpu);
    rm_counter(vm_steal);
    for (const char* dir : {"read", "write"}) {
      rm_counter(vm_io_bytes, {{"direction", dir}});
      rm_counter(vm_io_ops, {{"direction", dir}});
    }
    rm_counter(vm_io_dstate);
    for (const char* res : {"cpu", "io"}) {
      for (const char* kind : {"some", "full"}) rm_counter(vm_pressure, {{"resource", res}, {"kind", kind}});
    }
    for (Family<Gauge>* f : {&vm_steal_ratio, &vm_ram, &vm_rss, &vm_dirty_rate, &vm_dirty_pages}) rm_gauge(*f);
  }
  std::map<std::string, std::string> names;  // vm id -> name, for forget()
};

Result<std::unique_ptr<MetricsExporter>> MetricsExporter::create(const std::string& bind, const std::string& host,
                                                                  const std::map<std::string, std::string>& info) {
  auto impl = std::make_unique<Impl>();
  impl->host = host;
  try {
    impl->exposer = std::make_unique<prometheus::Exposer>(bind);
  } catch (const std::exception& e) {
    return make_error(Errc::kIo, "metrics: cannot listen on " + bind + ": " + e.what());
  }
  prometheus::Labels l(info.begin(), info.end());
  l["host"] = host;
  impl->agent.Add(l).Set(1);
  impl->host_cpus.Add({{"host", host}});
  impl->exposer->RegisterCollectable(impl->registry);
  return std::unique_ptr<MetricsExporter>(new MetricsExporter(std::move(impl)));
}

MetricsExporter::MetricsExporter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
MetricsExporter::~MetricsExporter() = default;

std::uint16_t MetricsExporter::port() const {
  auto ports = impl_->exposer->GetListeningPorts();
  return ports.empty() ? 0 : static_cast<std::uint16_t>(ports.front());
}

void MetricsExporter::observe(const wire::Message::Body& body, std::uint64_t interval_ns) {
  Impl& m = *impl_;
  if (const auto* v = std::get_if<wire::VmSample>(&body)) {
    m.names[v->id] = v->name;
    const auto l = m.vm_labels(v->id, v->name);
    m.vm_cpu.Add(l).Increment(static_cast<double>(v->cpu_ns) / kNs);
    m.vm_steal.Add(l).Increment(static_cast<double>(v->steal_ns) / kNs);
    if (interval_ns > 0) m.vm_steal_ratio.Add(l).Set(static_cast<double>(v->steal_ns) / static_cast<double>(interval_ns));
    m.vm_ram.Add(l).Set(static_cast<double>(v->ram_bytes));
    m.vm_rss.Add(l).Set(static_cast<double>(v->rss_bytes));
    if (v->dirty && v->dirty->window_ns > 0) {
      m.vm_dirty_pages.Add(l).Set(static_cast<double>(v->dirty->pages));
      m.vm_dirty_rate.Add(l).Set(static_cast<double>(v->dirty->pages * v->dirty->page_bytes) * kNs /
                                 static_cast<double>(v->dirty->window_ns));
    }
    if (v->io) {
      auto with = [&](const char* dir) {
        prometheus::Labels x = l;
        x["direction"] = dir;
        return x;
      };
      m.vm_io_bytes.Add(with("read")).Increment(static_cast<double>(v->io->rd_bytes));
      m.vm_io_bytes.Add(with("write")).Increment(static_cast<double>(v->io->wr_bytes));
      m.vm_io_ops.Add(with("read")).Increment(static_cast<double>(v->io->rd_ops));
      m.vm_io_ops.Add(with("write")).Increment(static_cast<double>(v->io->wr_ops));
      m.vm_io_dstate.Add(l).Increment(static_cast<double>(v->io->dstate_ns) / kNs);
    }
    if (v->psi) {
      auto add = [&](const char* res, const char* kind, const std::optional<std::uint64_t>& us) {
        if (!us) return;
        prometheus::Labels x = l;
        x["resource"] = res;
        x["kind"] = kind;
        m.vm_pressure.Add(x).Increment(static_cast<double>(*us) / 1e6);
      };
      add("cpu", "some", v->psi->cpu_some_us);
      add("cpu", "full", v->psi->cpu_full_us);
      add("io", "some", v->psi->io_some_us);
      add("io", "full", v->psi->io_full_us);
    }
  } else if (const auto* h = std::get_if<wire::HostSample>(&body)) {
    m.host_busy.Add({{"host", m.host}}).Increment(static_cast<double>(h->cpu_busy_ns) / kNs);
    m.host_cpus.Add({{"host", m.host}}).Set(h->cpus);
  } else if (const auto* e = std::get_if<wire::Event>(&body)) {
    if (e->type == "vm_stopped" && e->vm) {
      if (auto it = m.names.find(*e->vm); it != m.names.end()) {
        m.forget(it->first, it->second);
        m.names.erase(it);
      }
    }
  }
}

void MetricsExporter::set_health(const AgentHealth& h) {
  Impl& m = *impl_;
  const prometheus::Labels l{{"host", m.host}};
  m.ticks.Add(l).Increment(static_cast<double>(h.ticks - m.last_ticks));
  m.last_ticks = h.ticks;
  m.tick_seconds.Add(l).Set(h.last_tick_seconds);
  m.published.Add(l).Set(static_cast<double>(h.published));
  m.dropped.Add(l).Set(static_cast<double>(h.dropped));
  m.errors.Add(l).Set(static_cast<double>(h.errors));
  m.tracked.Add(l).Set(static_cast<double>(h.tracked_vms));
  if (h.curve_admitted && h.curve_refused) {
    m.curve_clients.Add({{"host", m.host}, {"result", "admitted"}}).Set(static_cast<double>(*h.curve_admitted));
    m.curve_clients.Add({{"host", m.host}, {"result", "refused"}}).Set(static_cast<double>(*h.curve_refused));
  }
}

}  // namespace vmtide::metrics
