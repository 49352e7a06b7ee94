// SPDX-License-Identifier: Apache-2.0
// Writes the wire_decode fuzz seeds: every sample message, encodings other
// publishers may use, and one input per decoder error. Regenerate with
//   build/tests/fuzz/wire_seed_gen tests/fuzz/corpus/wire_decode
// (the fuzz.wire_seeds_current test fails when the checked-in copy is stale).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "msgpack_tree.h"
#include "samples.h"
#include "vmtide/wire/codec.h"

namespace {

using namespace vmtide::wire;
using testing::Array;
using testing::Map;
using testing::Raw;
using testing::Value;

Value tree_of(const Message& m) { return testing::unpack(encode(m)); }

std::vector<std::pair<std::string, std::string>> seeds() {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [name, m] : samples::all()) out.emplace_back(name, encode(m));

  const std::string vm = encode(samples::full_vm());
  const auto with = [&](std::string name, Message (*sample)(), auto&& edit) {
    Value t = tree_of(sample());
    edit(t);
    out.emplace_back(std::move(name), testing::pack(t));
  };

  // Accepted: other encoders' choices and keys from a newer v1.
  with("ok_host_int_and_float32_loads", samples::full_host, [](Value& t) {
    t.set("load1", 2);
    t.set("load5", 1.5f);
    t.set("cpus", Raw{"\xd0\x05"});
  });
  with("ok_vm_unknown_keys", samples::full_vm, [](Value& t) {
    t.set("x_future", Map{{"a", Array{1, "x", nullptr, true}}});
    t["dirty"].set("x_future", -3);
    t["preempt"][0].set("x_future", 0.5);
  });
  with("ok_vm_negative_ts", samples::minimal_vm, [](Value& t) { t.set("ts_ns", -1'000'000'000); });

  // Rejected, one per error code (and a few per schema rule).
  out.emplace_back("err_empty", "");
  out.emplace_back("err_truncated", vm.substr(0, vm.size() / 2));
  out.emplace_back("err_trailing", vm + '\x00');
  out.emplace_back("err_never_used_byte", "\xc1");
  out.emplace_back("err_top_array", testing::pack(Value(Array{1, 2})));
  out.emplace_back("err_huge_array_header", std::string("\xdd\xff\xff\xff\xff", 5));
  with("err_duplicate_key", samples::minimal_hb, [](Value& t) { t.map().emplace_back("vms", 1); });
  with("err_too_deep", samples::minimal_hb, [](Value& t) {
    Value deep = 1;
    for (int i = 0; i < 9; ++i) deep = Array{deep};
    t.set("x_future", deep);
  });
  with("err_bin", samples::minimal_hb, [](Value& t) { t.set("x_future", Raw{std::string("\xc4\x01\x00", 3)}); });
  with("err_oversize_preempt", samples::full_vm, [](Value& t) {
    t.set("preempt", Array(17, Value(Map{{"tgid", 1}, {"comm", "x"}, {"ns", 1}})));
  });
  with("err_type_pid_string", samples::full_vm, [](Value& t) { t.set("pid", "4242"); });
  with("err_type_curve_point", samples::full_vm, [](Value& t) { t["dirty"]["curve"][3] = Array{1, 2, 3}; });
  with("err_missing_seq", samples::full_host, [](Value& t) { t.erase("seq"); });
  with("err_missing_predict_converges", samples::full_decision, [](Value& t) { t["predict"].erase("converges"); });
  with("err_version_2", samples::full_event, [](Value& t) { t.set("v", 2); });
  with("err_kind_unknown", samples::full_event, [](Value& t) { t.set("kind", "alert"); });
  with("err_range_mode", samples::full_decision, [](Value& t) { t.set("mode", "auto"); });
  with("err_range_dirty_src", samples::full_vm, [](Value& t) { t["dirty"].set("src", "kvm"); });
  with("err_range_nan_score", samples::full_decision,
       [](Value& t) { t.set("score", std::numeric_limits<double>::quiet_NaN()); });
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUTPUT_DIR\n", argv[0]);
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  std::filesystem::create_directories(dir);
  for (const auto& [name, bytes] : seeds()) {
    std::ofstream f(dir / (name + ".msgpack"), std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!f) {
      std::fprintf(stderr, "writing %s failed\n", (dir / name).c_str());
      return 1;
    }
  }
  return 0;
}
