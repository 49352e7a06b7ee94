// SPDX-License-Identifier: Apache-2.0
// Writes the seeds of the text-input fuzz targets, one directory each:
// config files (the defaults as --check-config prints them, typical files,
// one input per kind of error), simulator scenarios and replays, decision
// logs, QEMU monitor streams and control requests. Regenerate with
//   build/tests/fuzz/text_seed_gen tests/fuzz/corpus
// (fuzz.text_seeds_current fails when the checked-in copies are stale).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "config.h"
#include "controller_config.h"
#include "samples.h"
#include "vmtide/wire/codec.h"

namespace {

using namespace vmtide;
namespace samples = wire::samples;
using Seeds = std::vector<std::pair<std::string, std::string>>;

Seeds toml_config() {
  return {
      {"empty.toml", ""},
      {"every_type.toml",
       "# comment\n[agent]\na = \"text \\u00e9 \\\"q\\\"\"\nb = 12\ninterval = 1.5\n"
       "[publish]\na = true\nb = ['x', \"\"\"multi\nline\"\"\"]\ninterval = 1e7\n"
       "[controller]\na = { inline = 1, t = [1, 2.5] }\nb = 1979-05-27T07:32:00Z\ninterval = -0.0\n"},
      {"nested.toml", "[x]\na.b.c = 1\n[x.y]\nz = [[1], [2, [3]]]\n[[x.arr]]\nk = 'v'\n[[x.arr]]\nk = 2\n"},
      {"numbers.toml", "[agent]\na = 0x7fffffffffffffff\nb = -9223372036854775808\ninterval = inf\n"
                       "[publish]\na = nan\nb = 1_000.5e-3\ninterval = 0o17\n[controller]\ninterval = 1e400\n"},
      {"err_unknown_section.toml", "[agnet]\nhost = 'a'\n"},
      {"err_syntax.toml", "[agent\nhost = \n"},
      {"err_duplicate_key.toml", "[agent]\na = 1\na = 2\n"},
      {"err_not_table.toml", "agent = 3\n"},
  };
}

Seeds agent_config() {
  agent::AgentConfig full;
  full.host = "kvm1";
  full.interval_s = 0.5;
  full.curve_secret_key = "/etc/vmtide/agent.key";
  full.metrics_listen = "off";
  full.discovery = "procfs";
  full.extra_pids = {1, 4294967295u};
  full.qmp_sockets = true;
  full.dirty = false;
  return {
      {"defaults.toml", agent::to_toml(agent::AgentConfig{})},
      {"full.toml", agent::to_toml(full)},
      {"minimal.toml", "[agent]\nhost = \"kvm7\"\n"},
      {"err_unknown_key.toml", "[agent]\nintreval = 1\n"},
      {"err_type.toml", "[publish]\nsndhwm = \"many\"\n"},
      {"err_range.toml", "[agent]\ninterval = -1\n[discovery]\nextra_pids = [-5]\n"},
      {"err_syntax.toml", "[collectors]\nbpf = yes\n"},
      {"regress_dirty_period_inf.toml", "[collectors]\ndirty_period = inf\n"},
  };
}

Seeds controller_config() {
  controller::ControllerConfig full;
  full.name = "ctl";
  full.mode = wire::Mode::kEnforce;
  full.agents = {"tcp://kvm1:7470", "tcp://kvm2:7470"};
  full.agent_curve_server_key = "/etc/vmtide/keys/agents.pub";
  full.agent_curve_server_keys["tcp://kvm2:7470"] = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";
  full.agent_curve_secret_key = "/etc/vmtide/controller.key";
  full.executor = "libvirt";
  full.libvirt_hosts["kvm1"] = {"qemu+ssh://kvm1/system", "qemu+tcp://kvm1/system", "tcp://10.0.0.1"};
  return {
      {"defaults.toml", controller::to_toml(controller::ControllerConfig{})},
      {"full.toml", controller::to_toml(full)},
      {"hosts_and_vms.toml",
       "[agents]\nendpoints = [\"tcp://kvm1:7470\"]\n"
       "[[host]]\nname = \"kvm1\"\nmaintenance = true\ntags = [\"vmtide.no-receive\"]\n"
       "libvirt_uri = \"qemu+ssh://kvm1/system\"\n"
       "[[host]]\nname = \"kvm2\"\n"
       "[[vm]]\nname = \"web1\"\ntags = [\"vmtide.pinned\"]\naffinity_group = \"g\"\nanti_affinity = \"a\"\n"},
      {"err_unknown_key.toml", "[balance]\nhihg = 0.9\n"},
      {"err_host_twice.toml", "[[host]]\nname = \"a\"\n[[host]]\nname = \"a\"\n"},
      {"err_vm_no_name.toml", "[[vm]]\ntags = []\n"},
      {"err_mode.toml", "[controller]\nmode = \"yolo\"\n"},
      {"err_band.toml", "[balance]\nhigh = 0.2\nlow = 0.9\n"},
  };
}

std::string tap_line(const std::string& vm, std::uint64_t mono_s, std::uint64_t cpu_ms) {
  wire::Message m = samples::full_vm();
  auto& v = std::get<wire::VmSample>(m.body);
  v.id = vm;
  v.cpu_ns = cpu_ms * 1'000'000;
  m.env.mono_ns = mono_s * 1'000'000'000;
  return wire::to_json(m) + "\n";
}

Seeds sim_scenario() {
  const std::string base =
      "[run]\nname = \"medium\"\nseed = 2\nduration_s = 3600\nround_s = 10\ntick_s = 10\n"
      "[cluster]\nhosts = 20\nhost_cpus = 32\nhost_mem_gib = 512\nlink_gbit_s = 10\nvms_per_host = 10\n"
      "[vms]\ndemand_cores = [0.6, 2.6]\nram_gib = [4, 32]\ntouched_frac = [0.4, 0.9]\ndirty_mib_s = [5, 200]\n"
      "trace = \"random_walk\"\ntrace_amplitude = 0.1\n"
      "[step]\nat_s = 600\nhosts_frac = 0.2\nfactor = 1.7\n";
  return {
      {"medium.toml", base},
      {"planner.toml", base + "[migration]\ncpu_cores = 0.25\nfail_after_s = 300\n"
                              "[metrics]\nbalanced_entropy = 0.95\nhigh_frac = 0.8\n"
                              "[planner]\nhigh_enter = 0.8\nhigh_exit = 0.7\nhot_sustain_s = 30\n"
                              "max_inflight_per_host = 1\n"},
      {"replay.toml", "[cluster]\nhosts = 2\nvms_per_host = 2\n[vms]\ntrace = \"replay\"\nreplay = \"replay.jsonl\"\n"
                      "\n#---\n" +
                          tap_line("a", 100, 500) + tap_line("b", 100, 1500) + tap_line("a", 101, 700) + "\n" +
                          wire::to_json(samples::full_host()) + "\n" + tap_line("a", 99, 1) + tap_line("b", 103, 0)},
      {"err_replay_line.toml", "[vms]\ntrace = \"replay\"\nreplay = \"replay.jsonl\"\n\n#---\n{\"v\":1,\"kind\"\n"},
      {"err_no_hosts.toml", "[cluster]\nhosts = 0\n"},
      {"err_trace.toml", "[vms]\ntrace = \"sine\"\n"},
      {"err_range.toml", "[vms]\nram_gib = [8, 4]\n"},
      {"regress_round_nan.toml", "[run]\nround_s = nan\nduration_s = inf\n"},
  };
}

Seeds decision_log() {
  std::string mixed;
  for (const auto& [name, m] : samples::all()) mixed += wire::to_json(m) + "\n";
  wire::Message later = samples::full_decision();
  std::get<wire::Decision>(later.body).outcome = wire::Outcome::kSucceeded;
  const std::string full = wire::to_json(samples::full_decision());
  return {
      {"one.jsonl", full + "\n"},
      {"mixed.jsonl", mixed},
      {"outcomes.jsonl", full + "\n" + wire::to_json(later) + "\n" + wire::to_json(samples::minimal_decision())},
      {"damaged.jsonl", full.substr(0, full.size() / 2) + "\n\n  \r\n" + full + "\r\n{}\nnot json\n" + full},
  };
}

Seeds qmp_json() {
  const std::string greeting =
      "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}, \"package\": \"\"}, "
      "\"capabilities\": [\"oob\"]}}\r\n";
  return {
      {"session.txt", greeting + "{\"return\": {}}\r\n{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, "
                                 "\"event\": \"MIGRATION\", \"data\": {\"status\": \"active\"}}\r\n"
                                 "{\"return\": {}, \"id\": \"vmtide-1\"}\r\n"},
      {"query_migrate_completed.txt",
       "{\"return\": {\"status\": \"completed\", \"setup-time\": 7, \"downtime\": 17, \"total-time\": 8163, "
       "\"ram\": {\"total\": 268967936, \"dirty-sync-count\": 9, \"downtime-bytes\": 8831817, \"remaining\": 0, "
       "\"mbps\": 265.24064443354587, \"transferred\": 270412837, \"duplicate\": 25050, \"dirty-pages-rate\": 0, "
       "\"normal\": 65807}}, \"id\": \"vmtide-3\"}\r\n"},
      {"query_migrate_active.txt",
       "{\"return\": {\"expected-downtime\": 300, \"status\": \"active\", \"setup-time\": 7, \"total-time\": 4847, "
       "\"ram\": {\"total\": 268967936, \"dirty-sync-count\": 2, \"remaining\": 56393728, \"mbps\": 273.96, "
       "\"transferred\": 162443719, \"dirty-pages-rate\": 2585}, \"cpu-throttle-percentage\": 20}}\n\x05"},
      {"query_migrate_failed.txt",
       "{\"return\": {\"status\": \"failed\", \"error-desc\": \"Unable to write to socket: Broken pipe\"}}\n"
       "{\"return\": {\"status\": \"cancelled\"}}\n{\"return\": {}}\n{\"return\": {\"status\": \"none\"}}\n"},
      {"query_dirty_rate.txt",
       "{\"return\": {\"status\": \"measured\", \"sample-pages\": 4096, \"dirty-rate\": 11, \"mode\": "
       "\"page-sampling\", \"start-time\": 1723, \"calc-time\": 500, \"calc-time-unit\": \"millisecond\"}}\n"
       "{\"return\": {\"status\": \"measuring\", \"start-time\": 5, \"calc-time\": 2, \"sample-pages\": 4096}}\n"},
      {"error_reply.txt", "{\"error\": {\"class\": \"GenericError\", \"desc\": \"There's a migration process in "
                          "progress\"}, \"id\": \"vmtide-2\"}\r\n"},
      {"escapes.txt", "{\"return\": {\"status\": \"m\\u0065asured\", \"x\": [1, -2, 3.5, 1e3, true, false, null, "
                      "\"\\ud83d\\ude00\\n\"]}}"},
      {"split.txt", greeting.substr(0, 40)},
  };
}

Seeds control() {
  return {
      {"plan_json.txt", "plan.json"},
      {"plan_text.txt", "plan\n"},
      {"health.txt", "health.json\nkvm9"},
      {"predict_json.txt", "predict.json big\n"},
      {"predict_text.txt", "predict big \n"},
      {"odd_name.txt", "predict.json vm \"\\\x01\x7f\xc3\xa9\nvm \"\\\x01\x7f\xc3\xa9"},
      {"unknown.txt", "dance\xff\n\t"},
  };
}

bool write(const std::filesystem::path& dir, const Seeds& seeds) {
  std::filesystem::create_directories(dir);
  for (const auto& [name, text] : seeds) {
    std::ofstream f(dir / name, std::ios::binary | std::ios::trunc);
    f.write(text.data(), static_cast<std::streamsize>(text.size()));
    if (!f) {
      std::fprintf(stderr, "writing %s failed\n", (dir / name).c_str());
      return false;
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  const std::filesystem::path out = argv[1];
  const bool ok = write(out / "toml_config", toml_config()) && write(out / "agent_config", agent_config()) &&
                  write(out / "controller_config", controller_config()) &&
                  write(out / "sim_scenario", sim_scenario()) && write(out / "decision_log", decision_log()) &&
                  write(out / "qmp_json", qmp_json()) && write(out / "control", control());
  return ok ? 0 : 1;
}
