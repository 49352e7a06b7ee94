// SPDX-License-Identifier: Apache-2.0
// vmtide-lab-migrate: one real pre-copy migration (or a few, ping-pong)
// of the lab guest on this machine, predicted first and measured after.
// Boots the lab guest (lab/build-guest; its dirtier writes a known working
// set at a known rate and pattern) in QEMU under TCG with a QMP socket, and
// an incoming QEMU; measures the guest the way the agent does where the
// kernel has no soft-dirty (QMP calc-dirty-rate page-sampling, 4096 sample
// pages per GiB, at several window lengths); turns that into predictor
// inputs with the controller's own precopy_inputs(); predicts with
// predict_precopy() and the textbook predict_constant_rate(), and from the
// true curve (known from the workload's parameters); migrates for real
// through the QMP executor; checks the guest keeps running on the
// destination; prints one JSON object per migration on stdout (progress on
// stderr). Kills only the QEMUs it started.
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "calibration.h"
#include "cluster.h"
#include "cost.h"
#include "lab_qemu.h"
#include "precopy.h"
#include "procfs_stats.h"
#include "qmp.h"
#include "qmp_executor.h"

namespace vmtide::lab {
namespace {

using namespace std::chrono_literals;
constexpr double kMiB = 1024.0 * 1024.0;
constexpr double kPage = 4096;

struct Options {
  int mem_mib = 256;
  int wss_mib = 32;
  double rate = 5000;
  std::string pattern = "random";
  int fill_mib = -1;
  std::vector<double> bw_mib_s = {32};
  double downtime_ms = 300;
  bool auto_converge = false;
  double timeout_s = 30;
  std::string kernel, initrd, workdir, calibration, label;
  std::vector<double> windows_s = {0.5, 1.5, 4};
  int rounds = 3;
  bool json = false;
  bool keep = false;
};

[[gnu::format(printf, 1, 2)]] void say(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::fprintf(stderr, "lab-migrate: ");
  std::vfprintf(stderr, fmt, ap);
  va_end(ap);
  std::fputc('\n', stderr);
}

// ---- a small JSON writer (numbers, strings, nested objects) ----
class Json {
 public:
  Json& num(const char* k, double v) {
    key(k);
    if (std::isfinite(v)) {
      char b[64];
      std::snprintf(b, sizeof b, "%.6g", v);
      s_ += b;
    } else {
      s_ += "null";
    }
    return *this;
  }
  Json& boolean(const char* k, bool v) {
    key(k);
    s_ += v ? "true" : "false";
    return *this;
  }
  Json& str(const char* k, const std::string& v) {
    key(k);
    s_ += quote(v);
    return *this;
  }
  Json& raw(const char* k, const std::string& v) {
    key(k);
    s_ += v;
    return *this;
  }
  std::string done() const { return "{" + s_ + "}"; }
  static std::string quote(const std::string& v) {
    std::string o = "\"";
    for (char c : v) {
      if (c == '"' || c == '\\') o += '\\';
      if (static_cast<unsigned char>(c) < 0x20) {
        char b[8];
        std::snprintf(b, sizeof b, "\\u%04x", c);
        o += b;
        continue;
      }
      o += c;
    }
    return o + "\"";
  }

