// SPDX-License-Identifier: Apache-2.0
// from_json: round trips through to_json, the JSON grammar (RFC 8259) and its
// errors, limits that match the msgpack decoder's, and schema errors that
// come from the one shared decoder.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

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
using testing::Value;

Errc code_of(std::string_view text, const DecodeLimits& limits = {}) {
  const auto r = from_json(text, limits);
  return r ? Errc::kOk : r.error().code;
}

// A sample's JSON with `key`:`value` inserted right after the opening brace
// (so it comes first, before the real key of the same name if there is one).
std::string with_first(const Message& m, std::string_view key_and_value) {
  std::string j = to_json(m);
  return "{" + std::string(key_and_value) + "," + j.substr(1);
}

// The sample's JSON with the text `from` replaced by `to` (once; must exist).
std::string replaced(const Message& m, std::string_view from, std::string_view to) {
  std::string j = to_json(m);
  const auto at = j.find(from);
  EXPECT_NE(at, std::string::npos) << from << " not in " << j;
  if (at != std::string::npos) j.replace(at, from.size(), to);
  return j;
}

// ---- round trips -------------------------------------------------------------

TEST(WireFromJson, RoundTripEverySample) {
  for (const auto& [name, m] : samples::all()) {
    SCOPED_TRACE(name);
    const auto back = from_json(to_json(m));
    ASSERT_TRUE(back) << back.error().message();
    EXPECT_EQ(*back, m);
  }
}

TEST(WireFromJson, RoundTripExtremeValues) {
  Message d = samples::full_decision();
  Decision& dec = std::get<Decision>(d.body);
  d.env.ts_ns = std::numeric_limits<std::int64_t>::min();
  d.env.mono_ns = std::numeric_limits<std::uint64_t>::max();
  dec.predict->bytes = std::numeric_limits<std::uint64_t>::max();
  dec.score = 0x1p64;  // to_json prints 18446744073709551616, beyond uint64
  dec.entropy_before = std::numeric_limits<double>::denorm_min();
  dec.entropy_after = -std::numeric_limits<double>::max();
  dec.predict->total_ms = 0.1;
  dec.predict->downtime_ms = -0.0;
  dec.candidates[0].score = 1e300;
  dec.candidates[0].gain = -123456789.0;
  dec.candidates[1].cost_s = 9007199254740993.0;  // rounds to 2^53
  dec.reason = std::string("q\"b\\s/\n\r\t\b\f\x01\x1f\x7f", 14) + '\0' + "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
  const auto back = from_json(to_json(d));
  ASSERT_TRUE(back) << back.error().message() << "\n" << to_json(d);
  EXPECT_EQ(*back, d);
}

TEST(WireFromJson, AcceptsAnyValidSpellingOfTheSameMessage) {
  const Message m = samples::minimal_event();
  const std::string spaced =
      " \t\r\n{ \"v\" : 1 ,\n\"kind\":\"ev\\u0065nt\", \"host\" :\"node1\",\"epoch\":1700000000000000000,"
      "\"seq\":5,\"ts_ns\":1700000012000000000,\"mono_ns\":12000000000,\"interval_ns\":0,"
      "\"detail\":\"\",\"type\":\"agent\\u005fstarted\", \"x_future\": [null, true, false, {}, [], -1.5e-3, "
      "{\"a\": {\"b\": null}}], \"x2\": \"\\ud83d\\ude00\\/\" } \n";
  const auto r = from_json(spaced);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(*r, m);

  // An integer where a float64 is expected, as other encoders write 2.0.
  const auto h = from_json(replaced(samples::full_host(), "\"load1\":6.25", "\"load1\":6"));
  ASSERT_TRUE(h) << h.error().message();
  EXPECT_EQ(std::get<HostSample>(h->body).load1, 6.0);
  // Exponent forms and upper-case E.
  const auto e = from_json(replaced(samples::full_host(), "\"load1\":6.25", "\"load1\":625E-2"));
  ASSERT_TRUE(e) << e.error().message();
  EXPECT_EQ(std::get<HostSample>(e->body).load1, 6.25);
}

