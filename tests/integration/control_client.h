// SPDX-License-Identifier: Apache-2.0
// The controller's control socket from a test: one request, its answer
// (what `vmtide plan` and `vmtide predict` do), bounded at 5 s.
#pragma once

#include <string>

#include <zmq.hpp>

namespace vmtide::testsupport {

inline std::string ask_controller(zmq::context_t& ctx, const std::string& endpoint, const std::string& request) {
  zmq::socket_t req(ctx, zmq::socket_type::req);
  req.set(zmq::sockopt::linger, 0);
  req.set(zmq::sockopt::rcvtimeo, 5000);
  req.connect(endpoint);
  req.send(zmq::buffer(request));
  zmq::message_t answer;
  if (!req.recv(answer)) return "(no answer within 5 s)";
  return answer.to_string();
}

}  // namespace vmtide::testsupport
