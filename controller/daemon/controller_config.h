// SPDX-License-Identifier: Apache-2.0
// The controller's configuration: /etc/vmtide/controller.toml
// (docs/configuration.md lists every key and its default). Strict like the
// agent's: unknown keys and wrong types are errors naming file and line.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <map>

#include "builder.h"
#include "planner.h"  // strategy::PlannerConfig; not "config.h": the agent has one too
#include "vmtide/result.h"
#include "vmtide/wire/messages.h"

namespace vmtide::controller {

inline constexpr const char* kDefaultConfigPath = "/etc/vmtide/controller.toml";

struct ControllerConfig {
  // [controller]
  std::string name;  // host name in the decision stream's topics; empty: the machine's hostname
  wire::Mode mode = wire::Mode::kRecommend;
  double round_interval_s = 10.0;
  std::string log_level = "info";
  // [agents]
  std::vector<std::string> agents;  // SUB endpoints, e.g. tcp://kvm1:7470
  // CURVE toward agents that set publish.curve_secret_key (docs/security.md):
  // each agent's public key (a .pub file or 40 Z85 characters), the same
  // for every endpoint or per endpoint; "" = that agent's stream is plain.
  std::string agent_curve_server_key;
  std::map<std::string, std::string> agent_curve_server_keys;  // endpoint -> key
  // The controller's own keypair (.key from `vmtide keygen`, mode 0600), the
  // client key agents list in publish.curve_allowed_clients; "" = a fresh
  // keypair each start (enough for agents without an allow-list).
  std::string agent_curve_secret_key;
  // [publish]
  std::string publish_endpoint = "tcp://127.0.0.1:7471";
  int sndhwm = 10000;
  // [control]: the query socket `vmtide plan` / `vmtide predict --vm` use
  std::string control_endpoint = "tcp://127.0.0.1:7472";  // "off" disables it
  // [log]
  std::string decision_log = "/var/lib/vmtide/decisions.jsonl";  // "" disables it
  // [model]
  model::BuilderConfig model;
  // [balance]
  strategy::PlannerConfig planner;
  // [predictor]
  std::string cost_model = "precopy";  // precopy | const-dirty
  strategy::PrecopyCostParams predictor;
  // [executor]: what carries out moves in enforce mode.
  std::string executor = "none";  // none | libvirt
  // [[host]] libvirt_uri / peer_uri / migrate_uri, by host name.
  struct LibvirtUris {
    std::string uri, peer_uri, migrate_uri;
    bool operator==(const LibvirtUris&) const = default;
  };
  std::map<std::string, LibvirtUris> libvirt_hosts;
  // [[host]] and [[vm]]
  model::Overrides overrides;
};

// Parses TOML text; `source` names it in errors ("controller.toml:12: ...").
[[nodiscard]] Result<ControllerConfig> parse_config(std::string_view toml, const std::string& source);
// Reads and parses a file; kNotFound if it does not exist.
[[nodiscard]] Result<ControllerConfig> load_config(const std::string& path);
// Checks values after flags are applied.
[[nodiscard]] Status validate(const ControllerConfig& c);
// The effective configuration as TOML (for --check-config).
[[nodiscard]] std::string to_toml(const ControllerConfig& c);

}  // namespace vmtide::controller
