// SPDX-License-Identifier: Apache-2.0
// Wire codec: round trips, every decoder error on hand-built msgpack, forward
// compatibility, topics and truncation.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <variant>
#include <vector>

#include "msgpack_tree.h"
#include "samples.h"
#include "vmtide/wire/codec.h"

namespace vmtide::wire {
namespace {

using testing::Array;
using ::testing::HasSubstr;
using testing::Map;
using testing::Raw;
using testing::Value;

Result<Message> decode_str(const std::string& bytes, const DecodeLimits& limits = {}) {
  return decode(as_bytes(bytes), limits);
}

// The decoder's error code for `bytes`, or kOk.
Errc code_of(const std::string& bytes, const DecodeLimits& limits = {}) {
  const auto r = decode_str(bytes, limits);
  return r ? Errc::kOk : r.error().code;
}

Errc code_of(const Value& tree) { return code_of(testing::pack(tree)); }

Value tree_of(const Message& m) { return testing::unpack(encode(m)); }

// ---- round trips -----------------------------------------------------------

TEST(WireCodec, RoundTripEverySample) {
  for (const auto& [name, m] : samples::all()) {
    SCOPED_TRACE(name);
    const std::string bytes = encode(m);
    auto back = decode_str(bytes);
    ASSERT_TRUE(back) << back.error().message();
    EXPECT_EQ(*back, m);
    auto with_topic = decode(topic(m), as_bytes(bytes));
    ASSERT_TRUE(with_topic) << with_topic.error().message();
    EXPECT_EQ(*with_topic, m);
  }
}

TEST(WireCodec, FullSamplesCarryEveryOptionalKey) {
  // Guards the round-trip test: if a new optional key is added to the schema
  // but not to samples::full_*(), the key count here changes.
  EXPECT_EQ(tree_of(samples::full_vm()).map().size(), 8u + 13u);
  EXPECT_EQ(tree_of(samples::full_vm())["dirty"].map().size(), 5u);
  EXPECT_EQ(tree_of(samples::full_vm())["io"].map().size(), 6u);
  EXPECT_EQ(tree_of(samples::full_vm())["psi"].map().size(), 6u);
  EXPECT_EQ(tree_of(samples::full_host()).map().size(), 8u + 11u);
  EXPECT_EQ(tree_of(samples::full_hb()).map().size(), 8u + 4u);
  EXPECT_EQ(tree_of(samples::full_decision()).map().size(), 8u + 15u);
  EXPECT_EQ(tree_of(samples::full_decision())["predict"].map().size(), 7u);
  EXPECT_EQ(tree_of(samples::full_decision())["candidates"][1].map().size(), 6u);
  EXPECT_EQ(tree_of(samples::full_event()).map().size(), 8u + 4u);
}

TEST(WireCodec, AbsentOptionalsAreNotEncoded) {
  Value vm = tree_of(samples::minimal_vm());
  std::vector<std::string> keys;
  for (const auto& [k, v] : vm.map()) keys.push_back(k);
  EXPECT_THAT(keys, ::testing::ElementsAre("v", "kind", "host", "epoch", "seq", "ts_ns", "mono_ns", "interval_ns", "id",
                                           "name", "pid", "vcpus", "cpu_ns", "steal_ns", "ram_bytes", "rss_bytes"));
  EXPECT_EQ(tree_of(samples::minimal_host()).map().size(), 8u + 8u);
  EXPECT_EQ(tree_of(samples::minimal_hb()).map().size(), 8u + 4u);
  EXPECT_EQ(tree_of(samples::minimal_decision()).map().size(), 8u + 8u);
  EXPECT_EQ(tree_of(samples::minimal_event()).map().size(), 8u + 2u);
}

TEST(WireCodec, EncodesFloatsAsFloat64EvenWhenIntegral) {
  Value t = tree_of(samples::minimal_host());  // load1 == 0.0
  EXPECT_TRUE(std::holds_alternative<double>(t["load1"].v));
  Message big = samples::full_host();
  std::get<HostSample>(big.body).load15 = 18446744073709551616.0;  // 2^64
  auto back = decode_str(encode(big));
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(*back, big);
}

// ---- encodings other publishers may choose ---------------------------------

TEST(WireCodec, AcceptsAlternativeNumberEncodings) {
  Value t = tree_of(samples::full_host());
  t.set("load1", 2);               // integer for a float
  t.set("load5", 1.5f);            // float32
  t.set("load15", -1);             // negative integer for a float
  t.set("cpus", Raw{"\xd0\x05"});  // int8 5 for an unsigned integer
  t.set("ts_ns", -5);              // wall clock before 1970
  auto m = decode_str(testing::pack(t));
  ASSERT_TRUE(m) << m.error().message();
  const auto& h = std::get<HostSample>(m->body);
  EXPECT_EQ(h.load1, 2.0);
  EXPECT_EQ(h.load5, 1.5);
  EXPECT_EQ(h.load15, -1.0);
  EXPECT_EQ(h.cpus, 5u);
  EXPECT_EQ(m->env.ts_ns, -5);
}

TEST(WireCodec, IgnoresUnknownKeysAtEveryLevel) {
  Value t = tree_of(samples::full_vm());
  const Value future = Map{{"a", Array{1, "x", Map{{"b", nullptr}}}}};
  t.set("x_future", future);
  t["dirty"].set("x_future", future);
  t["io"].set("x_future", 1);
  t["psi"].set("x_future", "s");
  t["preempt"][0].set("x_future", 2.5);
  auto m = decode_str(testing::pack(t));
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_EQ(*m, samples::full_vm());

  Value d = tree_of(samples::full_decision());
  d["predict"].set("x_future", true);
  d["candidates"][1].set("x_future", Array{});
  auto md = decode_str(testing::pack(d));
  ASSERT_TRUE(md) << md.error().message();
  EXPECT_EQ(*md, samples::full_decision());
}

TEST(WireCodec, EmptyArrayEqualsAbsent) {
  Value t = tree_of(samples::minimal_vm());
  t.set("steal_hist", Array{});
  auto m = decode_str(testing::pack(t));
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_EQ(*m, samples::minimal_vm());
}

// ---- errors from the msgpack layer -----------------------------------------

TEST(WireDecodeErrors, TooLargeIsCheckedBeforeParsing) {
  EXPECT_EQ(code_of(std::string((1 << 20) + 1, '\xc1')), Errc::kWireTooLarge);
  const std::string ok = encode(samples::full_vm());
  EXPECT_EQ(code_of(ok, DecodeLimits{.max_bytes = ok.size() - 1}), Errc::kWireTooLarge);
  EXPECT_EQ(code_of(ok, DecodeLimits{.max_bytes = ok.size()}), Errc::kOk);
}

TEST(WireDecodeErrors, EveryTruncatedPrefixIsTruncated) {
  for (const auto& [name, m] : samples::all()) {
    const std::string bytes = encode(m);
    for (std::size_t len = 0; len < bytes.size(); ++len) {
      EXPECT_EQ(code_of(bytes.substr(0, len)), Errc::kWireTruncated) << name << " cut at " << len;
    }
  }
}

TEST(WireDecodeErrors, Malformed) {
  EXPECT_EQ(code_of(std::string("\xc1")), Errc::kWireMalformed);  // never-used type byte
  EXPECT_EQ(code_of(encode(samples::minimal_hb()) + '\x00'), Errc::kWireMalformed);
  EXPECT_EQ(code_of(encode(samples::minimal_hb()) + encode(samples::minimal_hb())), Errc::kWireMalformed);
}

TEST(WireDecodeErrors, DuplicateKeysAreMalformed) {
  Value t = tree_of(samples::minimal_vm());
  t.map().emplace_back("pid", 1);
  EXPECT_EQ(code_of(t), Errc::kWireMalformed);

  Value nested = tree_of(samples::full_vm());
  nested["dirty"].map().emplace_back("pages", 1);
  const auto r = decode_str(testing::pack(nested));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kWireMalformed);
  EXPECT_THAT(r.error().context, HasSubstr("vm.dirty.pages"));

