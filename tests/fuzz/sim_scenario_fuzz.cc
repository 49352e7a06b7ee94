// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for simulator scenarios (controller/sim/scenario.cc) and
// the `vmtide tap` recordings they replay. An input is a scenario, then
// optionally a line "#---" and the text of replay.jsonl, which a scenario
// names as [vms] replay = "replay.jsonl" (read relative to the scenario,
// here in a private temporary directory). Scenarios parse or fail naming
// file and line; an accepted one validates; replayed traces start at t = 0
// and run forward with finite, non-negative demand.
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "scenario.h"

namespace {

void require(bool ok, const char* invariant) {
  if (!ok) {
    std::fprintf(stderr, "scenario invariant violated: %s\n", invariant);
    std::abort();
  }
}

// A private directory, removed at exit. The path is never destroyed, so
// the exit handler cannot outlive it.
const std::filesystem::path& dir() {
  static const std::filesystem::path* d = [] {
    char tmpl[] = "/tmp/vmtide-fuzz-scenario.XXXXXX";
    const char* made = ::mkdtemp(tmpl);
    require(made != nullptr, "mkdtemp failed");
    std::atexit([] { std::filesystem::remove_all(dir()); });
    return new std::filesystem::path(made);
  }();
  return *d;
}

void check_traces(const std::vector<vmtide::sim::ReplayTrace>& traces) {
  for (const auto& t : traces) {
    require(!t.points.empty(), "a replayed VM has no points");
    require(t.points.front().t_s == 0, "a trace does not start at t = 0");
    for (std::size_t i = 0; i < t.points.size(); ++i) {
      require(std::isfinite(t.points[i].cores) && t.points[i].cores >= 0, "demand not finite and >= 0");
      require(std::isfinite(t.points[i].dirty_bytes_s) && t.points[i].dirty_bytes_s >= -1,
              "dirty rate not finite, or below -1 (not measured)");
      if (i > 0) require(t.points[i].t_s > t.points[i - 1].t_s, "trace times do not increase");
    }
    require(std::isfinite(t.ram_bytes) && t.ram_bytes >= 0, "RAM not finite and >= 0");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace vmtide::sim;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::string_view replay;
  if (const auto cut = text.find("\n#---\n"); cut != std::string_view::npos) {
    replay = text.substr(cut + 6);
    text = text.substr(0, cut + 1);
  }
  const std::filesystem::path replay_path = dir() / "replay.jsonl";
  {
    std::ofstream f(replay_path, std::ios::binary | std::ios::trunc);
    f.write(replay.data(), static_cast<std::streamsize>(replay.size()));
    require(f.good(), "writing replay.jsonl failed");
  }
  if (auto traces = load_replay(replay_path.string())) check_traces(*traces);

  const std::string source = (dir() / "scenario.toml").string();
  auto s = parse_scenario(text, source);
  if (!s) {
    require(s.error().context.rfind(source + ":", 0) == 0, "an error does not name the scenario file");
    return 0;
  }
  require(validate(*s).ok(), "parse_scenario accepted a scenario validate() rejects");
  // The simulator's clock is integer milliseconds (llround(s * 1000)).
  for (const double sec : {s->duration_s, s->round_s, s->tick_s}) {
    require(std::isfinite(sec) && sec > 0 && sec * 1000 < 9.2e18, "an accepted scenario has a time that is "
                                                                   "not a finite number of milliseconds");
  }
  check_traces(s->replay);
  return 0;
}
