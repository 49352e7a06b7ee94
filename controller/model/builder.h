// SPDX-License-Identifier: Apache-2.0
// Folds the agents' wire messages into a ClusterModel: per-host freshness
// and sequence-gap tracking, EWMA-smoothed CPU, steal and pressure, the
// latest dirty measurement per VM. Pure: every call takes the controller's
// own receive time (`now`, CLOCK_MONOTONIC in the daemon, the simulated
// clock in tests); the publishers' clocks are never compared with ours.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "cluster.h"
#include "signals.h"
#include "vmtide/wire/messages.h"

namespace vmtide::model {

struct BuilderConfig {
  // Smoothing time constant for CPU, steal, pressure and each VM's dirty
  // curve (EWMA over irregular intervals, signals.h).
  std::chrono::nanoseconds tau = std::chrono::seconds{30};
  // A host is stale when nothing arrived for stale_after_intervals of its
  // sampling interval (DESIGN.md: silent for 3 heartbeats), and never sooner
  // than min_stale_after.
  double stale_after_intervals = 3.0;
  std::chrono::nanoseconds min_stale_after = std::chrono::seconds{3};
  // Sequence gaps: a host that lost more than max_loss_frac of its messages
  // within the last loss_window is stale until the window is clean again.
  double max_loss_frac = 0.2;
  std::chrono::nanoseconds loss_window = std::chrono::seconds{30};
  // A VM not reported for this many of its host's intervals is gone (shut
  // down or migrated away); it leaves the model.
  double vm_expiry_intervals = 3.0;
  // A host must have sent at least this many host samples before it is a
  // source or target (one sample is not a load).
  std::uint64_t min_host_samples = 2;
};

// What the builder knows about one publisher, for `vmtide plan`, the
// daemon's metrics and the tests.
struct HostHealth {
  std::string name;
  std::uint64_t epoch = 0;
  std::uint64_t last_seq = 0;
  std::uint64_t received = 0;       // messages accepted, all epochs
  std::uint64_t lost = 0;           // seq gaps, all epochs
  std::uint64_t duplicates = 0;     // seq not above the last one (dropped)
  std::uint64_t epochs_seen = 0;    // restarts observed (the first epoch counts 1)
  std::uint64_t host_samples = 0;   // in the current epoch
  TimeNs last_seen{0};
  std::chrono::nanoseconds interval{0};  // from its host samples
  bool stale = true;
  std::string stale_reason;  // empty when fresh
};

struct BuilderCounters {
  std::uint64_t accepted = 0;
  std::uint64_t duplicates = 0;
  std::uint64_t lost = 0;
  std::uint64_t epochs = 0;       // new epochs seen (restarts, and first contact)
  std::uint64_t vms_expired = 0;
  std::uint64_t ignored = 0;      // decisions and events: not model input
};

// Per-host and per-VM operator settings merged into the model (from the
// controller's config): maintenance, tags, affinity.
struct HostOverride {
  bool maintenance = false;
  std::vector<std::string> tags;
};
struct VmOverride {
  std::vector<std::string> tags;
  std::string affinity_group;
  std::vector<std::string> anti_affinity_groups;
};
struct Overrides {
  std::map<std::string, HostOverride, std::less<>> hosts;  // by host name
  std::map<std::string, VmOverride, std::less<>> vms;      // by VM name or id
};

class ModelBuilder {
 public:
  explicit ModelBuilder(BuilderConfig cfg = {}) : cfg_(cfg) {}
  // Not copyable (it caches a pointer into its own host map); movable.
  ModelBuilder(const ModelBuilder&) = delete;
  ModelBuilder& operator=(const ModelBuilder&) = delete;
  ModelBuilder(ModelBuilder&&) = default;
  ModelBuilder& operator=(ModelBuilder&&) = default;

  // Accepts one decoded message received at `now`. Returns false when it is
  // dropped (duplicate or reordered seq); decisions and events are ignored.
  bool on_message(const wire::Message& m, TimeNs now);

  // The model at `now`: every known host (stale ones flagged), every VM of
  // a fresh or stale host that has not expired, overrides applied. VMs
  // reported by two hosts (a migration's source and destination both run
  // QEMU for a moment) are kept once, on the host that reported last.
  [[nodiscard]] ClusterModel snapshot(TimeNs now, const Overrides& ov = {}) const;

  // Freshness of every host at `now`, in host-name order.
  [[nodiscard]] std::vector<HostHealth> health(TimeNs now) const;

  // Forgets VMs that expired and hosts silent for `forget_after`.
  void prune(TimeNs now, std::chrono::nanoseconds forget_after = std::chrono::minutes{10});

  // New thresholds (a reloaded config); the data is kept.
  void set_config(const BuilderConfig& cfg) { cfg_ = cfg; }

  [[nodiscard]] const BuilderCounters& counters() const noexcept { return counters_; }
  [[nodiscard]] std::size_t host_count() const noexcept { return hosts_.size(); }
  [[nodiscard]] std::size_t vm_count() const noexcept;

 private:
  struct LossBucket {
    TimeNs start{0};
    std::uint64_t received = 0;
    std::uint64_t lost = 0;
  };
  struct Vm {
    std::string id, name, host;
    std::uint32_t vcpus = 0;
    std::uint64_t ram = 0, rss = 0;
    Ewma used;   // cores
    Ewma steal;  // cores
    double dirty_bps = 0;
    CurveEwma curve;  // D(tau) averaged over samples (signals.h)
    TimeNs last_seen{0};
  };
  struct Host {
    HostHealth h;
    std::uint32_t cpus = 0;
    std::uint64_t mem_total = 0;
    std::uint64_t mem_avail = 0;
    double link_bw = 0;  // bytes/s
    Ewma busy;           // busy fraction of capacity (0..1)
    Ewma io_pressure;    // PSI io some share (0..1)
    std::vector<LossBucket> loss;  // one bucket per second of loss_window, oldest first
    std::unordered_map<std::string, Vm> vms;  // by VM id
  };
  Host& host_for(const wire::Envelope& env);
  void on_vm(Host& h, const wire::Envelope& env, const wire::VmSample& s, TimeNs now);
  void on_host(Host& h, const wire::Envelope& env, const wire::HostSample& s, TimeNs now);
  void count_loss(Host& h, std::uint64_t received, std::uint64_t lost, TimeNs now);
  [[nodiscard]] std::string stale_reason(const Host& h, TimeNs now) const;
  [[nodiscard]] bool vm_expired(const Host& h, const Vm& v, TimeNs now) const;

  BuilderConfig cfg_;
  std::map<std::string, Host, std::less<>> hosts_;
  Host* last_host_ = nullptr;  // messages come in bursts per publisher
  BuilderCounters counters_;
};

}  // namespace vmtide::model