TEST(WireFromJson, EscapesDecodeToTheirCharacters) {
  const auto r = from_json(replaced(samples::minimal_event(), "\"detail\":\"\"",
                                    R"("detail":"\"\\\/\b\f\n\r\t\u0000\u00e9\u20AC\uD834\uDD1E")"));
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(std::get<Event>(r->body).detail,
            std::string("\"\\/\b\f\n\r\t") + '\0' + "\xc3\xa9\xe2\x82\xac\xf0\x9d\x84\x9e");
}

TEST(WireFromJson, NumbersKeepTheirJsonType) {
  // An integer beyond uint64 is a float64, which a uint key refuses...
  EXPECT_EQ(code_of(replaced(samples::minimal_hb(), "\"vms\":0", "\"vms\":18446744073709551616")), Errc::kWireType);
  EXPECT_EQ(code_of(replaced(samples::minimal_hb(), "\"vms\":0", "\"vms\":1.0")), Errc::kWireType);
  EXPECT_EQ(code_of(replaced(samples::minimal_hb(), "\"vms\":0", "\"vms\":1e0")), Errc::kWireType);
  EXPECT_EQ(code_of(replaced(samples::minimal_hb(), "\"vms\":0", "\"vms\":-1")), Errc::kWireType);
  EXPECT_EQ(code_of(replaced(samples::minimal_hb(), "\"vms\":0", "\"vms\":-0")), Errc::kOk);
  // ...and int64 bounds are exact.
  EXPECT_EQ(code_of(replaced(samples::minimal_hb(), "\"ts_ns\":1700000012000000000", "\"ts_ns\":-9223372036854775808")),
            Errc::kOk);
  EXPECT_EQ(code_of(replaced(samples::minimal_hb(), "\"ts_ns\":1700000012000000000", "\"ts_ns\":-9223372036854775809")),
            Errc::kWireType);
  EXPECT_EQ(code_of(replaced(samples::minimal_hb(), "\"ts_ns\":1700000012000000000", "\"ts_ns\":9223372036854775808")),
            Errc::kWireRange);
  // Too small for a double rounds to zero; too large is out of range.
  const auto tiny = from_json(replaced(samples::full_host(), "\"load1\":6.25", "\"load1\":-1e-400"));
  ASSERT_TRUE(tiny) << tiny.error().message();
  EXPECT_EQ(std::get<HostSample>(tiny->body).load1, 0.0);
  EXPECT_EQ(code_of(replaced(samples::full_host(), "\"load1\":6.25", "\"load1\":1e400")), Errc::kWireRange);
  EXPECT_EQ(code_of(replaced(samples::full_host(), "\"load1\":6.25", "\"load1\":-0.001e312")), Errc::kWireRange);
}

// ---- errors ------------------------------------------------------------------

struct Bad {
  const char* what;
  std::string text;
  Errc code;
};

TEST(WireFromJsonErrors, Grammar) {
  const std::string hb = to_json(samples::minimal_hb());
  const std::string body = hb.substr(1, hb.size() - 2);  // without the braces
  const std::vector<Bad> cases = {
      {"empty", "", Errc::kWireTruncated},
      {"only whitespace", " \n\t", Errc::kWireTruncated},
      {"open brace", "{", Errc::kWireTruncated},
      {"no closing brace", "{" + body, Errc::kWireTruncated},
      {"after a comma", "{" + body + ",", Errc::kWireTruncated},
      {"inside a key", "{\"v", Errc::kWireTruncated},
      {"before colon", "{\"v\"", Errc::kWireTruncated},
      {"after colon", "{\"v\":", Errc::kWireTruncated},
      {"inside a literal", "{\"x\":tr", Errc::kWireTruncated},
      {"inside an escape", "{\"x\":\"\\u12", Errc::kWireTruncated},
      {"inside a surrogate pair", "{\"x\":\"\\ud83d\\", Errc::kWireTruncated},
      {"after a minus", "{\"x\":-", Errc::kWireTruncated},
      {"after an exponent", "{\"x\":1e", Errc::kWireTruncated},
      {"trailing garbage", hb + "x", Errc::kWireMalformed},
      {"two objects", hb + hb, Errc::kWireMalformed},
      {"trailing NUL", hb + std::string(1, '\0'), Errc::kWireMalformed},
      {"trailing comma in object", "{" + body + ",}", Errc::kWireMalformed},
      {"trailing comma in array", "{" + body + ",\"x\":[1,]}", Errc::kWireMalformed},
      {"missing comma", "{\"x\":[1 2]}", Errc::kWireMalformed},
      {"bare key", "{v:1}", Errc::kWireMalformed},
      {"single quotes", "{'v':1}", Errc::kWireMalformed},
      {"missing colon", "{\"v\" 1}", Errc::kWireMalformed},
      {"lone comma", "{,}", Errc::kWireMalformed},
      {"mismatched bracket", "{\"x\":[1}", Errc::kWireMalformed},
      {"leading zero", "{\"x\":01}", Errc::kWireMalformed},
      {"plus sign", "{\"x\":+1}", Errc::kWireMalformed},
      {"bare fraction", "{\"x\":.5}", Errc::kWireMalformed},
      {"dot without digits", "{\"x\":1.}", Errc::kWireMalformed},
      {"exponent without digits", "{\"x\":1e+}", Errc::kWireMalformed},
      {"NaN", "{\"x\":NaN}", Errc::kWireMalformed},
      {"Infinity", "{\"x\":-Infinity}", Errc::kWireMalformed},
      {"misspelt literal", "{\"x\":ture}", Errc::kWireMalformed},
      {"capital literal", "{\"x\":Null}", Errc::kWireMalformed},
      {"comment", "{\"x\":1 /* c */}", Errc::kWireMalformed},
      {"unknown escape", "{\"x\":\"\\x41\"}", Errc::kWireMalformed},
      {"bad hex", "{\"x\":\"\\u12g4\"}", Errc::kWireMalformed},
      {"raw newline in string", "{\"x\":\"a\nb\"}", Errc::kWireMalformed},
      {"raw tab in string", "{\"x\":\"a\tb\"}", Errc::kWireMalformed},
      {"lone high surrogate", "{\"x\":\"\\ud800\"}", Errc::kWireMalformed},
      {"high then letter", "{\"x\":\"\\ud800\\u0041\"}", Errc::kWireMalformed},
      {"lone low surrogate", "{\"x\":\"\\udc00\"}", Errc::kWireMalformed},
      {"invalid UTF-8 byte", "{\"x\":\"\xff\"}", Errc::kWireMalformed},
      {"overlong UTF-8", "{\"x\":\"\xc0\xaf\"}", Errc::kWireMalformed},
      {"UTF-8 surrogate", "{\"x\":\"\xed\xa0\x80\"}", Errc::kWireMalformed},
      {"cut UTF-8 sequence", "{\"x\":\"\xe2\x82\"}", Errc::kWireMalformed},
      {"byte order mark", "\xef\xbb\xbf" + hb, Errc::kWireMalformed},
      {"non-string key", "{1:2}", Errc::kWireMalformed},
  };
  for (const Bad& b : cases) {
    const auto r = from_json(b.text);
    ASSERT_FALSE(r) << b.what;
    EXPECT_EQ(r.error().code, b.code) << b.what << ": " << r.error().message();
  }
}

TEST(WireFromJsonErrors, ContextGivesTheOffset) {
  const auto r = from_json("{\"v\":1,}");
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message(), HasSubstr("offset 7"));
}

