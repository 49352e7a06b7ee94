// SPDX-License-Identifier: Apache-2.0
// The table behind `vmtide top`: rates from deltas, sorting, the last dirty
// window kept between windows, stopped VMs removed, quiet hosts marked.
#include <gtest/gtest.h>

#include "top_model.h"

namespace vmtide::cli {
namespace {

using Clock = TopModel::Clock;
using namespace std::chrono_literals;

wire::Message vm(const std::string& host, const std::string& name, std::uint64_t cpu_ms, std::uint64_t steal_ms) {
  wire::Message m;
  m.env.host = host;
  m.env.seq = 1;
  m.env.interval_ns = 1'000'000'000;
  wire::VmSample s;
  s.id = "id-" + name;
  s.name = name;
  s.cpu_ns = cpu_ms * 1'000'000;
  s.steal_ns = steal_ms * 1'000'000;
  m.body = s;
  return m;
}

TEST(TopModel, RatesSortAndStale) {
  TopModel t(3000ms);
  const auto t0 = Clock::now();
  t.ingest(vm("kvm1", "web", 900, 50), t0);
  t.ingest(vm("kvm2", "db", 400, 300), t0);
  auto by_steal = t.rows(SortKey::kSteal, t0);
  ASSERT_EQ(by_steal.size(), 2u);
  EXPECT_EQ(by_steal[0].vm, "db");
  EXPECT_DOUBLE_EQ(by_steal[0].steal_pct, 30.0);
  EXPECT_EQ(t.rows(SortKey::kCpu, t0)[0].vm, "web");
  EXPECT_EQ(t.rows(SortKey::kName, t0)[0].vm, "db");
  EXPECT_EQ(by_steal[0].dirty_mib_s, -1) << "not measured yet";

  // kvm2 goes quiet; kvm1 keeps talking.
  t.ingest(vm("kvm1", "web", 900, 50), t0 + 4s);
  const auto rows = t.rows(SortKey::kName, t0 + 4s);
  EXPECT_TRUE(rows[0].stale);   // db on kvm2
  EXPECT_FALSE(rows[1].stale);  // web on kvm1
  EXPECT_EQ(t.stale_hosts(t0 + 4s), std::vector<std::string>{"kvm2"});
  const auto lines = render(rows, t.stale_hosts(t0 + 4s), SortKey::kName, t.host_count(), 120, 50);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_NE(lines[0].find("STALE: kvm2"), std::string::npos) << lines[0];
  EXPECT_NE(lines[2].find("(stale)"), std::string::npos) << lines[2];
}

TEST(TopModel, DirtyWindowIsKeptAndStoppedVmRemoved) {
  TopModel t;
  const auto now = Clock::now();
  auto m = vm("kvm1", "web", 100, 0);
  wire::Dirty d;
  d.src = wire::DirtySource::kSoftDirty;
  d.window_ns = 2'000'000'000;
  d.pages = 10240;  // 40 MiB in 2 s
  d.page_bytes = 4096;
  std::get<wire::VmSample>(m.body).dirty = d;
  t.ingest(m, now);
  t.ingest(vm("kvm1", "web", 100, 0), now + 1s);  // no window closed this tick
  auto rows = t.rows(SortKey::kDirty, now + 1s);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_DOUBLE_EQ(rows[0].dirty_mib_s, 20.0);
  EXPECT_DOUBLE_EQ(rows[0].wws_mib, 40.0);

  wire::Message stop;
  stop.env.host = "kvm1";
  wire::Event e;
  e.type = "vm_stopped";
  e.vm = "id-web";
  stop.body = e;
  t.ingest(stop, now + 2s);
  EXPECT_TRUE(t.rows(SortKey::kCpu, now + 2s).empty());
}

TEST(TopModel, RenderCutsToTheTerminal) {
  std::vector<TopRow> rows(30);
  for (int i = 0; i < 30; ++i) rows[i].vm = "vm" + std::to_string(i);
  const auto lines = render(rows, {}, SortKey::kCpu, 1, 40, 10);
  EXPECT_EQ(lines.size(), 10u);
  for (const auto& l : lines) EXPECT_LE(l.size(), 40u);
}

}  // namespace
}  // namespace vmtide::cli
