// SPDX-License-Identifier: Apache-2.0
// vmtide: the command-line tool for operators and subscribers. Subcommands
// tap (the stream as JSON lines), top (a live table of VMs), keygen (CURVE
// keys, docs/security.md), explain (a decision from the decision log in
// plain language), predict (a pre-copy migration, offline or for a live VM
// through the controller), plan (what the controller's next round would do).
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>

#include "control.h"
#include "explain.h"
#include "keygen.h"
#include "predict.h"
#include "tap.h"
#include "top.h"
#include "vmtide/version.h"

namespace {
// The same two options on every subscribing subcommand (docs/security.md).
constexpr const char* kServerKeyHelp =
    "the agent's CURVE public key: its .pub file or the 40 Z85 characters (the agent runs with "
    "publish.curve_secret_key)";
constexpr const char* kClientKeyHelp = "own CURVE keypair, a .key file from `vmtide keygen` (default: a fresh one)";
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vmtide: watch and steer a vmtide cluster"};
  app.set_version_flag("--version", std::string("vmtide ") + VMTIDE_VERSION + " (" + VMTIDE_GIT + ")");
  app.require_subcommand(1);

  vmtide::cli::TapOptions tap;
  auto* t = app.add_subcommand("tap", "print the telemetry and decision stream as JSON lines");
  t->add_option("-c,--connect", tap.endpoints, "publisher endpoint (repeatable), e.g. tcp://kvm1:7470")->required();
  t->add_option("--kind", tap.kind, "only this kind: vm, host, hb, decision, event");
  t->add_option("--host", tap.host, "only this publisher host (needs --kind)");
  t->add_option("--vm", tap.vms, "only messages about this VM id or name (repeatable)");
  t->add_option("-n,--count", tap.count, "exit after printing this many messages");
  t->add_option("--timeout", tap.timeout_s, "exit with status 1 after this many seconds")
      ->check(CLI::NonNegativeNumber);
  t->add_option("--server-key", tap.server_key, kServerKeyHelp)->type_name("FILE|Z85");
  t->add_option("--client-key", tap.client_key, kClientKeyHelp)->type_name("FILE");