  Value ev = tree_of(samples::full_event());
  ev["fields"].map().emplace_back("dst", "again");
  EXPECT_EQ(code_of(ev), Errc::kWireMalformed);
}

TEST(WireDecodeErrors, TooDeep) {
  Value deep = 1;
  for (int i = 0; i < 8; ++i) deep = Array{deep};  // top map + 8 arrays = 9 levels
  Value t = tree_of(samples::minimal_hb());
  t.set("x_future", deep);
  EXPECT_EQ(code_of(t), Errc::kWireTooDeep);

  Value fits = 1;
  for (int i = 0; i < 7; ++i) fits = Array{fits};
  t.set("x_future", fits);
  EXPECT_EQ(code_of(t), Errc::kOk);
}

TEST(WireDecodeErrors, OversizeAtTheMsgpackLayer) {
  Value t = tree_of(samples::minimal_hb());
  t.set("x_future", Array(4097, Value(0)));
  EXPECT_EQ(code_of(t), Errc::kWireOversize);

  Map big;
  for (int i = 0; i < 257; ++i) big.emplace_back("k" + std::to_string(i), 0);
  t.set("x_future", big);
  EXPECT_EQ(code_of(t), Errc::kWireOversize);

  t.set("x_future", std::string(4097, 'a'));
  EXPECT_EQ(code_of(t), Errc::kWireOversize);
  t.set("x_future", std::string(4096, 'a'));
  EXPECT_EQ(code_of(t), Errc::kOk);

  t.set("x_future", Raw{std::string("\xc4\x01\x00", 3)});  // bin 8, one byte
  EXPECT_EQ(code_of(t), Errc::kWireOversize);
  t.set("x_future", Raw{std::string("\xd4\x01\x00", 3)});  // fixext 1
  EXPECT_EQ(code_of(t), Errc::kWireOversize);

  // A header claiming 2^32-1 elements is refused before anything is allocated.
  EXPECT_EQ(code_of(std::string("\xdd\xff\xff\xff\xff", 5)), Errc::kWireOversize);
  EXPECT_EQ(code_of(std::string("\xdf\xff\xff\xff\xff", 5)), Errc::kWireOversize);
}

TEST(WireDecodeErrors, OversizeAtTheSchemaCaps) {
  Value vm = tree_of(samples::full_vm());
  vm.set("steal_hist", Array(65, Value(0)));
  EXPECT_EQ(code_of(vm), Errc::kWireOversize);
  vm = tree_of(samples::full_vm());
  vm["io"].set("lat_hist", Array(65, Value(0)));
  EXPECT_EQ(code_of(vm), Errc::kWireOversize);
  vm = tree_of(samples::full_vm());
  vm.set("preempt", Array(17, Value(Map{{"tgid", 1}, {"comm", "x"}, {"ns", 1}})));
  EXPECT_EQ(code_of(vm), Errc::kWireOversize);
  vm.set("preempt", Array(16, Value(Map{{"tgid", 1}, {"comm", "x"}, {"ns", 1}})));
  EXPECT_EQ(code_of(vm), Errc::kOk);
  vm["dirty"].set("curve", Array(257, Value(Array{1, 2})));
  EXPECT_EQ(code_of(vm), Errc::kWireOversize);

  Value d = tree_of(samples::full_decision());
  d.set("candidates", Array(257, d["candidates"][0]));
  EXPECT_EQ(code_of(d), Errc::kWireOversize);

  Value ev = tree_of(samples::full_event());
  Map fields;
  for (int i = 0; i < 65; ++i) fields.emplace_back("k" + std::to_string(i), "v");
  ev.set("fields", fields);
  EXPECT_EQ(code_of(ev), Errc::kWireOversize);
}

// ---- errors from the schema ------------------------------------------------

TEST(WireDecodeErrors, WrongTypes) {
  EXPECT_EQ(code_of(Value(Array{1, 2})), Errc::kWireType);  // top is not a map
  EXPECT_EQ(code_of(Value(7)), Errc::kWireType);

  struct Case {
    const char* key;
    Value value;
  };
  const std::vector<Case> cases = {
      {"pid", "4242"},    // string for uint
      {"cpu_ns", -1},     // negative for uint
      {"steal_ns", 1.0},  // float for uint
      {"name", 7},        // uint for string
      {"ts_ns", 1.5},     // float for int64
      {"steal_hist", 3},  // scalar for array
      {"steal_hist", Array{1, "2"}},
      {"dirty", Array{}},                      // array for map
      {"psi", Map{{"cpu_some_us", nullptr}}},  // nil is not "absent"
      {"kind", 1},
      {"v", "1"},
  };
  for (const auto& c : cases) {
    Value t = tree_of(samples::full_vm());
    t.set(c.key, c.value);
    EXPECT_EQ(code_of(t), Errc::kWireType) << c.key;
  }

  Value nonstr_key = tree_of(samples::minimal_hb());
  nonstr_key.map().emplace_back("placeholder", 1);
  std::string bytes = testing::pack(nonstr_key);
  // The tree only has string keys: rewrite the last one as the integer 5.
  const std::string key = std::string("\xabplaceholder") + '\x01';
  ASSERT_EQ(bytes.substr(bytes.size() - key.size()), key);
  bytes.replace(bytes.size() - key.size(), key.size(), std::string("\x05\x01"));
  EXPECT_EQ(code_of(bytes), Errc::kWireType);

  Value d = tree_of(samples::full_decision());
  d["predict"].set("converges", 1);  // integer for bool
  EXPECT_EQ(code_of(d), Errc::kWireType);
}

TEST(WireDecodeErrors, ContextNamesTheKeyPath) {
  Value vm = tree_of(samples::full_vm());
  vm["dirty"]["curve"][3] = Array{1, 2, 3};
  auto r = decode_str(testing::pack(vm));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kWireType);
  EXPECT_EQ(r.error().context, "vm.dirty.curve[3]: expected [tau_ns, pages]");

