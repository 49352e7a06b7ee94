// SPDX-License-Identifier: Apache-2.0
// MetricsExporter: the agent's /metrics endpoint (prometheus-cpp). It is fed
// the same wire bodies the agent publishes, so Prometheus and the stream
// never disagree: per-VM counters and gauges labelled by VM name and id,
// the host's, and the agent's own health.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "vmtide/result.h"
#include "vmtide/wire/messages.h"

namespace prometheus {
class Exposer;
class Registry;
}  // namespace prometheus

namespace vmtide::metrics {

struct AgentHealth {
  std::uint64_t ticks = 0;
  double last_tick_seconds = 0;  // how long the last tick's sampling took
  std::uint64_t published = 0;
  std::uint64_t dropped = 0;
  std::uint64_t errors = 0;
  std::uint64_t tracked_vms = 0;
  // With a CURVE allow-list: handshakes the ZAP handler admitted / refused.
  std::optional<std::uint64_t> curve_admitted, curve_refused;
};

class MetricsExporter {
 public:
  // Serves /metrics on `bind` ("0.0.0.0:9470", "127.0.0.1:0" for any port).
  [[nodiscard]] static Result<std::unique_ptr<MetricsExporter>> create(const std::string& bind,
                                                                       const std::string& host,
                                                                       const std::map<std::string, std::string>& info);
  ~MetricsExporter();

  // One published body (vm, host, event) covering `interval_ns`.
  void observe(const wire::Message::Body& body, std::uint64_t interval_ns);
  void set_health(const AgentHealth& h);
  std::uint16_t port() const;  // the bound port

  struct Impl;

 private:
  explicit MetricsExporter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace vmtide::metrics
