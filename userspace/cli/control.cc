// SPDX-License-Identifier: Apache-2.0
// Control-socket client (control.h). cppzmq exceptions stop here.
#include "control.h"

#include <chrono>
#include <cstdio>

#include <zmq.hpp>

namespace vmtide::cli {

Result<std::string> control_query(const std::string& endpoint, const std::string& request, double timeout_s) {
  try {
    zmq::context_t ctx;
    zmq::socket_t req(ctx, zmq::socket_type::req);
    req.set(zmq::sockopt::linger, 0);
    req.set(zmq::sockopt::maxmsgsize, std::int64_t{64} << 20);
    req.connect(endpoint);
    (void)req.send(zmq::buffer(request), zmq::send_flags::none);
    zmq::pollitem_t item{req.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, std::chrono::milliseconds{static_cast<long>(timeout_s * 1000)});
    zmq::message_t answer;
    if (!(item.revents & ZMQ_POLLIN) || !req.recv(answer, zmq::recv_flags::dontwait)) {
      return make_error(Errc::kTransport, "no answer from the controller at " + endpoint + " within " +
                                              std::to_string(static_cast<int>(timeout_s)) +
                                              " s (is vmtide-controller running? [control] endpoint in controller.toml)");
    }
    return answer.to_string();
  } catch (const zmq::error_t& e) {
    return make_error(Errc::kTransport, "control endpoint " + endpoint + ": " + e.what());
  }
}

namespace {

int print_answer(const Result<std::string>& r) {
  if (!r) {
    std::fprintf(stderr, "vmtide: %s\n", r.error().message().c_str());
    return 2;
  }
  const std::string& s = *r;
  std::fputs(s.c_str(), stdout);
  if (!s.empty() && s.back() != '\n') std::fputc('\n', stdout);
  // The controller's errors: {"error": ...} or "error: ..." text.
  return s.rfind("{\"error\"", 0) == 0 || s.rfind("error:", 0) == 0 ? 1 : 0;
}

}  // namespace

int run_plan(const PlanOptions& o) {
  return print_answer(control_query(o.controller, o.json ? "plan.json" : "plan", o.timeout_s));
}

int run_predict_vm(const std::string& controller, const std::string& vm, bool json, double timeout_s) {
  return print_answer(control_query(controller, (json ? "predict.json " : "predict ") + vm, timeout_s));
}

}  // namespace vmtide::cli