TEST(WireFromJsonErrors, EveryTruncatedPrefixIsTruncated) {
  for (const auto& [name, m] : samples::all()) {
    const std::string j = to_json(m);
    for (std::size_t len = 0; len < j.size(); ++len) {
      EXPECT_EQ(code_of(j.substr(0, len)), Errc::kWireTruncated) << name << " cut at " << len;
    }
  }
}

TEST(WireFromJsonErrors, SchemaErrorsComeFromTheSharedDecoder) {
  const Message hb = samples::minimal_hb();
  EXPECT_EQ(code_of("[1,2]"), Errc::kWireType);
  EXPECT_EQ(code_of("1"), Errc::kWireType);
  EXPECT_EQ(code_of("{}"), Errc::kWireMissingKey);
  EXPECT_EQ(code_of(replaced(hb, "\"v\":1", "\"v\":2")), Errc::kWireVersion);
  EXPECT_EQ(code_of(replaced(hb, "\"kind\":\"hb\"", "\"kind\":\"alert\"")), Errc::kWireKind);
  EXPECT_EQ(code_of(replaced(hb, "\"seq\":3,", "")), Errc::kWireMissingKey);
  EXPECT_EQ(code_of(replaced(hb, "\"seq\":3", "\"seq\":0")), Errc::kWireRange);
  EXPECT_EQ(code_of(replaced(samples::minimal_vm(), "\"pid\":4242", "\"pid\":\"4242\"")), Errc::kWireType);
  EXPECT_EQ(code_of(replaced(samples::minimal_vm(), "\"pid\":4242", "\"pid\":4294967296")), Errc::kWireRange);
  EXPECT_EQ(code_of(replaced(samples::full_decision(), "\"mode\":\"recommend\"", "\"mode\":\"auto\"")),
            Errc::kWireRange);
  EXPECT_EQ(code_of(replaced(samples::full_decision(), "\"need_throttle_pct\":0", "\"need_throttle_pct\":101")),
            Errc::kWireRange);
  const auto curve = from_json(replaced(samples::full_vm(), "[500000000,3600]", "[500000000,3600,1]"));
  ASSERT_FALSE(curve);
  EXPECT_EQ(curve.error().code, Errc::kWireType);
  EXPECT_THAT(curve.error().context, HasSubstr("vm.dirty.curve[2]"));
}

