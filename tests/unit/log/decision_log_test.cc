// SPDX-License-Identifier: Apache-2.0
// The decision log: what append writes, what find and last read back, and
// how they count the lines they cannot use.
#include "decision_log.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

#include "samples.h"
#include "vmtide/wire/codec.h"

namespace vmtide::decision_log {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

wire::Message decision(std::string id, wire::Outcome outcome = wire::Outcome::kRecommended, std::uint64_t seq = 1) {
  wire::Message m = wire::samples::full_decision();
  m.env.seq = seq;
  auto& d = std::get<wire::Decision>(m.body);
  d.id = std::move(id);
  d.outcome = outcome;
  return m;
}

class DecisionLog : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "vmtide-log-test.XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    path_ = dir_ / "decisions.jsonl";
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  void raw(const std::string& text) {
    std::ofstream out(path_, std::ios::app | std::ios::binary);
    out << text;
  }
  std::string contents() const {
    std::ifstream in(path_, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  fs::path dir_;
  fs::path path_;
};

TEST_F(DecisionLog, AppendWritesOneJsonLinePerMessage) {
  const auto a = decision("d-1");
  const auto b = decision("d-2");
  ASSERT_TRUE(append(path_, a));
  ASSERT_TRUE(append(path_, b));
  EXPECT_EQ(contents(), wire::to_json(a) + "\n" + wire::to_json(b) + "\n");
  EXPECT_EQ(fs::status(path_).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
}

TEST_F(DecisionLog, AppendNeedsTheDirectory) {
  const auto st = append(dir_ / "missing" / "decisions.jsonl", decision("d-1"));
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, Errc::kNotFound);
  EXPECT_THAT(st.error().message(), HasSubstr((dir_ / "missing").string() + " does not exist"));
  EXPECT_FALSE(fs::exists(dir_ / "missing"));
}

TEST_F(DecisionLog, AppendRefusesWhatWouldNotReadBack) {
  auto m = decision("d-1");
  std::get<wire::Decision>(m.body).score = std::numeric_limits<double>::quiet_NaN();
  const auto st = append(path_, m);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, Errc::kInvalidArgument);
  EXPECT_FALSE(fs::exists(path_));
}

TEST_F(DecisionLog, FindReturnsTheDecisionAndItsLine) {
  for (int i = 1; i <= 3; ++i) ASSERT_TRUE(append(path_, decision("d-" + std::to_string(i))));
  const auto r = find(path_, "d-2");
  ASSERT_TRUE(r) << r.error().message();
  ASSERT_TRUE(r->found);
  EXPECT_EQ(r->found->message, decision("d-2"));
  EXPECT_EQ(r->found->line, 2u);
  EXPECT_EQ(r->matches, 1u);
  EXPECT_EQ(r->stats.lines, 3u);
  EXPECT_EQ(r->stats.malformed, 0u);

  const auto none = find(path_, "d-9");
  ASSERT_TRUE(none);
  EXPECT_FALSE(none->found);
  EXPECT_EQ(none->stats.lines, 3u);
  EXPECT_EQ(describe(none->stats), "3 lines read, 0 malformed");
}

TEST_F(DecisionLog, FindReturnsTheLatestOutcome) {
  ASSERT_TRUE(append(path_, decision("d-1", wire::Outcome::kPending, 1)));
  ASSERT_TRUE(append(path_, decision("d-2", wire::Outcome::kRecommended, 2)));
  ASSERT_TRUE(append(path_, decision("d-1", wire::Outcome::kStarted, 3)));
  ASSERT_TRUE(append(path_, decision("d-1", wire::Outcome::kSucceeded, 4)));
  const auto r = find(path_, "d-1");
  ASSERT_TRUE(r && r->found);
  EXPECT_EQ(r->matches, 3u);
  EXPECT_EQ(r->found->line, 4u);
  EXPECT_EQ(std::get<wire::Decision>(r->found->message.body).outcome, wire::Outcome::kSucceeded);
  EXPECT_EQ(r->outcomes,
            (std::vector<wire::Outcome>{wire::Outcome::kPending, wire::Outcome::kStarted, wire::Outcome::kSucceeded}));
}

TEST_F(DecisionLog, CountsAndSkipsLinesItCannotUse) {
  ASSERT_TRUE(append(path_, decision("d-1")));
  raw("this is not json\n");                            // line 2
  raw("\n");                                            // 3: blank, not malformed
  raw(wire::to_json(wire::samples::full_hb()) + "\n");  // 4: valid, not a decision
  const std::string cut = wire::to_json(decision("d-2"));
  raw(cut.substr(0, cut.size() / 2) + "\n");                      // 5: cut short
  raw("{\"x\":\"" + std::string((1 << 20) + 10, 'a') + "\"}\n");  // 6: above the line limit
  ASSERT_TRUE(append(path_, decision("d-3")));                    // 7
  const std::string last_line = wire::to_json(decision("d-4"));
  raw(last_line);  // 8: no newline at the end

  const auto r = find(path_, "d-3");
  ASSERT_TRUE(r) << r.error().message();
  ASSERT_TRUE(r->found);
  EXPECT_EQ(r->found->line, 7u);
  EXPECT_EQ(r->stats.lines, 8u);
  EXPECT_EQ(r->stats.malformed, 3u);
  EXPECT_EQ(r->stats.other_kinds, 1u);
  EXPECT_EQ(r->stats.first_malformed, 2u);
  EXPECT_THAT(r->stats.first_error, HasSubstr("wire_malformed"));
  EXPECT_THAT(describe(r->stats), HasSubstr("8 lines read, 3 malformed (line 2: wire_malformed: JSON at offset 0"));

  const auto d4 = find(path_, "d-4");
  ASSERT_TRUE(d4 && d4->found);
  EXPECT_EQ(d4->found->line, 8u);
}

TEST_F(DecisionLog, LastReturnsTheNewestInFileOrder) {
  for (int i = 1; i <= 5; ++i) {
    ASSERT_TRUE(append(path_, decision("d-" + std::to_string(i))));
    raw("garbage\n");
  }
  const auto two = last(path_, 2);
  ASSERT_TRUE(two) << two.error().message();
  ASSERT_EQ(two->records.size(), 2u);
  EXPECT_EQ(std::get<wire::Decision>(two->records[0].message.body).id, "d-4");
  EXPECT_EQ(std::get<wire::Decision>(two->records[1].message.body).id, "d-5");
  EXPECT_EQ(two->records[1].line, 9u);
  EXPECT_EQ(two->stats.lines, 10u);
  EXPECT_EQ(two->stats.malformed, 5u);

  const auto all = last(path_, 100);
  ASSERT_TRUE(all);
  EXPECT_EQ(all->records.size(), 5u);
  const auto zero = last(path_, 0);
  ASSERT_TRUE(zero);
  EXPECT_TRUE(zero->records.empty());
  EXPECT_EQ(zero->stats.lines, 10u);
}

TEST_F(DecisionLog, EmptyFileHasNothing) {
  raw("");
  const auto r = last(path_, 3);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->records.empty());
  EXPECT_EQ(r->stats.lines, 0u);
}

TEST_F(DecisionLog, MissingOrUnreadableFileIsAnError) {
  const auto missing = find(dir_ / "nope.jsonl", "d-1");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, Errc::kNotFound);
  EXPECT_THAT(missing.error().message(), HasSubstr("nope.jsonl"));

  const auto directory = last(dir_, 1);
  ASSERT_FALSE(directory);
  EXPECT_EQ(directory.error().code, Errc::kIo);
}

}  // namespace
}  // namespace vmtide::decision_log