  vm = tree_of(samples::full_vm());
  vm["preempt"][1].set("comm", 5);
  r = decode_str(testing::pack(vm));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().context, "vm.preempt[1].comm: expected string, got unsigned integer");
}

TEST(WireDecodeErrors, MissingRequiredKeys) {
  // Removing any key of a minimal message (all of which are required)
  // yields kWireMissingKey.
  for (const auto& [name, m] : samples::all()) {
    if (name.find("minimal") == std::string::npos) continue;
    const Value full = tree_of(m);
    for (const auto& [key, unused] : full.map()) {
      Value t = full;
      t.erase(key);
      EXPECT_EQ(code_of(t), Errc::kWireMissingKey) << name << " without " << key;
    }
  }
  struct Nested {
    Message (*sample)();
    const char* outer;
    int index;  // -1: `outer` is a map
    const char* key;
  };
  const std::vector<Nested> nested = {
      {samples::full_vm, "dirty", -1, "src"},
      {samples::full_vm, "io", -1, "dstate_ns"},
      {samples::full_vm, "preempt", 0, "comm"},
      {samples::full_decision, "predict", -1, "converges"},
      {samples::full_decision, "candidates", 1, "cost_s"},
  };
  for (const auto& n : nested) {
    Value t = tree_of(n.sample());
    Value& outer = n.index < 0 ? t[n.outer] : t[n.outer][static_cast<std::size_t>(n.index)];
    outer.erase(n.key);
    EXPECT_EQ(code_of(t), Errc::kWireMissingKey) << n.outer << "." << n.key;
  }
}

