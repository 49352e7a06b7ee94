// SPDX-License-Identifier: Apache-2.0
// Reading the agent's Prometheus /metrics in tests: one plain HTTP GET and
// a lookup of one series.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <optional>
#include <sstream>
#include <string>

namespace vmtide::testsupport {

// GET http://127.0.0.1:port/metrics (HTTP/1.0: the server closes when done).
inline std::string scrape(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string body;
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    const std::string req = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (write(fd, req.data(), req.size()) == static_cast<ssize_t>(req.size())) {
      char buf[65536];
      ssize_t n;
      while ((n = read(fd, buf, sizeof buf)) > 0) body.append(buf, static_cast<std::size_t>(n));
    }
  }
  close(fd);
  return body;
}

// The value of the first series of `metric` whose labels contain `label`.
inline std::optional<double> metric_value(const std::string& text, const std::string& metric,
                                          const std::string& label) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(metric + "{", 0) == 0 && line.find(label) != std::string::npos) {
      return std::stod(line.substr(line.rfind(' ') + 1));
    }
  }
  return std::nullopt;
}

}  // namespace vmtide::testsupport
