// SPDX-License-Identifier: Apache-2.0
// The agent's configuration: /etc/vmtide/agent.toml (docs/configuration.md
// lists every key and its default). Strict: an unknown key or a value of
// the wrong type is an error naming the file, line and key, so a typo never
// silently falls back to a default.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "vmtide/result.h"

namespace vmtide::agent {

inline constexpr const char* kDefaultConfigPath = "/etc/vmtide/agent.toml";

struct AgentConfig {
  // [agent]
  std::string host;           // host name in topics; empty: the machine's hostname
  double interval_s = 1.0;    // seconds between samples
  std::string log_level = "info";
  // [publish]
  std::string endpoint = "tcp://*:7470";
  int sndhwm = 10000;
  std::string curve_secret_key;  // the agent's .key file (vmtide keygen); empty: no CURVE
  // Who may subscribe with CURVE: Z85 keys, key files or directories of
  // .pub files (vmtide/wire/zap.h); empty: any client with the agent's key.
  std::vector<std::string> curve_allowed_clients;
  // [metrics]
  std::string metrics_listen = "0.0.0.0:9470";  // "off" disables /metrics
  // [discovery]
  std::string discovery = "auto";  // auto | libvirt | procfs
  std::string libvirt_uri = "qemu:///system";
  std::vector<std::uint32_t> extra_pids;
  double rescan_interval_s = 5.0;  // full discovery rescans; libvirt events trigger one at once
  bool qmp_sockets = false;        // procfs: dirty rates over the VMs' QMP sockets (calc-dirty-rate)
  // [collectors]
  bool bpf = true;
  bool dirty = true;
  double dirty_window_s = 2.0;
  double dirty_period_s = 30.0;  // at most a day

  bool operator==(const AgentConfig&) const = default;
};

// Parses TOML text; `source` names it in errors ("agent.toml:12: ...").
[[nodiscard]] Result<AgentConfig> parse_config(std::string_view toml, const std::string& source);
// Reads and parses a file; kNotFound if it does not exist.
[[nodiscard]] Result<AgentConfig> load_config(const std::string& path);
// Checks values (ranges, enums, endpoint shapes) after flags are applied.
[[nodiscard]] Status validate(const AgentConfig& c);
// The effective configuration as TOML (for --check-config).
std::string to_toml(const AgentConfig& c);

}  // namespace vmtide::agent
