// SPDX-License-Identifier: Apache-2.0
// The agent's configuration: the shipped example parses to the defaults,
// values are read, and every kind of mistake is an error naming the line.
#include <gtest/gtest.h>

#include <string>

#include "config.h"

namespace vmtide::agent {
namespace {

TEST(AgentConfig, ShippedExampleIsTheDefaults) {
  auto c = load_config(VMTIDE_SOURCE_DIR "/packaging/agent.toml");
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(*c, AgentConfig{}) << "packaging/agent.toml and the code disagree on a default";
  // And what --check-config prints parses back to the same thing.
  auto again = parse_config(to_toml(*c), "printed");
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_EQ(*again, *c);
}

TEST(AgentConfig, ReadsValues) {
  auto c = parse_config(R"(
[agent]
host = "kvm7"
interval = 2
[publish]
endpoint = "tcp://10.0.0.7:7470"
curve_secret_key = "/etc/vmtide/agent.key"
curve_allowed_clients = ["/etc/vmtide/clients", "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"]
[discovery]
source = "procfs"
extra_pids = [123, 456]
qmp_sockets = true
[collectors]
dirty = false
)", "t.toml");
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->host, "kvm7");
  EXPECT_DOUBLE_EQ(c->interval_s, 2.0);
  EXPECT_EQ(c->endpoint, "tcp://10.0.0.7:7470");
  EXPECT_EQ(c->curve_secret_key, "/etc/vmtide/agent.key");
  EXPECT_EQ(c->curve_allowed_clients,
            (std::vector<std::string>{"/etc/vmtide/clients", "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"}));
  EXPECT_EQ(c->discovery, "procfs");
  EXPECT_EQ(c->extra_pids, (std::vector<std::uint32_t>{123, 456}));
  EXPECT_TRUE(c->qmp_sockets);
  EXPECT_FALSE(c->dirty);
  EXPECT_TRUE(c->bpf);
}

TEST(AgentConfig, MistakesAreNamed) {
  struct Case {
    const char* toml;
    const char* want;  // in the message
  };
  const Case cases[] = {
      {"[agent]\nintervall = 1\n", "t.toml:2: unknown key 'intervall' in [agent]"},
      {"[agnet]\n", "unknown section [agnet]"},
      {"[agent]\ninterval = \"fast\"\n", "t.toml:2: 'interval' must be a number"},
      {"[agent]\ninterval = 0\n", "agent.interval must be in"},
      {"[agent]\nhost = \"kvm1.example.com\"\n", "must not contain dots"},
      {"[discovery]\nsource = \"xen\"\n", "discovery.source 'xen'"},
      {"[discovery]\nextra_pids = [\"x\"]\n", "'extra_pids' must be an array of process ids"},
      {"[discovery]\nqmp_sockets = \"yes\"\n", "t.toml:2: 'qmp_sockets' must be true or false"},
      {"[publish]\nendpoint = \"7470\"\n", "publish.endpoint '7470'"},
      {"[publish]\ncurve_secret_key = true\n", "t.toml:2: 'curve_secret_key' must be a string"},
      {"[publish]\nendpoint = \"inproc://x\"\ncurve_secret_key = \"a.key\"\n", "CURVE does not apply to inproc"},
      {"[publish]\ncurve_allowed_clients = \"k.pub\"\n", "'curve_allowed_clients' must be"},
      {"[publish]\ncurve_allowed_clients = [\"k.pub\"]\n", "curve_allowed_clients needs publish.curve_secret_key"},
      {"[collectors]\ndirty_window = 40\n", "dirty_window must be > 0 and <= collectors.dirty_period"},
      // Found by fuzz_agent_config: accepted, then undefined as nanoseconds.
      {"[collectors]\ndirty_period = inf\n", "dirty_period must be at most 86400"},
      {"[collectors]\ndirty_period = 1e11\n", "dirty_period must be at most 86400"},
      // Found by fuzz_agent_config in CI: truncated to 32 bits (pid 0),
      // which the printed configuration then failed to parse back.
      {"[discovery]\nextra_pids = [1, 4294967296]\n", "t.toml:2: 'extra_pids' must be an array of process ids"},
      {"[publish]\nsndhwm = 4294967297\n", "t.toml:2: 'sndhwm' must be an integer that fits in 32 bits"},
      {"[agent\n", "t.toml:1:"},
  };
  for (const auto& c : cases) {
    auto r = parse_config(c.toml, "t.toml");
    ASSERT_FALSE(r) << c.toml;
    EXPECT_EQ(r.error().code, Errc::kInvalidArgument);
    EXPECT_NE(r.error().message().find(c.want), std::string::npos) << r.error().message();
  }
  EXPECT_EQ(load_config("/nonexistent/agent.toml").error().code, Errc::kNotFound);
}

}  // namespace
}  // namespace vmtide::agent