// What to_json writes for a NaN score: null, which is rejected like NaN.
TEST(WireFromJsonErrors, NullIsNotANumber) {
  Message d = samples::full_decision();
  std::get<Decision>(d.body).score = std::numeric_limits<double>::quiet_NaN();
  const auto r = from_json(to_json(d));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kWireType);
  EXPECT_THAT(r.error().context, HasSubstr("decision.score"));
  // An optional key is absent, never null.
  EXPECT_EQ(code_of(replaced(samples::full_decision(), "\"vm_name\":\"web1\"", "\"vm_name\":null")), Errc::kWireType);
  // Under an unknown key null is ignored, like any value there.
  EXPECT_EQ(code_of(with_first(samples::minimal_hb(), "\"x_future\":null")), Errc::kOk);
}

TEST(WireFromJsonErrors, DuplicateKeysAsInMsgpack) {
  EXPECT_EQ(code_of(with_first(samples::minimal_hb(), "\"vms\":1")), Errc::kWireMalformed);
  // The same key spelt with an escape is the same key.
  EXPECT_EQ(code_of(with_first(samples::minimal_hb(), "\"\\u0076ms\":1")), Errc::kWireMalformed);
  const auto r = from_json(replaced(samples::full_vm(), "\"pages\":5120,", "\"pages\":5120,\"pages\":1,"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kWireMalformed);
  EXPECT_THAT(r.error().context, HasSubstr("vm.dirty.pages"));
}

// ---- limits: the same bounds, and the same codes, as the msgpack decoder ------

std::string nested_arrays(int n) {
  std::string s = "1";
  for (int i = 0; i < n; ++i) s = "[" + s + "]";
  return s;
}

Value nested_tree(int n) {
  Value v = 1;
  for (int i = 0; i < n; ++i) v = Array{v};
  return v;
}

TEST(WireFromJsonLimits, DepthMatchesTheMsgpackDecoder) {
  for (int n = 0; n <= 12; ++n) {
    SCOPED_TRACE(n);
    Value t = testing::unpack(encode(samples::minimal_hb()));
    t.set("x_future", nested_tree(n));
    const Errc msgpack_code = [&] {
      const auto r = decode(as_bytes(testing::pack(t)));
      return r ? Errc::kOk : r.error().code;
    }();
    EXPECT_EQ(code_of(with_first(samples::minimal_hb(), "\"x_future\":" + nested_arrays(n))), msgpack_code);
    EXPECT_EQ(msgpack_code, n <= 7 ? Errc::kOk : Errc::kWireTooDeep);
  }
  // A hostile depth fails fast, without recursion.
  EXPECT_EQ(code_of(std::string(100000, '[')), Errc::kWireTooDeep);
  EXPECT_EQ(code_of(nested_arrays(3), DecodeLimits{.max_depth = 2}), Errc::kWireTooDeep);
}

TEST(WireFromJsonLimits, SizesMatchTheMsgpackDecoder) {
  const Message hb = samples::minimal_hb();
  std::string arr = "[0";
  for (int i = 1; i < 4096; ++i) arr += ",0";
  EXPECT_EQ(code_of(with_first(hb, "\"x_future\":" + arr + "]")), Errc::kOk);
  EXPECT_EQ(code_of(with_first(hb, "\"x_future\":" + arr + ",0]")), Errc::kWireOversize);

  std::string obj = "{";
  for (int i = 0; i < 256; ++i) obj += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":0";
  EXPECT_EQ(code_of(with_first(hb, "\"x_future\":" + obj + "}")), Errc::kOk);
  EXPECT_EQ(code_of(with_first(hb, "\"x_future\":" + obj + ",\"k256\":0}")), Errc::kWireOversize);
  // The top-level map counts too: minimal_hb has 12 keys.
  EXPECT_EQ(code_of(to_json(hb), DecodeLimits{.max_map = 11}), Errc::kWireOversize);

  // Strings count their bytes after unescaping: 4096 "\u00e9" escapes are
  // 8192 bytes.
  EXPECT_EQ(code_of(with_first(hb, "\"x_future\":\"" + std::string(4096, 'a') + "\"")), Errc::kOk);
  EXPECT_EQ(code_of(with_first(hb, "\"x_future\":\"" + std::string(4097, 'a') + "\"")), Errc::kWireOversize);
  std::string escaped = "\"";
  for (int i = 0; i < 2049; ++i) escaped += "\\u00e9";
  EXPECT_EQ(code_of(with_first(hb, "\"x_future\":" + escaped + "\"")), Errc::kWireOversize);
  EXPECT_EQ(code_of(with_first(hb, "\"" + std::string(4097, 'k') + "\":0")), Errc::kWireOversize);

  // A message at the schema caps (256 candidates) still decodes.
  Message d = samples::full_decision();
  std::get<Decision>(d.body).candidates.assign(kMaxCandidates, std::get<Decision>(d.body).candidates[1]);
  const auto big = from_json(to_json(d));
  ASSERT_TRUE(big) << big.error().message();
  EXPECT_EQ(*big, d);
}

TEST(WireFromJsonLimits, TextSizeIsCheckedFirst) {
  const std::string j = to_json(samples::full_vm());
  EXPECT_EQ(code_of(j, DecodeLimits{.max_bytes = j.size() - 1}), Errc::kWireTooLarge);
  EXPECT_EQ(code_of(j, DecodeLimits{.max_bytes = j.size()}), Errc::kOk);
  EXPECT_EQ(code_of(std::string((1 << 20) + 1, ' ')), Errc::kWireTooLarge);
  // The msgpack form of short floats is larger than the text; the limit is
  // the text's.
  std::string floats = "[1e1";
  for (int i = 1; i < 4096; ++i) floats += ",1e1";
  const std::string text = with_first(samples::minimal_hb(), "\"x_future\":" + floats + "]");
  EXPECT_EQ(code_of(text, DecodeLimits{.max_bytes = text.size()}), Errc::kOk);
}

}  // namespace
}  // namespace vmtide::wire
