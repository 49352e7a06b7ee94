// SPDX-License-Identifier: Apache-2.0
// `vmtide plan` and `vmtide predict --vm`: one request to the controller's
// control socket (a ZeroMQ REQ/REP pair, docs/controller.md), whose answer
// is printed as is.
#pragma once

#include <string>

#include "vmtide/result.h"

namespace vmtide::cli {

inline constexpr const char* kDefaultControlEndpoint = "tcp://127.0.0.1:7472";

// Sends `request` and waits up to timeout_s for the answer. kTransport when
// the controller does not answer (not running, wrong endpoint).
[[nodiscard]] Result<std::string> control_query(const std::string& endpoint, const std::string& request,
                                                double timeout_s = 5.0);

struct PlanOptions {
  std::string controller = kDefaultControlEndpoint;
  bool json = false;
  double timeout_s = 5.0;
};
int run_plan(const PlanOptions& o);

// The live-VM form of `vmtide predict`.
int run_predict_vm(const std::string& controller, const std::string& vm, bool json, double timeout_s);

}  // namespace vmtide::cli
