// SPDX-License-Identifier: Apache-2.0
// controller.toml: defaults, every section, and errors that name the line.
#include "controller_config.h"

#include <gtest/gtest.h>

#include <fstream>

namespace vmtide::controller {
namespace {

TEST(ControllerConfig, EmptyFileGivesTheDocumentedDefaults) {
  auto c = parse_config("", "controller.toml");
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->mode, wire::Mode::kRecommend);
  EXPECT_DOUBLE_EQ(c->round_interval_s, 10.0);
  EXPECT_EQ(c->publish_endpoint, "tcp://127.0.0.1:7471");
  EXPECT_EQ(c->control_endpoint, "tcp://127.0.0.1:7472");
  EXPECT_EQ(c->decision_log, "/var/lib/vmtide/decisions.jsonl");
  EXPECT_EQ(c->cost_model, "precopy");
  EXPECT_DOUBLE_EQ(c->predictor.downtime_limit_ms, 300.0);
  EXPECT_TRUE(c->agents.empty());
}

TEST(ControllerConfig, ShippedFileParsesToTheDefaults) {
  auto shipped = load_config(std::string(VMTIDE_SOURCE_DIR) + "/packaging/controller.toml");
  ASSERT_TRUE(shipped) << shipped.error().message();
  auto defaults = parse_config("", "x");
  ASSERT_TRUE(defaults);
  EXPECT_EQ(to_toml(*shipped), to_toml(*defaults)) << "packaging/controller.toml and the code disagree";
}

TEST(ControllerConfig, EverySectionIsRead) {
  const char* text = R"(
[controller]
name = "ctl1"
mode = "observe"
round_interval = 5
[agents]
endpoints = ["tcp://kvm1:7470", "tcp://kvm2:7470"]
curve_server_key = "/etc/vmtide/keys/agents.pub"
curve_secret_key = "/etc/vmtide/controller.key"
[agents.curve_server_keys]
"tcp://kvm2:7470" = "/etc/vmtide/keys/kvm2.pub"
[publish]
endpoint = "tcp://*:9000"
[control]
endpoint = "off"
[log]
decisions = ""
[model]
smoothing = 20
max_loss = 0.5
[balance]
strategy = "push"
high = 0.9
high_exit = 0.8
hot_sustain = 30
push_relief = 0.5
push_depth_weight = 0.2
cooldown = 60
vm_exclude_tags = ["keep"]
[predictor]
model = "const-dirty"
max_bandwidth = 1e8
auto_converge = true
[[host]]
name = "kvm2"
maintenance = true
tags = ["vmtide.no-receive"]
[[vm]]
name = "db1"
anti_affinity = ["db"]
[[vm]]
name = "db2"
anti_affinity = ["db"]
)";
  auto c = parse_config(text, "c.toml");
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->name, "ctl1");
  EXPECT_EQ(c->mode, wire::Mode::kObserve);
  EXPECT_EQ(c->agents.size(), 2u);
  EXPECT_EQ(c->control_endpoint, "off");
  EXPECT_EQ(c->decision_log, "");
  EXPECT_EQ(c->model.tau, std::chrono::seconds{20});
  EXPECT_DOUBLE_EQ(c->model.max_loss_frac, 0.5);
  EXPECT_EQ(c->planner.strategy, strategy::StrategyKind::kPush);
  EXPECT_DOUBLE_EQ(c->planner.band.high_enter, 0.9);
  EXPECT_EQ(c->planner.hot_sustain, std::chrono::seconds{30});
  EXPECT_DOUBLE_EQ(c->planner.push_relief, 0.5);
  EXPECT_DOUBLE_EQ(c->planner.push_depth_weight, 0.2);
  EXPECT_EQ(c->planner.vm_cooldown_base, std::chrono::seconds{60});
  EXPECT_EQ(c->planner.vm_exclude_tags, std::vector<std::string>{"keep"});
  EXPECT_EQ(c->agent_curve_server_key, "/etc/vmtide/keys/agents.pub");
  EXPECT_EQ(c->agent_curve_secret_key, "/etc/vmtide/controller.key");
  EXPECT_EQ(c->agent_curve_server_keys.at("tcp://kvm2:7470"), "/etc/vmtide/keys/kvm2.pub");
  EXPECT_EQ(c->cost_model, "const-dirty");
  EXPECT_DOUBLE_EQ(c->predictor.max_bw_bytes_per_s, 1e8);
  EXPECT_TRUE(c->predictor.auto_converge);
  ASSERT_TRUE(c->overrides.hosts.contains("kvm2"));
  EXPECT_TRUE(c->overrides.hosts.at("kvm2").maintenance);
  EXPECT_EQ(c->overrides.vms.size(), 2u);
  // Round trip through --check-config's output.
  auto again = parse_config(to_toml(*c), "again");
  ASSERT_TRUE(again) << again.error().message() << "\n" << to_toml(*c);
  EXPECT_EQ(to_toml(*again), to_toml(*c));
}