TEST(WireDecodeErrors, Version) {
  Value t = tree_of(samples::full_vm());
  t.set("v", 2);
  EXPECT_EQ(code_of(t), Errc::kWireVersion);
  // A newer version is reported as such even if its body changed shape.
  Value v2 = Map{{"v", 2}, {"kind", "vm2"}};
  EXPECT_EQ(code_of(v2), Errc::kWireVersion);
  t.set("v", 0);
  EXPECT_EQ(code_of(t), Errc::kWireRange);
}

TEST(WireDecodeErrors, UnknownKind) {
  Value t = tree_of(samples::minimal_hb());
  t.set("kind", "heartbeat");
  EXPECT_EQ(code_of(t), Errc::kWireKind);
}

TEST(WireDecodeErrors, OutOfRange) {
  Value d = tree_of(samples::full_decision());
  d.set("mode", "yolo");
  EXPECT_EQ(code_of(d), Errc::kWireRange);
  d = tree_of(samples::full_decision());
  d.set("outcome", "done");
  EXPECT_EQ(code_of(d), Errc::kWireRange);
  d = tree_of(samples::full_decision());
  d["predict"].set("need_throttle_pct", 101);
  EXPECT_EQ(code_of(d), Errc::kWireRange);
  d = tree_of(samples::full_decision());
  d.set("score", std::numeric_limits<double>::quiet_NaN());
  EXPECT_EQ(code_of(d), Errc::kWireRange);
  d.set("score", std::numeric_limits<float>::infinity());
  EXPECT_EQ(code_of(d), Errc::kWireRange);

  Value vm = tree_of(samples::full_vm());
  vm["dirty"].set("src", "ebpf");
  EXPECT_EQ(code_of(vm), Errc::kWireRange);
  vm = tree_of(samples::full_vm());
  vm.set("pid", std::uint64_t{1} << 32);
  EXPECT_EQ(code_of(vm), Errc::kWireRange);
  vm = tree_of(samples::full_vm());
  vm.set("ts_ns", std::uint64_t{1} << 63);
  EXPECT_EQ(code_of(vm), Errc::kWireRange);
  vm = tree_of(samples::full_vm());
  vm.set("seq", 0);
  EXPECT_EQ(code_of(vm), Errc::kWireRange);
  vm = tree_of(samples::full_vm());
  vm.set("host", "");
  EXPECT_EQ(code_of(vm), Errc::kWireRange);
}

