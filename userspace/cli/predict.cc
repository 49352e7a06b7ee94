// SPDX-License-Identifier: Apache-2.0
// `vmtide predict` (predict.h).
#include "predict.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "units.h"

namespace vmtide::cli {
namespace {

Error bad(std::string_view option, const std::string& why) {
  return make_error(Errc::kInvalidArgument, std::string(option) + ": " + why);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::optional<double> parse_number(std::string_view s) {
  s = trim(s);
  if (s.empty() || !(std::isdigit(static_cast<unsigned char>(s.front())) || s.front() == '.')) return std::nullopt;
  double v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

// A positive size option.
Result<double> positive_size(std::string_view option, std::string_view text, bool rate) {
  auto v = rate ? parse_rate(text) : parse_size(text);
  if (!v) return bad(option, v.error().context);
  if (*v <= 0) return bad(option, "must be more than 0");
  return *v;
}

// ---- text -----------------------------------------------------------------

constexpr int kLabelWidth = 22;
constexpr int kColumnWidth = 28;

void row(std::ostream& out, std::string_view label, const std::string& left, const std::string& right) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "  %-*.*s%-*s%s\n", kLabelWidth, static_cast<int>(label.size()), label.data(),
                kColumnWidth, left.c_str(), right.c_str());
  out << buf;
}

std::string pct(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f %%", v);
  return buf;
}

std::string if_converges(const predictor::Prediction& p, const std::string& text) { return p.converges ? text : "-"; }

std::string need_bandwidth(const predictor::Prediction& p) {
  if (p.converges) return "-";
  return p.need_bandwidth_bytes_per_s ? ">= " + format_rate(*p.need_bandwidth_bytes_per_s) : "none up to 1 TB/s";
}

std::string need_throttle(const predictor::Prediction& p, bool applies) {
  if (p.converges) return "-";
  if (!applies) return "n/a (no throttling)";
  return p.need_throttle_pct ? ">= " + pct(*p.need_throttle_pct) : "none below the maximum";
}

void print_text(std::ostream& out, const PredictionSetup& s, const PredictionPair& p) {
  out << "Pre-copy migration" << (s.subject.empty() ? "" : " of " + s.subject) << ": RAM " << format_bytes(s.ram_bytes)
      << " (" << format_bytes(s.touched_bytes) << " touched, " << format_bytes(s.page_bytes) << " pages), bandwidth "
      << format_rate(s.bandwidth_bytes_per_s) << ", downtime limit " << format_duration_ms(s.downtime_limit_ms)
      << (s.auto_converge ? ", auto-converge on" : "") << ".\n";
  out << "Dirtying: " << s.dirty << "; the baseline assumes a constant " << format_rate(s.baseline_dirty_bytes_per_s)
      << ".\n";
  row(out, "", "vmtide (dirty curve)", "baseline (constant rate)");
  const auto both = [&](std::string_view label, auto&& f) { row(out, label, f(p.precopy), f(p.constant_rate)); };
  both("converges", [](const predictor::Prediction& x) { return std::string(x.converges ? "yes" : "no"); });
  both("total time", [](const predictor::Prediction& x) {
    return x.converges ? format_duration_ms(x.total_s * 1000) : std::string("never");
  });
  both("downtime", [](const predictor::Prediction& x) { return if_converges(x, format_duration_ms(x.downtime_ms)); });
  both("transferred", [](const predictor::Prediction& x) { return if_converges(x, format_bytes(x.bytes)); });
  both("passes", [](const predictor::Prediction& x) { return if_converges(x, std::to_string(x.passes)); });
  if (s.auto_converge) {
    row(out, "final throttle", pct(p.precopy.final_throttle_pct), "n/a (no throttling)");
  }
  if (!p.precopy.converges || !p.constant_rate.converges) {
    both("would with bandwidth", [](const predictor::Prediction& x) { return need_bandwidth(x); });
    row(out, "  or CPU throttled by", need_throttle(p.precopy, true), need_throttle(p.constant_rate, false));
  }
}

// ---- JSON -----------------------------------------------------------------

class JsonObject {
 public:
  JsonObject& num(std::string_view key, double v) {
    this->key(key);
    if (!std::isfinite(v)) {
      s_ += "null";
      return *this;
    }
    char buf[32];
    // Whole numbers as integers (bytes, passes): 512000000, not 5.12e+08.
    const bool whole = std::trunc(v) == v && std::fabs(v) < 0x1p53;
    const auto [end, ec] = whole ? std::to_chars(buf, buf + sizeof buf, static_cast<long long>(v))
                                 : std::to_chars(buf, buf + sizeof buf, v);
    s_.append(buf, ec == std::errc() ? end : buf);
    return *this;
  }
  JsonObject& opt(std::string_view key, const std::optional<double>& v) {
    if (v) return num(key, *v);
    this->key(key);
    s_ += "null";
    return *this;
  }
  JsonObject& boolean(std::string_view key, bool v) {
    this->key(key);
    s_ += v ? "true" : "false";
    return *this;
  }
  JsonObject& str(std::string_view key, std::string_view v) {
    this->key(key);
    s_ += '"';
    for (const char c : v) {
      if (c == '"' || c == '\\') {
        s_ += '\\';
        s_ += c;
      } else if (static_cast<unsigned char>(c) < 0x20) {
        char esc[8];
        std::snprintf(esc, sizeof esc, "\\u%04x", static_cast<unsigned>(c));
        s_ += esc;
      } else {
        s_ += c;
      }
    }
    s_ += '"';
    return *this;
  }
  JsonObject& object(std::string_view key, const JsonObject& o) {
    this->key(key);
    s_ += o.done();
    return *this;
  }
  std::string done() const { return s_ + '}'; }