  vmtide::cli::TopOptions top;
  auto* tp = app.add_subcommand("top", "live table of every VM across the agents: CPU, steal, dirty rate, I/O");
  tp->add_option("-c,--connect", top.endpoints, "agent endpoint (repeatable), e.g. tcp://kvm1:7470")->required();
  tp->add_option("--sort", top.sort, "cpu, steal, dirty, io or name (keys c s d i n while running)")
      ->capture_default_str();
  tp->add_option("--refresh", top.refresh_s, "seconds between redraws")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 60.0));
  tp->add_option("-n,--frames", top.frames, "exit after this many frames");
  tp->add_option("--server-key", top.server_key, kServerKeyHelp)->type_name("FILE|Z85");
  tp->add_option("--client-key", top.client_key, kClientKeyHelp)->type_name("FILE");

  vmtide::cli::KeygenOptions keygen;
  auto* kg = app.add_subcommand("keygen", "write a CURVE keypair: PATH.key (secret, 0600) and PATH.pub (public)");
  kg->add_option("PATH", keygen.prefix, "path prefix, e.g. /etc/vmtide/agent")->required();
  kg->add_flag("--force", keygen.force, "replace existing PATH.key and PATH.pub");

  vmtide::cli::PlanOptions plan;
  auto* pl = app.add_subcommand("plan", "what the controller's next round would do, and why (changes nothing)");
  pl->add_option("--controller", plan.controller, "the controller's control endpoint")->capture_default_str();
  pl->add_flag("--json", plan.json, "the plan as one JSON document");
  pl->add_option("--timeout", plan.timeout_s, "seconds to wait for the answer")->capture_default_str();

  vmtide::cli::ExplainOptions explain;
  auto* ex = app.add_subcommand("explain", "why the controller decided what it did: one decision in plain language");
  auto* id = ex->add_option("ID", explain.id, "decision id, as in the log and on the decision stream");
  auto* last = ex->add_option("--last", explain.last, "explain the last N decisions instead (default 1)")
                   ->expected(0, 1)
                   ->default_str("1")
                   ->check(CLI::PositiveNumber);
  id->excludes(last);
  ex->add_option("--log", explain.log, "the controller's decision log")->capture_default_str();
  ex->final_callback([&] {
    if (explain.id.empty() && !explain.last) throw CLI::RequiredError("ID or --last");
  });

  vmtide::cli::PredictOptions predict;
  auto* pr = app.add_subcommand(
      "predict", "predict a pre-copy live migration: vmtide's model and the constant-rate baseline side by side");
  std::string predict_vm;
  std::string predict_controller = vmtide::cli::kDefaultControlEndpoint;
  auto* vm_opt = pr->add_option("--vm", predict_vm,
                                "a live VM (name or uuid): the running controller predicts from its measured "
                                "RAM, touched memory, dirty curve and link (the other options do not apply)");
  pr->add_option("--controller", predict_controller, "with --vm: the controller's control endpoint")
      ->capture_default_str();
  auto* ram_opt =
      pr->add_option("--ram", predict.ram, "guest RAM, e.g. 4Gi (K M G T: powers of 1000; Ki Mi Gi Ti: of 1024)");
  pr->add_option("--touched,--rss", predict.touched, "non-zero (touched) memory pass 0 sends in full (default: --ram)");
  auto* rate = pr->add_option("--dirty-rate", predict.dirty_rate, "distinct bytes dirtied per second, e.g. 20M/s");
  auto* curve = pr->add_option("--dirty-curve", predict.dirty_curve,
                               "measured distinct pages dirtied within tau seconds: \"tau_s:pages,...\"");
  rate->excludes(curve);
  pr->add_option("--working-set", predict.working_set,
                 "with --dirty-rate: random writes over this much memory (default: a straight line up to --ram)");
  auto* bw_opt =
      pr->add_option("--bandwidth", predict.bandwidth, "migration bandwidth, bytes per second, e.g. 1.25G/s");
  auto* link_opt = pr->add_option("--link", predict.link,
                                  "the link's own rate, bytes per second: QEMU's final stop-and-copy ignores the "
                                  "bandwidth cap (default: --bandwidth)");
  vm_opt->excludes(ram_opt)->excludes(bw_opt)->excludes(rate)->excludes(curve)->excludes(link_opt);
  pr->add_option("--downtime-limit", predict.downtime_limit_ms, "QEMU's downtime-limit, ms")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  pr->add_flag("--auto-converge", predict.auto_converge, "QEMU throttles the guest when it dirties too fast");
  pr->add_option("--page-size", predict.page_size, "guest page size")->capture_default_str();
  pr->add_flag("--json", predict.json, "print one JSON object instead of a table");
  pr->final_callback([&] {
    if (vm_opt->count() > 0) return;
    if (ram_opt->count() == 0) throw CLI::RequiredError("--ram (or --vm NAME for a live VM)");
    if (bw_opt->count() == 0) throw CLI::RequiredError("--bandwidth");
    if (!predict.dirty_rate && !predict.dirty_curve) throw CLI::RequiredError("--dirty-rate or --dirty-curve");
  });

  CLI11_PARSE(app, argc, argv);
  if (*pl) return vmtide::cli::run_plan(plan);
  if (*t) return vmtide::cli::run_tap(tap);
  if (*tp) return vmtide::cli::run_top(top);
  if (*kg) return vmtide::cli::run_keygen(keygen);
  if (*ex) return vmtide::cli::run_explain(explain, std::cout, std::cerr);
  if (*pr && vm_opt->count() > 0) return vmtide::cli::run_predict_vm(predict_controller, predict_vm, predict.json, 5.0);
  if (*pr) return vmtide::cli::run_predict(predict, std::cout, std::cerr);
  return 0;
}
