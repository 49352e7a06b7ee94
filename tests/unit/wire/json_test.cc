// SPDX-License-Identifier: Apache-2.0
// to_json: exact output, string escaping, validity under a strict JSON
// parser, and the examples in docs/wire-protocol.md being true.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>

#include "samples.h"
#include "vmtide/wire/codec.h"

namespace vmtide::wire {
namespace {

Message event_with_detail(std::string detail) {
  Message m = samples::minimal_event();
  std::get<Event>(m.body).detail = std::move(detail);
  return m;
}

TEST(WireJson, ExactOutput) {
  EXPECT_EQ(to_json(samples::minimal_event()),
            R"({"v":1,"kind":"event","host":"node1","epoch":1700000000000000000,"seq":5,)"
            R"("ts_ns":1700000012000000000,"mono_ns":12000000000,"interval_ns":0,)"
            R"("type":"agent_started","detail":""})");
  Message h = samples::full_host();
  const std::string j = to_json(h);
  EXPECT_NE(j.find(R"("load1":6.25,"load5":5.5,"load15":4.75,"vms":3,"psi":{"cpu_some_us":80000,)"
                   R"("io_some_us":5000,"mem_some_us":0},)"),
            std::string::npos)
      << j;
  EXPECT_NE(to_json(samples::full_vm()).find(R"("curve":[[100000000,900],[250000000,2100],)"), std::string::npos);
}

TEST(WireJson, EscapesStrings) {
  const std::string j = to_json(event_with_detail(std::string("q\"b\\s/\n\r\t\b\f\x01\x1f\x7f", 14) + '\0' + "end"));
  EXPECT_NE(j.find(R"("detail":"q\"b\\s/\n\r\t\b\f\u0001\u001f\u007f\u0000end")"), std::string::npos) << j;
}

TEST(WireJson, KeepsValidUtf8AndReplacesInvalidBytes) {
  // é (2 bytes), € (3), 😀 (4) stay; a lone continuation byte, a sequence
  // cut short (as a 15-byte comm can be), an overlong "/", a surrogate and
  // 0xff each become U+FFFD per byte.
  const std::string valid = "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
  EXPECT_NE(to_json(event_with_detail(valid)).find("\"detail\":\"" + valid + "\""), std::string::npos);
  const std::string j =
      to_json(event_with_detail("a\x80"
                                "b\xe2\x82"
                                "c\xc0\xaf"
                                "d\xed\xa0\x80"
                                "e\xff"));
  EXPECT_NE(j.find(R"("detail":"a\ufffdb\ufffd\ufffdc\ufffd\ufffdd\ufffd\ufffd\ufffde\ufffd")"), std::string::npos)
      << j;
}

TEST(WireJson, NonFiniteFloatsAreNull) {
  Message d = samples::full_decision();
  std::get<Decision>(d.body).score = std::numeric_limits<double>::quiet_NaN();
  std::get<Decision>(d.body).entropy_after = -std::numeric_limits<double>::infinity();
  const std::string j = to_json(d);
  EXPECT_NE(j.find(R"("score":null,"entropy_before":0.61,"entropy_after":null)"), std::string::npos) << j;
}

// Every sample, plus the nastiest strings, through Python's strict parser
// (rejects NaN, raw control characters and invalid UTF-8).
TEST(WireJson, ParsesAsStrictJson) {
  const std::string python = VMTIDE_PYTHON3;
  if (python.empty() || !std::filesystem::exists(python)) GTEST_SKIP() << "no python3 at '" << python << "'";
  const auto path = std::filesystem::path(VMTIDE_BINARY_DIR) / "wire_json_test.jsonl";
  {
    std::ofstream out(path, std::ios::trunc);
    for (const auto& [name, m] : samples::all()) out << to_json(m) << '\n';
    out << to_json(event_with_detail(std::string("\"\\\x01\x7f\xff\xe2\x82", 7) + '\0')) << '\n';
  }
  const std::string cmd = python +
                          " -c 'import json,sys\n"
                          "def bad(c): raise ValueError(c)\n"
                          "n = 0\n"
                          "for line in open(sys.argv[1], encoding=\"utf-8\"):\n"
                          "    assert isinstance(json.loads(line, parse_constant=bad), dict)\n"
                          "    n += 1\n"
                          "assert n == 11, n' " +
                          path.string();
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

// docs/wire-protocol.md shows one example per kind; they must be what the
// code prints for the full samples.
TEST(WireJson, DocsExamplesAreTrue) {
  std::ifstream in(std::filesystem::path(VMTIDE_SOURCE_DIR) / "docs" / "wire-protocol.md");
  ASSERT_TRUE(in) << "docs/wire-protocol.md missing";
  std::stringstream doc;
  doc << in.rdbuf();
  for (const Message& m : {samples::full_vm(), samples::full_host(), samples::full_hb(), samples::full_decision(),
                           samples::full_event()}) {
    auto decoded = decode(as_bytes(encode(m)));
    ASSERT_TRUE(decoded) << decoded.error().message();
    const std::string line = to_json(*decoded);
    EXPECT_NE(doc.str().find("\n" + line + "\n"), std::string::npos)
        << "docs/wire-protocol.md lacks the current example for kind " << kind_name(m.kind()) << ":\n"
        << line;
  }
}

}  // namespace
}  // namespace vmtide::wire