 private:
  void key(std::string_view k) {
    s_ += s_.size() > 1 ? ",\"" : "\"";
    s_.append(k);
    s_ += "\":";
  }
  std::string s_ = "{";
};

JsonObject json_of(const predictor::Prediction& p) {
  JsonObject o;
  o.boolean("converges", p.converges)
      .num("total_s", p.total_s)
      .num("downtime_ms", p.downtime_ms)
      .num("bytes", p.bytes)
      .num("passes", p.passes)
      .num("final_throttle_pct", p.final_throttle_pct)
      .opt("need_bandwidth_bytes_per_s", p.need_bandwidth_bytes_per_s)
      .opt("need_throttle_pct", p.need_throttle_pct);
  return o;
}

void print_json(std::ostream& out, const PredictionSetup& s, const PredictionPair& p) {
  JsonObject setup;
  setup.str("subject", s.subject)
      .num("ram_bytes", s.ram_bytes)
      .num("touched_bytes", s.touched_bytes)
      .num("page_bytes", s.page_bytes)
      .num("bandwidth_bytes_per_s", s.bandwidth_bytes_per_s)
      .num("downtime_limit_ms", s.downtime_limit_ms)
      .boolean("auto_converge", s.auto_converge)
      .str("dirty", s.dirty)
      .num("baseline_dirty_bytes_per_s", s.baseline_dirty_bytes_per_s);
  JsonObject all;
  all.object("setup", setup).object("precopy", json_of(p.precopy)).object("constant_rate", json_of(p.constant_rate));
  out << all.done() << '\n';
}

}  // namespace

void print_prediction(std::ostream& out, const PredictionSetup& setup, const PredictionPair& predictions,
                      PredictFormat format) {
  if (format == PredictFormat::kJson) {
    print_json(out, setup, predictions);
  } else {
    print_text(out, setup, predictions);
  }
}

Result<std::vector<predictor::DirtyCurve::Point>> parse_dirty_curve(std::string_view text) {
  std::vector<predictor::DirtyCurve::Point> points;
  std::string_view rest = trim(text);
  if (rest.empty()) return bad("--dirty-curve", "empty; give tau_s:pages,... e.g. 0.1:900,0.5:3600,1:5120");
  while (!rest.empty()) {
    const std::size_t comma = rest.find(',');
    const std::string_view item = trim(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    const std::size_t colon = item.find(':');
    if (colon == std::string_view::npos) {
      return bad("--dirty-curve", "\"" + std::string(item) + "\" is not tau_s:pages");
    }
    const auto tau = parse_number(item.substr(0, colon));
    const auto pages = parse_number(item.substr(colon + 1));
    if (!tau || !pages) {
      return bad("--dirty-curve",
                 "\"" + std::string(item) + "\": tau_s and pages must be non-negative numbers (seconds, pages)");
    }
    points.push_back({*tau, *pages});
    if (comma != std::string_view::npos && rest.empty()) return bad("--dirty-curve", "trailing comma");
  }
  return points;
}

Result<PredictRequest> make_predict_request(const PredictOptions& opts) {
  PredictRequest r;
  PredictionSetup& s = r.setup;
  auto ram = positive_size("--ram", opts.ram, false);
  if (!ram) return ram.error();
  s.ram_bytes = *ram;
  s.touched_bytes = s.ram_bytes;
  if (opts.touched) {
    auto t = parse_size(*opts.touched);
    if (!t) return bad("--touched", t.error().context);
    if (*t > s.ram_bytes) return bad("--touched", "more than --ram");
    s.touched_bytes = *t;
  }
  auto page = positive_size("--page-size", opts.page_size, false);
  if (!page) return page.error();
  s.page_bytes = *page;
  auto bw = positive_size("--bandwidth", opts.bandwidth, true);
  if (!bw) return bw.error();
  s.bandwidth_bytes_per_s = *bw;
  if (!(std::isfinite(opts.downtime_limit_ms) && opts.downtime_limit_ms >= 0)) {
    return bad("--downtime-limit", "must be a number of milliseconds >= 0");
  }
  s.downtime_limit_ms = opts.downtime_limit_ms;
  s.auto_converge = opts.auto_converge;

  const double ram_pages = s.ram_bytes / s.page_bytes;
  std::optional<double> ws_pages;
  if (opts.working_set) {
    auto ws = positive_size("--working-set", *opts.working_set, false);
    if (!ws) return ws.error();
    if (*ws > s.ram_bytes) return bad("--working-set", "more than --ram");
    ws_pages = *ws / s.page_bytes;
  }

  predictor::Inputs& in = r.inputs;
  if (opts.dirty_rate.has_value() == opts.dirty_curve.has_value()) {
    return bad("--dirty-rate/--dirty-curve", "give exactly one of them");
  }
  if (opts.dirty_rate) {
    auto rate = parse_rate(*opts.dirty_rate);
    if (!rate) return bad("--dirty-rate", rate.error().context);
    s.baseline_dirty_bytes_per_s = *rate;
    const double pages_per_s = *rate / s.page_bytes;
    if (ws_pages) {
      in.dirty = predictor::DirtyCurve::uniform_random(pages_per_s, *ws_pages);
      s.dirty =
          format_rate(*rate) + " of random writes over a " + format_bytes(*ws_pages * s.page_bytes) + " working set";
    } else {
      auto line = predictor::DirtyCurve::make({{1.0, pages_per_s}}, ram_pages);
      if (!line) return bad("--dirty-rate", line.error().context);
      in.dirty = std::move(*line);
      s.dirty = format_rate(*rate) + " of distinct pages, until all of RAM is dirty";
    }
  } else {
    auto points = parse_dirty_curve(*opts.dirty_curve);
    if (!points) return points.error();
    const auto last = points->back();
    auto curve = predictor::DirtyCurve::make(*points, ws_pages.value_or(ram_pages));
    if (!curve) return bad("--dirty-curve", curve.error().context);
    in.dirty = std::move(*curve);
    s.baseline_dirty_bytes_per_s = last.pages * s.page_bytes / last.tau_s;
    char buf[96];
    std::snprintf(buf, sizeof buf, "a measured curve of %zu points, %.0f pages within %g s", points->size(), last.pages,
                  last.tau_s);
    s.dirty = buf;
  }
  in.ram_bytes = s.ram_bytes;
  in.nonzero_bytes = s.touched_bytes;
  in.page_bytes = s.page_bytes;
  in.bandwidth_bytes_per_s = s.bandwidth_bytes_per_s;
  if (opts.link) {
    auto link = positive_size("--link", *opts.link, true);
    if (!link) return link.error();
    in.link_bytes_per_s = std::max(*link, s.bandwidth_bytes_per_s);
  }
  in.downtime_limit_ms = s.downtime_limit_ms;
  in.auto_converge = s.auto_converge;
  return r;
}

Result<PredictionPair> predict_both(const PredictRequest& request) {
  auto precopy = predictor::predict_precopy(request.inputs);
  if (!precopy) return precopy.error();
  auto baseline = predictor::predict_constant_rate(request.inputs, request.setup.baseline_dirty_bytes_per_s);
  if (!baseline) return baseline.error();
  return PredictionPair{std::move(*precopy), std::move(*baseline)};
}

int run_predict(const PredictOptions& opts, std::ostream& out, std::ostream& err) {
  auto request = make_predict_request(opts);
  if (!request) {
    err << "vmtide predict: " << request.error().context << '\n';
    return 2;
  }
  auto pair = predict_both(*request);
  if (!pair) {
    err << "vmtide predict: " << pair.error().message() << '\n';
    return 2;
  }
  print_prediction(out, request->setup, *pair, opts.json ? PredictFormat::kJson : PredictFormat::kText);
  return 0;
}

}  // namespace vmtide::cli