struct Bad {
  const char* text;
  const char* expect;  // substring of the error
};

class ControllerConfigErrors : public ::testing::TestWithParam<Bad> {};

TEST_P(ControllerConfigErrors, NameTheProblem) {
  auto c = parse_config(GetParam().text, "c.toml");
  ASSERT_FALSE(c) << GetParam().text;
  EXPECT_NE(c.error().context.find(GetParam().expect), std::string::npos) << c.error().context;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ControllerConfigErrors,
    ::testing::Values(Bad{"[controler]\n", "c.toml:1: unknown section [controler]"},
                      Bad{"[controller]\nmdoe = \"observe\"\n", "c.toml:2: unknown key 'mdoe'"},
                      Bad{"[controller]\nmode = \"auto\"\n", "'mode' must be \"observe\""},
                      Bad{"[controller]\nround_interval = \"10\"\n", "'round_interval' must be a number"},
                      Bad{"[agents]\nendpoints = [\"kvm1:7470\"]\n", "use tcp://HOST:PORT"},
                      Bad{"[agents]\nendpoints = \"tcp://kvm1:7470\"\n", "an array of strings"},
                      Bad{"[balance]\nhigh = 0.5\nhigh_exit = 0.6\n", "balance: planner config"},
                      Bad{"[balance]\nstrategy = \"random\"\n", "\"push\", \"pull\" or \"adaptive\""},
                      Bad{"[balance]\ncooldown = -1\n", "seconds >= 0"},
                      Bad{"[balance]\npush_relief = 2\n", "push_relief must be in [0, 1]"},
                      Bad{"[predictor]\nmodel = \"ml\"\n", "predictor.model 'ml'"},
                      Bad{"[model]\nmax_loss = 0\n", "model.max_loss"},
                      Bad{"[[host]]\nmaintenance = true\n", "[[host]] needs a name"},
                      Bad{"[[vm]]\nname = \"a\"\n[[vm]]\nname = \"a\"\n", "'a' appears twice"},
                      Bad{"[controller\n", "c.toml:1:"},
                      Bad{"[controller]\nmode = \"enforce\"\n", "needs [executor] backend = \"libvirt\""},
                      Bad{"[executor]\nbackend = \"libvirt\"\n", "needs libvirt_uri in the [[host]] table"},
                      Bad{"[executor]\nbackend = \"ssh\"\n", "executor.backend 'ssh'"},
                      Bad{"[agents]\nendpoints = [\"tcp://kvm1:7470\"]\n[agents.curve_server_keys]\n"
                          "\"tcp://kvm1:7471\" = \"k.pub\"\n",
                          "'tcp://kvm1:7471' is not one of agents.endpoints"},
                      Bad{"[agents]\ncurve_server_keys = \"k.pub\"\n", "a table of endpoint = key"},
                      Bad{"[agents]\ncurve_secret_key = \"ctl.key\"\n", "needs the agents' public keys too"}));

TEST(ControllerConfig, EnforceWithTheLibvirtExecutor) {
  auto c = parse_config(R"(
[controller]
mode = "enforce"
[executor]
backend = "libvirt"
[[host]]
name = "kvm1"
libvirt_uri = "qemu+tcp://kvm1/system"
[[host]]
name = "kvm2"
libvirt_uri = "qemu+tcp://kvm2/system"
migrate_uri = "tcp://10.1.0.2"
)",
                        "c.toml");
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->mode, wire::Mode::kEnforce);
  ASSERT_EQ(c->libvirt_hosts.size(), 2u);
  EXPECT_EQ(c->libvirt_hosts.at("kvm2").migrate_uri, "tcp://10.1.0.2");
  auto again = parse_config(to_toml(*c), "again");
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_EQ(again->libvirt_hosts, c->libvirt_hosts);
}

}  // namespace
}  // namespace vmtide::controller