// ---- topics ------------------------------------------------------------------

TEST(WireTopic, FormatAndParse) {
  Message m = samples::minimal_hb();
  m.env.host = "node1.rack4.example";
  EXPECT_EQ(topic(m), "vmtide.v1.hb.node1.rack4.example");
  auto t = parse_topic(topic(m));
  ASSERT_TRUE(t) << t.error().message();
  EXPECT_EQ(t->kind, Kind::kHb);
  EXPECT_EQ(t->host, "node1.rack4.example");
  EXPECT_EQ(topic(samples::full_decision()), "vmtide.v1.decision.node1");

  for (const char* bad : {"", "vmtide.v1.", "vmtide.v1.vm", "vmtide.v1.vm.", "vmtide.v2.vm.node1", "vmtide.v1.x.node1",
                          "other.v1.vm.node1"}) {
    auto r = parse_topic(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, Errc::kWireKind) << bad;
  }
}

TEST(WireTopic, DecodeChecksTopicAgainstBody) {
  const Message m = samples::full_vm();
  const std::string body = encode(m);
  EXPECT_TRUE(decode("vmtide.v1.vm.node1", as_bytes(body)));
  for (const char* bad :
       {"vmtide.v1.host.node1", "vmtide.v1.vm.node2", "vmtide.v1.vm.node1x", "vmtide.v1.vm", "vmtide.v2.vm.node1"}) {
    auto r = decode(bad, as_bytes(body));
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, Errc::kWireKind) << bad;
  }
  // Body errors win over a matching topic.
  auto r = decode("vmtide.v1.vm.node1", as_bytes(body.substr(0, 10)));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kWireTruncated);
}

TEST(WireNames, ParseInvertsName) {
  for (std::size_t i = 0; i < kKindNames.size(); ++i) {
    EXPECT_EQ(parse_kind(kind_name(static_cast<Kind>(i))), static_cast<Kind>(i));
  }
  EXPECT_EQ(parse_mode("enforce"), Mode::kEnforce);
  EXPECT_EQ(parse_outcome("skipped"), Outcome::kSkipped);
  EXPECT_EQ(parse_dirty_source("libvirt"), DirtySource::kLibvirt);
  EXPECT_FALSE(parse_kind("VM"));
}

}  // namespace
}  // namespace vmtide::wire
