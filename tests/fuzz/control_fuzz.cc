// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for the controller's control socket
// (Controller::handle_control in controller/daemon/controller.cc) and for
// what an agent's strings do to its answers. The input's first line is a
// request; the rest is a name a (malicious) agent uses for its host and
// for a VM's id and name, sent through the wire codec like any message.
// Every answer a .json request gets must be one valid JSON document.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>

#include "controller.h"
#include "json_reader.h"
#include "vmtide/wire/codec.h"

namespace {

using namespace vmtide;
namespace json = discovery::json;

void require(bool ok, const char* invariant, std::string_view text = {}) {
  if (!ok) {
    std::fprintf(stderr, "control invariant violated: %s\n%.*s\n", invariant, static_cast<int>(text.size()),
                 text.data());
    std::abort();
  }
}

constexpr std::uint64_t kSec = 1'000'000'000ULL;
model::TimeNs at(int s) { return model::TimeNs{static_cast<std::int64_t>(s) * static_cast<std::int64_t>(kSec)}; }

struct Agent {
  std::string host;
  std::uint64_t seq = 0;
  // Through the codec, as the ingest would see it: what it rejects, the
  // controller never gets.
  bool send(controller::Controller& ctl, wire::Message::Body body, int t) {
    wire::Message m;
    m.env.host = host;
    m.env.epoch = 1;
    m.env.seq = ++seq;
    m.env.interval_ns = std::holds_alternative<wire::Heartbeat>(body) ? 0 : kSec;
    m.body = std::move(body);
    auto back = wire::decode(wire::as_bytes(wire::encode(m)));
    if (!back) return false;
    ctl.on_message(*back, at(t));
    return true;
  }
  bool host_sample(controller::Controller& ctl, double load, int t) {
    wire::HostSample h{.cpus = 8};
    h.cpu_busy_ns = static_cast<std::uint64_t>(load * 8 * kSec);
    h.mem_total_bytes = 128ULL << 30;
    h.mem_avail_bytes = 64ULL << 30;
    h.link_bps = 10'000'000'000ULL;
    return send(ctl, h, t);
  }
  bool vm(controller::Controller& ctl, const std::string& id, const std::string& name, double cores, int t) {
    wire::VmSample v;
    v.id = id;
    v.name = name;
    v.vcpus = 4;
    v.cpu_ns = static_cast<std::uint64_t>(cores * kSec);
    v.ram_bytes = 4ULL << 30;
    v.rss_bytes = 2ULL << 30;
    v.dirty = wire::Dirty{wire::DirtySource::kQemu, 2 * kSec, 4000, 4096, {}};
    return send(ctl, v, t);
  }
};

void check_json(std::string_view answer, std::string_view request) {
  json::Limits big{.max_depth = 64, .max_values = 10'000'000, .max_string = 1 << 24};
  auto v = json::parse(answer, big);
  if (!v) std::fprintf(stderr, "request '%.*s': %s\n", static_cast<int>(request.size()), request.data(),
                       v.error().message().c_str());
  require(v.ok() && v->is_object(), "a JSON answer is not one JSON object", answer);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto nl = input.find('\n');
  const std::string_view request = input.substr(0, nl);
  const std::string name(nl == std::string_view::npos ? std::string_view{} : input.substr(nl + 1));

  controller::ControllerConfig cfg;
  cfg.model.tau = std::chrono::seconds{2};
  cfg.planner.hot_sustain = std::chrono::seconds{3};
  cfg.planner.cold_sustain = std::chrono::seconds{3};
  controller::Controller ctl(cfg, "F");
  Agent hot{"kvm1"}, idle{"kvm2"}, odd{name};
  for (int t = 1; t <= 5; ++t) {
    hot.host_sample(ctl, 0.95, t);
    hot.vm(ctl, "big", "web", 3.0, t);
    hot.vm(ctl, name, name, 2.5, t);
    idle.host_sample(ctl, 0.10, t);
    odd.host_sample(ctl, 0.5, t);
    odd.vm(ctl, name + "-2", name, 1.0, t);
    (void)ctl.round(at(t));
  }
  const std::string answer = ctl.handle_control(request, at(5));
  std::string_view req = request;
  while (!req.empty() && (req.back() == ' ' || req.back() == '\n')) req.remove_suffix(1);
  const bool text_form = req == "plan" || req.starts_with("predict ");
  if (!text_form) check_json(answer, request);
  for (const std::string& r : {std::string("plan.json"), std::string("health.json"), "predict.json " + name,
                               "predict.json " + name + "-2"}) {
    check_json(ctl.handle_control(r, at(5)), r);
  }
  (void)ctl.handle_control("plan", at(5));
  (void)ctl.handle_control("predict " + name, at(5));
  return 0;
}
