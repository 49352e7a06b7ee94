// SPDX-License-Identifier: Apache-2.0
// The sampler's hypervisor dirty-rate schedule against a fake VmSource
// (this test process plays the VM): one measurement per period, its result
// asked for only after the window, reported with the source's name, and
// failures counted without a storm of retries.
#include <gtest/gtest.h>
#include <unistd.h>

#include <deque>
#include <memory>
#include <optional>
#include <vector>

#include "sampler.h"

namespace vmtide::agent {
namespace {

constexpr std::uint64_t kSec = 1'000'000'000ULL;

// What the fake is told to answer, and what it was asked; shared with the
// test because the sampler owns (and destroys) the fake.
struct Script {
  std::uint64_t now = 0;
  std::vector<std::uint64_t> starts, queries;
  std::deque<Status> start_results;
  std::optional<Error> start_error, query_error;
  bool still_measuring = false;
};

class FakeHypervisor final : public discovery::VmSource {
 public:
  explicit FakeHypervisor(std::shared_ptr<Script> script) : s_(std::move(script)) {}
  const char* name() const override { return "fake"; }
  Result<std::vector<discovery::QemuProcess>> scan() override {
    discovery::QemuProcess p;
    p.pid = static_cast<std::uint32_t>(getpid());
    p.id = "vm1";
    p.name = "vm1";
    return std::vector<discovery::QemuProcess>{p};
  }
  bool supports_dirty_rate() const override { return true; }
  wire::DirtySource dirty_rate_source() const override { return wire::DirtySource::kQemu; }
  Status start_dirty_rate(const std::string& id, int seconds) override {
    EXPECT_EQ(id, "vm1");
    EXPECT_EQ(seconds, 2);
    s_->starts.push_back(s_->now);
    if (!s_->start_results.empty()) {
      Status st = s_->start_results.front();
      s_->start_results.pop_front();
      return st;
    }
    return s_->start_error ? Status(*s_->start_error) : Status();
  }
  Result<std::optional<discovery::HypervisorDirtyRate>> dirty_rate(const std::string&) override {
    s_->queries.push_back(s_->now);
    if (s_->query_error) return *s_->query_error;
    if (s_->still_measuring) return std::optional<discovery::HypervisorDirtyRate>();
    return std::optional(discovery::HypervisorDirtyRate{11, static_cast<std::int64_t>(s_->starts.size()), 2 * kSec});
  }

 private:
  std::shared_ptr<Script> s_;
};

struct Outcome {
  std::vector<std::uint64_t> dirty_at;  // ticks whose sample carried a Dirty
  std::vector<wire::Dirty> dirty;
  std::uint64_t errors = 0;
};

// Ticks once a second for `seconds`, with a 2 s window every 3 s.
Outcome run_ticks(const std::shared_ptr<Script>& fake, int seconds) {
  Sampler s({.bpf = false, .dirty = false, .dirty_window_ns = 2 * kSec, .dirty_period_ns = 3 * kSec},
            std::make_unique<FakeHypervisor>(fake));
  EXPECT_STREQ(s.dirty_source(), "qemu");
  Outcome r;
  for (int t = 0; t <= seconds; ++t) {
    fake->now = static_cast<std::uint64_t>(t) * kSec;
    Tick tick = s.sample(fake->now);
    for (const auto& b : tick.bodies) {
      if (const auto* v = std::get_if<wire::VmSample>(&b); v && v->dirty) {
        r.dirty_at.push_back(fake->now);
        r.dirty.push_back(*v->dirty);
      }
    }
  }
  r.errors = s.errors();
  return r;
}

TEST(SamplerHypervisorDirty, OneMeasurementPerPeriodAskedAfterTheWindow) {
  auto fake = std::make_shared<Script>();
  Outcome r = run_ticks(fake, 10);
  using V = std::vector<std::uint64_t>;
  EXPECT_EQ(fake->starts, (V{0, 3 * kSec, 6 * kSec, 9 * kSec}));
  EXPECT_EQ(fake->queries, (V{2 * kSec, 5 * kSec, 8 * kSec})) << "a monitor is asked only once the window is over";
  EXPECT_EQ(r.dirty_at, (V{2 * kSec, 5 * kSec, 8 * kSec}));
  ASSERT_FALSE(r.dirty.empty());
  EXPECT_EQ(r.dirty[0].src, wire::DirtySource::kQemu);
  EXPECT_EQ(r.dirty[0].window_ns, 2 * kSec);
  EXPECT_EQ(r.dirty[0].page_bytes, 4096u);
  EXPECT_EQ(r.dirty[0].pages, 11u * 256 * 2) << "11 MiB/s over 2 s in 4 KiB pages";
  EXPECT_EQ(r.errors, 0u);
}

TEST(SamplerHypervisorDirty, BusyMonitorIsRetriedEachPeriodNotEachTick) {
  auto fake = std::make_shared<Script>();
  fake->start_error = make_error(Errc::kBusy, "monitor busy");
  Outcome r = run_ticks(fake, 10);
  EXPECT_EQ(fake->starts.size(), 4u);
  EXPECT_TRUE(fake->queries.empty());
  EXPECT_EQ(r.errors, 4u) << "each failed attempt is counted";
  EXPECT_TRUE(r.dirty_at.empty());
}

TEST(SamplerHypervisorDirty, RecoversAfterAFailure) {
  auto fake = std::make_shared<Script>();
  fake->start_results.push_back(make_error(Errc::kBusy, "monitor busy"));
  Outcome r = run_ticks(fake, 6);
  EXPECT_EQ(fake->starts, (std::vector<std::uint64_t>{0, 3 * kSec, 6 * kSec}));
  EXPECT_EQ(r.dirty_at, (std::vector<std::uint64_t>{5 * kSec}));
  EXPECT_EQ(r.errors, 1u);
}

TEST(SamplerHypervisorDirty, VmWithoutAMonitorIsAskedOnce) {
  auto fake = std::make_shared<Script>();
  fake->start_error = make_error(Errc::kUnsupported, "no QMP server socket");
  Outcome r = run_ticks(fake, 10);
  EXPECT_EQ(fake->starts.size(), 1u);
  EXPECT_EQ(r.errors, 0u) << "not an error: the VM simply has no monitor to ask";
}

TEST(SamplerHypervisorDirty, NoResultGivesUpAfterAPeriod) {
  auto fake = std::make_shared<Script>();
  fake->still_measuring = true;
  Outcome r = run_ticks(fake, 6);
  // Asked at 2, 3 and 4 s; at 5 s (window + period) it counts as failed,
  // and a new measurement starts at the next tick.
  EXPECT_EQ(fake->queries, (std::vector<std::uint64_t>{2 * kSec, 3 * kSec, 4 * kSec, 5 * kSec}));
  EXPECT_EQ(fake->starts, (std::vector<std::uint64_t>{0, 6 * kSec}));
  EXPECT_EQ(r.errors, 1u);
}

TEST(SamplerHypervisorDirty, VanishingVmIsDroppedQuietly) {
  auto fake = std::make_shared<Script>();
  fake->query_error = make_error(Errc::kNotFound, "pid gone");
  Outcome r = run_ticks(fake, 4);
  EXPECT_EQ(fake->queries.size(), 1u);
  EXPECT_EQ(r.errors, 0u);
}

}  // namespace
}  // namespace vmtide::agent
