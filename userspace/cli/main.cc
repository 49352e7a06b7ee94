// SPDX-License-Identifier: Apache-2.0
// vmtide: the command-line tool for operators and subscribers. Subcommands
// so far: tap (the stream as JSON lines), top (a live table of VMs), keygen
// (CURVE keys for an encrypted stream, docs/security.md).
#include <string>

#include <CLI/CLI.hpp>

#include "control.h"
#include "keygen.h"
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
  t->add_option("-c,--connect", tap.endpoints, "publisher endpoint (repeatable), e.g. tcp://kvm1:7470")
      ->required();
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
  tp->add_option("--refresh", top.refresh_s, "seconds between redraws")->capture_default_str()->check(
      CLI::Range(0.1, 60.0));
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

  CLI11_PARSE(app, argc, argv);
  if (*pl) return vmtide::cli::run_plan(plan);
  if (*t) return vmtide::cli::run_tap(tap);
  if (*tp) return vmtide::cli::run_top(top);
  if (*kg) return vmtide::cli::run_keygen(keygen);
  return 0;
}
