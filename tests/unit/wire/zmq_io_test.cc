// SPDX-License-Identifier: Apache-2.0
// send_message / recv_message over a loopback inproc PAIR: framing, message
// boundaries after bad input, and ZeroMQ errors surfacing as Result values.
#include <gtest/gtest.h>

#include <string>
#include <zmq.hpp>

#include "samples.h"
#include "vmtide/wire/zmq_io.h"

namespace vmtide::wire {
namespace {

// PAIR over inproc delivers from the first send: no slow-joiner handshake.
class WireZmq : public ::testing::Test {
 protected:
  void SetUp() override {
    rx_.bind("inproc://wire-zmq-test");
    tx_.connect("inproc://wire-zmq-test");
  }
  void send_frames(std::initializer_list<std::string> frames) {
    std::size_t left = frames.size();
    for (const auto& f : frames) {
      ASSERT_TRUE(tx_.send(zmq::buffer(f), --left ? zmq::send_flags::sndmore : zmq::send_flags::none));
    }
  }

  zmq::context_t ctx_;
  zmq::socket_t rx_{ctx_, zmq::socket_type::pair};
  zmq::socket_t tx_{ctx_, zmq::socket_type::pair};
};

TEST_F(WireZmq, SendThenReceiveEveryKind) {
  for (const auto& [name, m] : samples::all()) {
    auto sent = send_message(tx_, m);
    ASSERT_TRUE(sent) << sent.error().message();
    EXPECT_TRUE(*sent);
    auto got = recv_message(rx_);
    ASSERT_TRUE(got) << name << ": " << got.error().message();
    ASSERT_TRUE(got->has_value());
    EXPECT_EQ(**got, m) << name;
  }
}

TEST_F(WireZmq, NothingReadyWithDontwait) {
  auto got = recv_message(rx_, zmq::recv_flags::dontwait);
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_FALSE(got->has_value());
}

TEST_F(WireZmq, WrongFrameCountKeepsMessageBoundaries) {
  const Message m = samples::full_hb();
  send_frames({topic(m), encode(m), "extra"});
  send_frames({topic(m)});
  ASSERT_TRUE(send_message(tx_, m).ok());

  auto three = recv_message(rx_);
  ASSERT_FALSE(three);
  EXPECT_EQ(three.error().code, Errc::kWireMalformed);
  auto one = recv_message(rx_);
  ASSERT_FALSE(one);
  EXPECT_EQ(one.error().code, Errc::kWireMalformed);
  auto good = recv_message(rx_);
  ASSERT_TRUE(good) << good.error().message();
  EXPECT_EQ(**good, m);
}

TEST_F(WireZmq, TopicMustMatchBody) {
  const Message m = samples::full_hb();
  send_frames({"vmtide.v1.hb.node2", encode(m)});
  auto got = recv_message(rx_);
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code, Errc::kWireKind);
}

TEST_F(WireZmq, ZmqErrorsBecomeTransportErrors) {
  rx_.close();
  auto got = recv_message(rx_);
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code, Errc::kTransport);
  auto limits = apply_limits(rx_);
  ASSERT_FALSE(limits);
  EXPECT_EQ(limits.error().code, Errc::kTransport);
  tx_.close();
  auto sent = send_message(tx_, samples::minimal_hb());
  ASSERT_FALSE(sent);
  EXPECT_EQ(sent.error().code, Errc::kTransport);
}

TEST_F(WireZmq, ApplyLimitsSetsMaxMessageSize) {
  ASSERT_TRUE(apply_limits(rx_, DecodeLimits{.max_bytes = 4096}).ok());
  EXPECT_EQ(rx_.get(zmq::sockopt::maxmsgsize), 4096);
}

}  // namespace
}  // namespace vmtide::wire