 private:
  void key(const char* k) {
    if (!s_.empty()) s_ += ",";
    s_ += quote(k) + ":";
  }
  std::string s_;
};

std::string prediction_json(const Result<predictor::Prediction>& p) {
  Json j;
  if (!p) return j.str("error", p.error().message()).done();
  j.num("total_ms", p->total_s * 1000).num("downtime_ms", p->downtime_ms).num("bytes", p->bytes);
  j.num("passes", p->passes).boolean("converged", p->converges).num("final_throttle_pct", p->final_throttle_pct);
  if (p->need_bandwidth_bytes_per_s) j.num("need_bw_bytes_per_s", *p->need_bandwidth_bytes_per_s);
  if (p->need_throttle_pct) j.num("need_throttle_pct", *p->need_throttle_pct);
  return j.done();
}

// ---- the true dirty curve, from the dirtier's parameters (lab/guest/dirtier.c) ----
predictor::DirtyCurve curve_of(double rate, double ws_pages, auto&& d) {
  std::vector<predictor::DirtyCurve::Point> pts;
  const double span = std::max(10.0, 8.0 * ws_pages / std::max(rate, 1.0));
  for (int k = 0; k <= 96; ++k) {
    const double tau = 0.005 * std::pow(span / 0.005, k / 96.0);
    pts.push_back({tau, d(tau)});
  }
  auto c = predictor::DirtyCurve::make(std::move(pts), ws_pages);
  return c ? *c : predictor::DirtyCurve::none();
}

predictor::DirtyCurve true_curve(const std::string& pattern, double rate, double ws_pages) {
  auto uniform = [](double r, double w, double tau) { return w * (1 - std::exp(-r * tau / w)); };
  if (rate <= 0 || ws_pages <= 0) return predictor::DirtyCurve::none();
  if (pattern == "sequential") return predictor::DirtyCurve::sequential(rate, ws_pages);
  if (pattern == "hotcold") {
    // 90 % of writes to the hottest tenth, 10 % anywhere in the set.
    const double hot = std::max(1.0, std::floor(ws_pages / 10));
    return curve_of(rate, ws_pages, [=](double tau) {
      const double hot_rate_per_page = 0.9 * rate / hot + 0.1 * rate / ws_pages;
      const double cold_rate_per_page = 0.1 * rate / ws_pages;
      return hot * (1 - std::exp(-hot_rate_per_page * tau)) +
             (ws_pages - hot) * (1 - std::exp(-cold_rate_per_page * tau));
    });
  }
  if (pattern == "phased") {
    // Alternating 10 s phases over the whole set and over a tenth of it: a
    // migration meets both, so the expectation over the phase is the truth
    // a single curve can hold.
    const double tenth = std::max(1.0, std::floor(ws_pages / 10));
    return curve_of(rate, ws_pages,
                    [=](double tau) { return 0.5 * uniform(rate, ws_pages, tau) + 0.5 * uniform(rate, tenth, tau); });
  }
  return predictor::DirtyCurve::uniform_random(rate, ws_pages);
}

// ---- calibration state in a file, across runs ----
predictor::LinkCalibration load_calibration(const std::string& path) {
  predictor::LinkCalibration c;
  if (path.empty()) return c;
  auto v = discovery::json::parse(read_file(path));
  if (!v) return c;
  if (const auto* f = v->find("bw_factor"); f && f->as_double()) c.bw_factor = *f->as_double();
  if (const auto* f = v->find("stop_bytes_per_s"); f && f->as_double()) c.stop_bytes_per_s = *f->as_double();
  if (const auto* f = v->find("migrations"); f && f->as_double()) c.migrations = static_cast<int>(*f->as_double());
  return c;
}

void save_calibration(const std::string& path, const predictor::LinkCalibration& c) {
  if (path.empty()) return;
  std::ofstream out(path + ".tmp");
  out << Json()
             .num("bw_factor", c.bw_factor)
             .num("stop_bytes_per_s", c.stop_bytes_per_s)
             .num("migrations", c.migrations)
             .done()
      << "\n";
  out.close();
  std::rename((path + ".tmp").c_str(), path.c_str());
}

double seconds_now() { return std::chrono::duration<double>(Clock::now().time_since_epoch()).count(); }

struct Measured {
  std::vector<std::pair<double, double>> points;  // (window s, pages dirtied), as measured
  double rate_2s_bytes_per_s = 0;                 // the rate the agent would publish (its default 2 s window)
  double vcpu_busy = 1;
};

// The agent's fallback where there is no soft-dirty: QEMU's calc-dirty-rate,
// page-sampling, one window at a time (the monitor takes one client).
Result<Measured> measure(Qemu& q, const Options& o) {
  auto c = discovery::QmpClient::connect(q.qmp_path(), Clock::now() + 5s);
  if (!c) return std::move(c).error();
  Measured m;
  // QEMU's first page-sampling measurement after boot read a fraction of
  // the truth, twice in a row in the lab (176 pages for ~1400, with a
  // window stretched from 500 to 687 ms): a short one first, thrown away.
  if (auto w =
          c->execute("calc-dirty-rate", discovery::calc_dirty_rate_arguments_ms(100, discovery::kQmpSamplePagesPerGiB),
                     Clock::now() + 5s);
      w) {
    std::this_thread::sleep_for(100ms);
    for (const auto until = Clock::now() + 5s; Clock::now() < until;) {
      auto r = c->execute("query-dirty-rate", R"({"calc-time-unit":"millisecond"})", Clock::now() + 5s);
      if (!r) break;
      auto d = discovery::parse_query_dirty_rate(*r);
      if (!d || *d) break;
      std::this_thread::sleep_for(20ms);
    }
  }
  auto cpu0 = vcpu_time(q.pid());
  const auto t0 = Clock::now();
  std::vector<double> sum(o.windows_s.size(), 0.0), secs_of(o.windows_s.size(), 0.0);
  for (int round = 0; round < o.rounds; ++round) {
    for (std::size_t i = 0; i < o.windows_s.size(); ++i) {
      const double w = o.windows_s[i];
      const int ms = static_cast<int>(std::lround(w * 1000));
      auto st =
          c->execute("calc-dirty-rate", discovery::calc_dirty_rate_arguments_ms(ms, discovery::kQmpSamplePagesPerGiB),
                     Clock::now() + 5s);
      if (!st) return std::move(st).error();
      // No event tells a measurement is done: ask once its window has passed
      // (as the agent does), then briefly until QEMU has compared the hashes.
      std::this_thread::sleep_for(std::chrono::milliseconds(ms));
      std::optional<discovery::HypervisorDirtyRate> got;
      for (const auto until = Clock::now() + 10s; !got && Clock::now() < until;) {
        auto r = c->execute("query-dirty-rate", R"({"calc-time-unit":"millisecond"})", Clock::now() + 5s);
        if (!r) return std::move(r).error();
        auto d = discovery::parse_query_dirty_rate(*r);
        if (!d) return std::move(d).error();
        got = *d;
        if (!got) std::this_thread::sleep_for(20ms);
      }
      if (!got) return make_error(Errc::kIo, "calc-dirty-rate gave no result");
      const double secs = static_cast<double>(got->period_ns) / 1e9;
      // QEMU's MB/s are MiB/s of distinct pages over the window (the agent's
      // conversion, userspace/agent/sampler.cc).
      sum[i] += got->mib_per_s * kMiB * secs / kPage;
      secs_of[i] = secs;
    }
  }
  // The mean over the rounds: what the controller's per-VM average of the
  // agent's measurements (model::CurveEwma, 30 s) holds for a VM it has
  // watched for a while, over ~20 s of the guest's behaviour instead of
  // one moment, and with the page-sampling noise averaged down.
  for (std::size_t i = 0; i < sum.size(); ++i) m.points.push_back({secs_of[i], sum[i] / o.rounds});
  auto cpu1 = vcpu_time(q.pid());
  const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
  if (cpu0 && cpu1 && wall > 0) {
    // Demand: what it ran plus what it waited to run (the agent's CPU and
    // steal), so host contention does not pass for an idle guest.
    const double demand = (cpu1->run_s - cpu0->run_s) + (cpu1->wait_s - cpu0->wait_s);
    m.vcpu_busy = std::clamp(demand / wall, 0.01, 1.0);
  }
  // The baseline gets what the agent publishes: one rate over its default
  // 2 s window, read here off the measured curve (D(2 s) / 2 s).
  if (!m.points.empty()) {
    std::vector<predictor::DirtyCurve::Point> pts;
    double running = 0;
    for (const auto& pt : m.points) {
      running = std::max(running, pt.second);
      pts.push_back({pt.first, running});
    }
    auto curve = predictor::DirtyCurve::make(pts, 1e18);
    if (curve) m.rate_2s_bytes_per_s = curve->at(2.0) * kPage / 2.0;
  }
  return m;
}

struct Run {
  std::string json;
  bool ok = true;  // the lab itself worked (the migration may still have failed)
};

Run one_migration(const Options& o, const GuestSpec& g, Qemu& src, int gen, double bw_mib_s, double link_bytes_per_s,
                  predictor::VmDirtyCalibration& vm_cal) {
  Run run;
  const double bw = bw_mib_s * kMiB;
  Json out;
  Json kase;
  kase.str("label", o.label).num("mem_mib", g.mem_mib).num("wss_mib", g.ws_mib).num("rate", g.rate);
  kase.str("pattern", g.pattern).num("fill_mib", g.fill_mib).num("bw_mib_s", bw_mib_s);
  kase.num("downtime_ms", o.downtime_ms).boolean("auto_converge", o.auto_converge).num("timeout_s", o.timeout_s);
  out.raw("case", kase.done());

  auto dst = Qemu::start(g, o.workdir, "q" + std::to_string(gen + 1), true);
  if (!dst) return {Json().str("error", dst.error().message()).done(), false};
  auto uri = dst->listen_incoming(Clock::now() + 30s);
  if (!uri) return {Json().str("error", "incoming QEMU: " + uri.error().message()).done(), false};

  say("measuring the dirty curve (windows %zu, %d rounds) on generation %d", o.windows_s.size(), o.rounds, gen);
  auto m = measure(src, o);
  if (!m) return {Json().str("error", "dirty rate: " + m.error().message()).done(), false};
  auto nz = nonzero_fraction(src.pid(), static_cast<std::uint64_t>(g.mem_mib) << 20);
  auto ps = collectors::process_stat(static_cast<std::uint32_t>(src.pid()));
  auto rss = ps ? Result<std::uint64_t>(ps->rss_bytes) : Result<std::uint64_t>(ps.error());
  const double ram = g.mem_mib * kMiB;
  const double nonzero = nz ? *nz * ram : ram;
  const double dirtier_rate = last_dirtier_rate(src.console_path()).value_or(g.rate);

  // The controller's view of the VM, as the agent would report it, and
  // its own translation into predictor inputs.
  model::VmState vm;
  vm.id = "lab-guest";
  vm.ram_bytes = static_cast<std::uint64_t>(ram);
  vm.rss_bytes = static_cast<std::uint64_t>(nonzero);
  vm.dirty_bytes_per_s = m->rate_2s_bytes_per_s;
  // Page-sampling noise can make a longer window read fewer pages than a
  // shorter one; D is non-decreasing, so the curve keeps the running max.
  double running = 0;
  std::string pts = "[";
  for (const auto& [tau, pages] : m->points) {
    running = std::max(running, pages);
    vm.dirty_curve.push_back(
        {std::chrono::nanoseconds(static_cast<std::int64_t>(tau * 1e9)), static_cast<std::uint64_t>(running * kPage)});
    char b[64];
    std::snprintf(b, sizeof b, "%s[%.3f,%.0f]", pts.size() > 1 ? "," : "", tau, pages);
    pts += b;
  }
  pts += "]";
  strategy::PrecopyCostParams params;
  params.downtime_limit_ms = o.downtime_ms;
  params.auto_converge = o.auto_converge;
  auto inputs_for = [&](const model::VmState& v) {
    predictor::Inputs i = strategy::precopy_inputs(v, bw, params);
    i.vcpu_busy_frac = m->vcpu_busy;
    i.link_bytes_per_s = std::max(link_bytes_per_s, bw);
    return i;
  };
  const predictor::Inputs in = inputs_for(vm);

  const predictor::LinkCalibration cal = load_calibration(o.calibration);
  const predictor::Inputs cin = predictor::apply(in, cal);
  auto uncalibrated = predictor::predict_precopy(in);
  auto without_vm_cal = predictor::predict_precopy(cin);
  // What the controller predicts: the curve also scaled by what this VM's
  // previous migration measured of its dirtying (model_now()).
  const double vm_factor = vm_cal.factor(vm.id, seconds_now());
  model::VmState seen = vm;
  strategy::scale_dirtying(seen, vm_factor);
  auto predicted = predictor::predict_precopy(predictor::apply(inputs_for(seen), cal));
  auto baseline = predictor::predict_constant_rate(cin, m->rate_2s_bytes_per_s);
  // The truth: CPU-bound writers (rate 0) go as fast as the vCPU does; the
  // dirtier's own heartbeat says how fast that is.
  const double true_rate = g.rate > 0 ? g.rate : dirtier_rate;
  predictor::Inputs oin = cin;
  oin.dirty = true_curve(g.pattern, true_rate, g.ws_mib * kMiB / kPage);
  auto oracle = predictor::predict_precopy(oin);
  // The baseline from the truth: the rate a perfect 2 s window would read.
  auto baseline_oracle = predictor::predict_constant_rate(cin, oin.dirty.at(2.0) * kPage / 2.0);

  Json inputs;
  inputs.num("ram_bytes", ram).num("nonzero_bytes", nonzero).num("rss_bytes", rss ? static_cast<double>(*rss) : NAN);
  inputs.num("bw_bytes_per_s", cin.bandwidth_bytes_per_s).num("link_bytes_per_s", cin.link_bytes_per_s);
  inputs.num("vcpu_busy_frac", m->vcpu_busy).raw("dirty_points", pts).num("dirty_rounds", o.rounds);
  inputs.num("dirty_rate_2s_bytes_per_s", m->rate_2s_bytes_per_s).num("dirtier_rate_pages_per_s", dirtier_rate);
  inputs.num("calibration_bw_factor", cal.bw_factor).num("calibration_stop_bytes_per_s", cal.stop_bytes_per_s);
  inputs.num("calibration_migrations", cal.migrations).num("vm_dirty_factor", vm_factor);
  out.raw("inputs", inputs.done());
  out.raw("predicted", prediction_json(predicted));
  out.raw("predicted_uncalibrated", prediction_json(uncalibrated));
  out.raw("predicted_without_vm_calibration", prediction_json(without_vm_cal));
  out.raw("baseline", prediction_json(baseline));
  out.raw("predicted_oracle", prediction_json(oracle));
  out.raw("baseline_oracle", prediction_json(baseline_oracle));
  if (predicted) {
    say("predicted %.2f s, %.0f ms down, %.0f MiB, %d passes, %s", predicted->total_s, predicted->downtime_ms,
        predicted->bytes / kMiB, predicted->passes, predicted->converges ? "converges" : "does not converge");
  }

  // The migration, through the executor the controller would use.
  executor::QmpExecutorOptions eo;
  const std::string src_qmp = src.qmp_path(), dst_uri = *uri;
  eo.qmp_socket = [src_qmp](const std::string& host, const std::string&) -> Result<std::string> {
    if (host != "lab-src") return make_error(Errc::kInvalidArgument, "unknown host " + host);
    return src_qmp;
  };
  eo.incoming_uri = [dst_uri](const std::string& host, const std::string&) -> Result<std::string> {
    if (host != "lab-dst") return make_error(Errc::kInvalidArgument, "unknown host " + host);
    return dst_uri;
  };
  executor::QmpExecutor ex(eo);
  executor::MigrationRequest req;
  req.vm_id = "lab-guest";
  req.vm_name = "lab-guest";
  req.src = "lab-src";
  req.dst = "lab-dst";
  req.max_bandwidth_bytes_per_s = bw;
  req.downtime_limit_ms = o.downtime_ms;
  req.auto_converge = o.auto_converge;
  req.timeout = std::chrono::milliseconds(static_cast<std::int64_t>(o.timeout_s * 1000));
  say("migrating at %.0f MiB/s, downtime limit %.0f ms%s", bw_mib_s, o.downtime_ms,
      o.auto_converge ? ", auto-converge" : "");
  auto h = ex.start(req);
  if (!h) return {Json().str("error", "start: " + h.error().message()).done(), false};
  auto p = ex.wait(*h, Clock::now() + std::chrono::milliseconds(static_cast<std::int64_t>(o.timeout_s * 1000)) + 20s);
  if (!p) return {Json().str("error", "poll: " + p.error().message()).done(), false};
  const auto q = ex.last_query(*h);
  Json actual;
  actual.num("total_ms", p->state == executor::State::kSucceeded ? p->total_ms : p->elapsed_s * 1000);
  actual.num("downtime_ms", p->downtime_ms).num("bytes", static_cast<double>(p->bytes));
  actual.num("passes", static_cast<double>(predictor::passes_from_dirty_syncs(static_cast<std::int64_t>(p->passes))));
  actual.num("dirty_syncs", static_cast<double>(p->passes));
  actual.boolean("converged", p->state == executor::State::kSucceeded);
  actual.str("state", p->state == executor::State::kSucceeded ? "succeeded"
                      : p->state == executor::State::kFailed  ? "failed"
                                                              : "running");
  if (!p->error.empty()) actual.str("error", p->error);
  if (q) {
    actual.num("setup_ms", static_cast<double>(q->setup_time_ms.value_or(0)));
    actual.num("downtime_bytes", static_cast<double>(q->downtime_bytes)).num("mbps", q->mbps);
    actual.num("throttle_pct", q->throttle_pct).num("normal_pages", static_cast<double>(q->normal_pages));
    actual.num("zero_pages", static_cast<double>(q->zero_pages));
  }
  std::string syncs = "[";
  double max_throttle = 0;
  const std::vector<executor::SyncMark> ex_syncs = ex.syncs(*h);
  for (const auto& s : ex_syncs) {
    max_throttle = std::max(max_throttle, s.throttle_pct);
    char b[96];
    std::snprintf(b, sizeof b, "%s[%.3f,%llu,%llu]", syncs.size() > 1 ? "," : "", s.t_s,
                  static_cast<unsigned long long>(s.sync_count), static_cast<unsigned long long>(s.transferred));
    syncs += b;
  }
  actual.raw("syncs", syncs + "]");
  actual.num("max_throttle_pct", max_throttle);
  out.raw("actual", actual.done());
  ex.forget(*h);  // lets go of the source's monitor (it takes one client)
  say("actual %s: %.2f s, %.0f ms down, %.0f MiB, %llu syncs",
      p->state == executor::State::kSucceeded ? "done" : "FAILED", p->total_ms / 1000, p->downtime_ms,
      static_cast<double>(p->bytes) / kMiB, static_cast<unsigned long long>(p->passes));

  // Where does the guest live now, and does it still run there?
  Json alive;
  Qemu* home = &src;
  if (p->state == executor::State::kSucceeded) home = &*dst;
  auto state = home->run_state(Clock::now() + 10s);
  alive.str("host", home == &src ? "source" : "destination").str("status", state ? *state : state.error().message());
  auto beats = await_console(home->console_path(), "dirtier: t=", 2, Clock::now() + 30s, home);
  const int got = beats ? *beats : 0;
  const std::string console = read_file(home->console_path());
  const bool panic = console.find("Kernel panic") != std::string::npos || console.find("BUG:") != std::string::npos;
  alive.num("heartbeats", got).boolean("panic", panic);
  alive.boolean("ok", state && *state == "running" && got >= 2 && !panic);
  out.raw("alive", alive.done());
  run.ok = state && *state == "running" && got >= 2 && !panic;
  say("guest on the %s: %s, %d new heartbeats%s", home == &src ? "source" : "destination", state ? state->c_str() : "?",
      got, panic ? ", PANIC" : "");

  if (p->state == executor::State::kSucceeded) {
    predictor::MigrationFigures f;
    f.assumed_bw_bytes_per_s = in.bandwidth_bytes_per_s;
    f.assumed_stop_bytes_per_s = in.link_bytes_per_s;
    f.total_ms = p->total_ms;
    f.downtime_ms = p->downtime_ms;
    f.bytes = static_cast<double>(p->bytes);
    f.setup_ms = p->setup_ms;
    f.downtime_bytes = static_cast<double>(p->downtime_bytes);
    f.succeeded = true;
    // Per VM, as the controller does (Controller::poll_migrations): each of
    // QEMU's dirty-rate figures against what the measured curve expects
    // over the same syncs (predictor::MigrationDirtyRate). Not under
    // auto-converge, whose throttle slows the guest.
    if (!o.auto_converge) {
      const predictor::DirtyCurve curve = strategy::dirty_curve_pages(vm, kPage);
      predictor::MigrationDirtyRate rate(0);
      for (const auto& s : ex_syncs) rate.observe(s.t_s, s.sync_count, s.dirty_pages_per_s, curve);
      const double measured = rate.measured_pages_per_s(), expected = rate.expected_pages_per_s();
      vm_cal.record(vm.id, measured * kPage, expected * kPage, seconds_now());
      say("dirty rate during the migration %.0f pages/s, expected from the curve %.0f: next predictions x%.2f",
          measured, expected, vm_cal.factor(vm.id, seconds_now()));
    }
    if (!o.calibration.empty()) {
      // The next prediction for this pair starts from what this one taught.
      predictor::LinkCalibration next = predictor::calibrate(cal, f);
      save_calibration(o.calibration, next);
    }
    src.kill();  // paused in postmigrate: the guest lives on the destination now
    src = std::move(*dst);
  } else {
    dst->kill();
  }
  run.json = out.done();
  return run;
}

std::vector<double> parse_list(const std::string& s) {
  std::vector<double> v;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');) {
    if (!item.empty()) v.push_back(std::stod(item));
  }
  return v;
}

int run_main(int argc, char** argv) {
  Options o;
  std::string bw_list = "32", windows = "0.5,1.5,4";
  CLI::App app{"vmtide-lab-migrate: a real QMP migration of the lab guest, predicted and measured"};
  app.add_option("--mem", o.mem_mib, "guest RAM, MiB")->check(CLI::Range(64, 4096));
  app.add_option("--wss", o.wss_mib, "working set the dirtier writes, MiB")->check(CLI::Range(1, 4096));
  app.add_option("--rate", o.rate, "pages/s the dirtier writes (0: as fast as the vCPU runs)")
      ->check(CLI::Range(0.0, 1e7));
  app.add_option("--pattern", o.pattern, "random | sequential | hotcold | phased")
      ->check(CLI::IsMember({"random", "sequential", "hotcold", "phased"}));
  app.add_option("--fill", o.fill_mib, "MiB the dirtier makes non-zero at start (default: max(wss, 3/8 of RAM))");
  app.add_option("--bw", bw_list, "max-bandwidth MiB/s; a list (32,64) migrates back and forth once per value");
  app.add_option("--downtime-ms", o.downtime_ms, "downtime-limit, ms")->check(CLI::Range(1.0, 60000.0));
  app.add_flag("--auto-converge", o.auto_converge, "turn on QEMU's auto-converge");
  app.add_option("--timeout", o.timeout_s, "abort a migration not done after this many seconds")
      ->check(CLI::Range(1.0, 600.0));
  // The short window sets D at the scale of QEMU's 100 ms checks, the long
  // one reaches pass 0's length at these caps (4-5 s at 32 MiB/s), where
  // extrapolating a saturating curve with its last slope overshoots.
  app.add_option("--windows", windows, "calc-dirty-rate windows, seconds (comma-separated)")->capture_default_str();
  app.add_option("--rounds", o.rounds, "measure the windows this many times and average (the controller averages)")
      ->check(CLI::Range(1, 20))
      ->capture_default_str();
  app.add_option("--kernel", o.kernel, "lab guest kernel (lab/build-guest)")->required();
  app.add_option("--initrd", o.initrd, "lab guest initramfs (lab/build-guest)")->required();
  app.add_option("--workdir", o.workdir, "where the QEMUs' sockets and consoles go (default: a new /tmp dir)");
  app.add_option("--calibration", o.calibration, "per-pair calibration state, read before and updated after");
  app.add_option("--label", o.label, "a name for this case in the output");
  app.add_flag("--json", o.json, "one JSON object per migration on stdout (always on; kept for the interface)");
  app.add_flag("--keep", o.keep, "keep the work directory");
  CLI11_PARSE(app, argc, argv);
  o.bw_mib_s = parse_list(bw_list);
  o.windows_s = parse_list(windows);
  if (o.bw_mib_s.empty() || o.windows_s.empty()) {
    say("--bw and --windows need at least one value");
    return 2;
  }
  if (o.fill_mib < 0) o.fill_mib = std::max(o.wss_mib, o.mem_mib * 3 / 8);
  if (o.fill_mib > o.mem_mib * 3 / 4 || o.wss_mib > o.mem_mib * 3 / 4) {
    say("working set and fill must leave the guest kernel a quarter of RAM");
    return 2;
  }
  bool own_dir = false;
  if (o.workdir.empty()) {
    char tmpl[] = "/tmp/vmtide-lab.XXXXXX";
    if (mkdtemp(tmpl) == nullptr) {
      say("mkdtemp failed");
      return 1;
    }
    o.workdir = tmpl;
    own_dir = true;
  }
  GuestSpec g;
  g.kernel = o.kernel;
  g.initrd = o.initrd;
  g.mem_mib = o.mem_mib;
  g.ws_mib = o.wss_mib;
  g.rate = o.rate;
  g.pattern = o.pattern;
  g.fill_mib = o.fill_mib;

  // The link's capacity: the best of three probes, as a busy moment on the
  // shared machine reads low.
  double link_bps = 0;
  for (int i = 0; i < 3; ++i) {
    if (auto link = loopback_bytes_per_s()) link_bps = std::max(link_bps, *link);
  }
  say("loopback %.0f MiB/s; booting %d MiB guest (%d MiB set, %.0f pages/s %s)", link_bps / kMiB, g.mem_mib, g.ws_mib,
      g.rate, g.pattern.c_str());
  const auto t_boot = Clock::now();
  auto src = Qemu::start(g, o.workdir, "q0", false);
  int rc = 0;
  if (!src) {
    say("%s", src.error().message().c_str());
    return 1;
  }
  // Steady state: the dirtier past its fill, three heartbeats in.
  auto beats = await_console(src->console_path(), "dirtier: t=", 3, Clock::now() + 180s, &*src);
  if (!beats || *beats < 3) {
    say("the guest did not reach its steady state; console:\n%s\nqemu:\n%s", read_file(src->console_path()).c_str(),
        read_file(src->log_path()).c_str());
    return 1;
  }
  say("guest steady after %.1f s", std::chrono::duration<double>(Clock::now() - t_boot).count());
  Qemu current = std::move(*src);
  predictor::VmDirtyCalibration vm_cal;  // the guest's own, across its migrations
  for (std::size_t i = 0; i < o.bw_mib_s.size(); ++i) {
    Run r = one_migration(o, g, current, static_cast<int>(i), o.bw_mib_s[i], link_bps, vm_cal);
    std::printf("%s\n", r.json.c_str());
    std::fflush(stdout);
    if (!r.ok) {
      rc = 1;
      break;
    }
  }
  current.kill();
  if (own_dir && !o.keep && rc == 0) std::system(("rm -rf '" + o.workdir + "'").c_str());
  if (rc != 0) say("work directory kept: %s", o.workdir.c_str());
  return rc;
}

}  // namespace
}  // namespace vmtide::lab

int main(int argc, char** argv) { return vmtide::lab::run_main(argc, argv); }
