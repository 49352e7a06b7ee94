// SPDX-License-Identifier: Apache-2.0
// The controller's brain without its sockets: messages in, decision records
// out. It owns the model builder, the planner's history and the cost model,
// runs a round at the time it is given, and answers the control queries
// (`vmtide plan`, `vmtide predict --vm`). The daemon (main.cc) moves bytes
// between this and ZeroMQ and the decision log; tests drive it directly.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "builder.h"
#include "executor.h"
#include "controller_config.h"
#include "planner.h"
#include "calibration.h"
#include "precopy.h"
#include "vmtide/result.h"
#include "vmtide/wire/messages.h"

namespace vmtide::controller {

struct ControllerCounters {
  std::uint64_t migrations_started = 0;
  std::uint64_t migrations_succeeded = 0;
  std::uint64_t migrations_failed = 0;
  std::uint64_t migrations_recovered = 0;  // found running at start (a previous controller's)
  std::uint64_t rounds = 0;
  std::uint64_t round_errors = 0;
  std::uint64_t decisions = 0;  // published (after deduplication)
  std::uint64_t recommended = 0;
  std::uint64_t skipped = 0;
  std::uint64_t repeats_suppressed = 0;
};

class Controller {
 public:
  // `id_base` makes decision ids unique across restarts (e.g. the start
  // time as 20261201T103100); ids are "d-<id_base>-<n>".
  Controller(ControllerConfig cfg, std::string id_base);
  // Pinned: the cost model holds a pointer to this controller's calibration.
  Controller(const Controller&) = delete;
  Controller& operator=(const Controller&) = delete;

  void on_message(const wire::Message& m, model::TimeNs now) { builder_.on_message(m, now); }

  // One decision round at `now`: the model, the plan, and the decision
  // records to publish and log. In recommend mode nothing moves, so the
  // planner's per-VM and per-host move history is not committed (the next
  // round sees the same cluster and would recommend the same move), and a
  // recommendation or skip already published is repeated only when it
  // changes or after repeat_after. Observe mode returns no decisions.
  [[nodiscard]] Result<std::vector<wire::Decision>> round(model::TimeNs now);

  // Enforce mode: the executor that carries moves out (not owned). Without
  // one, enforce is refused by the daemon before a Controller exists.
  void set_executor(executor::Executor* ex) noexcept { executor_ = ex; }

  // Before the first round in enforce mode: the migrations the hypervisors
  // report as running (a previous controller's, killed mid-migration)
  // become in-flight here, so nothing is decided about their VMs and no
  // second migration of them starts. Returns how many were found.
  [[nodiscard]] Result<std::size_t> recover_in_flight(model::TimeNs now);

  // Follows the running migrations; each one that ended gives its decision
  // record again (same id) with outcome succeeded or failed and the real
  // figures, and feeds the outcome to the next round (cooldown, back-off,
  // hold-down). Also aborts none: the executor enforces its own timeout.
  [[nodiscard]] std::vector<wire::Decision> poll_migrations(model::TimeNs now);

  [[nodiscard]] std::size_t in_flight() const noexcept { return flights_.size(); }

  // What a round at `now` would plan, committing nothing.
  [[nodiscard]] Result<strategy::Plan> dry_run(model::TimeNs now) const;

  // Control-socket answers (docs/controller.md): JSON documents, and the
  // plain-language forms `vmtide plan` and `vmtide predict --vm` print.
  [[nodiscard]] std::string plan_json(model::TimeNs now) const;
  [[nodiscard]] std::string plan_text(model::TimeNs now) const;
  [[nodiscard]] std::string predict_json(std::string_view vm, model::TimeNs now) const;
  [[nodiscard]] std::string predict_text(std::string_view vm, model::TimeNs now) const;
  [[nodiscard]] std::string health_json(model::TimeNs now) const;
  // Dispatches a control request: "plan", "plan.json", "health.json",
  // "predict VM", "predict.json VM". Unknown ones get an "error" answer.
  [[nodiscard]] std::string handle_control(std::string_view request, model::TimeNs now) const;

  // Applies a reloaded configuration (the daemon checks endpoints itself).
  void reconfigure(ControllerConfig cfg);

  void prune(model::TimeNs now) { builder_.prune(now); }

  [[nodiscard]] const ControllerConfig& config() const noexcept { return cfg_; }
  [[nodiscard]] const model::ModelBuilder& builder() const noexcept { return builder_; }
  [[nodiscard]] const ControllerCounters& counters() const noexcept { return counters_; }
  [[nodiscard]] const strategy::PlannerState& planner_state() const noexcept { return state_; }
  [[nodiscard]] const predictor::CalibrationTable& calibration() const noexcept { return calibration_; }
  [[nodiscard]] const predictor::VmDirtyCalibration& vm_dirty() const noexcept { return vm_dirty_; }

  // How long an unchanged recommendation stays quiet before it is repeated.
  std::chrono::nanoseconds repeat_after = std::chrono::minutes{5};

 private:
  [[nodiscard]] std::string next_id();
  [[nodiscard]] predictor::Inputs predictor_inputs(const model::VmState& v, double bw) const;
  [[nodiscard]] double link_bw(const model::ClusterModel& m, const model::VmState& v) const;
  // True when this decision should be published now (not a repeat).
  bool fresh(const wire::Decision& d, model::TimeNs now);

  ControllerConfig cfg_;
  std::string id_base_;
  std::uint64_t next_ = 1;
  model::ModelBuilder builder_;
  predictor::CalibrationTable calibration_;  // per host pair, from finished migrations
  predictor::VmDirtyCalibration vm_dirty_;    // per VM, from its migrations' own dirty rate
  strategy::CostModel cost_;
  strategy::PlannerState state_;
  struct Last {
    std::string key;
    model::TimeNs at{0};
  };
  std::map<std::string, Last, std::less<>> last_;  // by source host (or VM for maintenance)
  ControllerCounters counters_;

  // Enforce mode.
  executor::Executor* executor_ = nullptr;
  struct Flight {
    std::string handle;
    wire::Decision record;  // as published when it started
    model::TimeNs started{0};
    strategy::MigrationCost cost;  // the prediction it started with
    // QEMU's dirty rate during the migration and the telemetry's
    // expectation of it over the same syncs.
    predictor::MigrationDirtyRate dirty{};
    // Whether its dirty rate is the guest's own: not under auto-converge's
    // throttle, and not a recovered migration whose settings are unknown.
    bool calibrates = false;
  };
  // The cluster as the builder has it, each VM's dirty curve scaled by
  // what its last migration measured (predictor::VmDirtyCalibration): what
  // every plan and prediction is made from.
  [[nodiscard]] model::ClusterModel model_now(model::TimeNs now) const;
  std::map<std::string, Flight, std::less<>> flights_;  // by VM id
  std::vector<strategy::MoveOutcome> outcomes_;         // since the last round
  [[nodiscard]] strategy::RoundInputs round_inputs() const;
  void start_migration(wire::Decision& d, const strategy::PlannedMove& mv, model::TimeNs now);
};

}  // namespace vmtide::controller
