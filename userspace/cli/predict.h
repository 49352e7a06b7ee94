// SPDX-License-Identifier: Apache-2.0
// `vmtide predict`: a pre-copy live migration predicted side by side by
// vmtide's model (QEMU's loop over the dirty curve, predict_precopy) and the
// constant-rate textbook baseline (predict_constant_rate). The offline form
// takes the VM's numbers from the command line; a live form (a running
// controller's numbers for one VM) fills the same PredictionSetup and
// PredictionPair and prints them with print_prediction.
#pragma once

#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "precopy.h"
#include "vmtide/result.h"

namespace vmtide::cli {

// What was predicted, as print_prediction describes it above the numbers.
struct PredictionSetup {
  std::string subject;  // e.g. "VM web-3 from kvm1 to kvm4"; empty for the offline form
  double ram_bytes = 0;
  double touched_bytes = 0;  // what pass 0 sends in full (predictor::Inputs::nonzero_bytes)
  double page_bytes = 4096;
  double bandwidth_bytes_per_s = 0;
  double downtime_limit_ms = 300;
  bool auto_converge = false;             // applies to the precopy model only
  std::string dirty;                      // how the VM dirties memory, in words
  double baseline_dirty_bytes_per_s = 0;  // the constant rate the baseline assumed
};

struct PredictionPair {
  predictor::Prediction precopy;        // predict_precopy
  predictor::Prediction constant_rate;  // predict_constant_rate, the baseline
};

enum class PredictFormat { kText, kJson };

// Text: a header, then one row per quantity with the two models side by
// side, and for a model that does not converge the bandwidth or throttle
// that would make it. Json: one object on one line,
// {"setup":{...},"precopy":{...},"constant_rate":{...}}, units in the keys.
void print_prediction(std::ostream& out, const PredictionSetup& setup, const PredictionPair& predictions,
                      PredictFormat format);

// The command line of the offline form, as typed.
struct PredictOptions {
  std::string ram;                         // SIZE, required
  std::optional<std::string> touched;      // SIZE, default: ram
  std::optional<std::string> working_set;  // SIZE: with dirty_rate, a uniform random writer over this set
  std::optional<std::string> dirty_rate;   // SIZE/s, constant
  std::optional<std::string> dirty_curve;  // "tau_s:pages,..."
  std::string bandwidth;                   // SIZE/s, required
  std::optional<std::string> link;         // SIZE/s: the uncapped link of the stop-and-copy (default: bandwidth)
  double downtime_limit_ms = 300;
  bool auto_converge = false;
  std::string page_size = "4096";
  bool json = false;
};

// "0.1:900,0.25:2100,1:5120" -> points (tau in seconds, pages). Order and
// monotonicity are checked by predictor::DirtyCurve::make.
[[nodiscard]] Result<std::vector<predictor::DirtyCurve::Point>> parse_dirty_curve(std::string_view text);

// Options -> what to print and what the two models get. With --dirty-rate R
// the precopy model's curve is a uniform random writer over --working-set
// (DirtyCurve::uniform_random), or without one the straight line R*tau
// capped at RAM; the baseline gets R. With --dirty-curve the baseline gets
// the curve's mean rate over its last point (pages(tau_n) / tau_n), what a
// dirty-rate sampler over that window reports. kInvalidArgument with the
// option's name for bad input.
struct PredictRequest {
  PredictionSetup setup;
  predictor::Inputs inputs;  // for predict_precopy
};
[[nodiscard]] Result<PredictRequest> make_predict_request(const PredictOptions& opts);

// Runs both models.
[[nodiscard]] Result<PredictionPair> predict_both(const PredictRequest& request);

// The subcommand: 0 after printing, 2 for bad input (message on err).
int run_predict(const PredictOptions& opts, std::ostream& out, std::ostream& err);

}  // namespace vmtide::cli
