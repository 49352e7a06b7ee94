// SPDX-License-Identifier: Apache-2.0
// `vmtide top` (top.h): a SUB socket to every agent, the TopModel, and a
// redraw each refresh. In a terminal, keys change the sort (c s d i n) and
// q quits; piped, it prints plain frames.
#include "top.h"

#include <signal.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>

#include <zmq.hpp>

#include "top_model.h"
#include "vmtide/wire/curve.h"
#include "vmtide/wire/zmq_io.h"

namespace vmtide::cli {
namespace {

std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop.store(true); }

// Raw keyboard input while top runs; restored on every exit path.
class RawTerminal {
 public:
  RawTerminal() {
    if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved_) != 0) return;
    termios raw = saved_;
    raw.c_lflag &= static_cast<tcflag_t>(~(ICANON | ECHO));
    raw.c_cc[VMIN] = 0;
    raw.c_cc[VTIME] = 0;
    active_ = tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
  }
  ~RawTerminal() {
    if (active_) tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
  }
  bool active() const { return active_; }

 private:
  termios saved_{};
  bool active_ = false;
};

bool parse_sort(const std::string& s, SortKey* out) {
  if (s == "cpu") *out = SortKey::kCpu;
  else if (s == "steal") *out = SortKey::kSteal;
  else if (s == "dirty") *out = SortKey::kDirty;
  else if (s == "io") *out = SortKey::kIo;
  else if (s == "name") *out = SortKey::kName;
  else return false;
  return true;
}

}  // namespace

int run_top(const TopOptions& opts) {
  SortKey key;
  if (!parse_sort(opts.sort, &key)) {
    std::fprintf(stderr, "vmtide top: unknown sort '%s' (cpu, steal, dirty, io, name)\n", opts.sort.c_str());
    return 1;
  }
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  const bool tty = isatty(STDOUT_FILENO);
  RawTerminal term;
  TopModel model;
  int frames = 0;
  try {
    zmq::context_t ctx;
    zmq::socket_t sub(ctx, zmq::socket_type::sub);
    sub.set(zmq::sockopt::linger, 0);
    sub.set(zmq::sockopt::subscribe, "vmtide.v1.");
    if (Status st = wire::apply_limits(sub); !st) {
      std::fprintf(stderr, "vmtide top: %s\n", st.error().message().c_str());
      return 1;
    }
    if (Status st = wire::curve::configure_subscriber(sub, opts.server_key, opts.client_key); !st) {
      std::fprintf(stderr, "vmtide top: %s\n", st.error().context.c_str());
      return 1;
    }
    for (const auto& ep : opts.endpoints) sub.connect(ep);
    const auto refresh = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(opts.refresh_s));
    auto next_draw = std::chrono::steady_clock::now() + refresh;
    while (!g_stop.load()) {
      zmq::pollitem_t items[] = {{sub.handle(), 0, ZMQ_POLLIN, 0}, {nullptr, STDIN_FILENO, ZMQ_POLLIN, 0}};
      const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next_draw - std::chrono::steady_clock::now());
      try {
        zmq::poll(items, term.active() ? 2 : 1, std::chrono::milliseconds(std::max<long>(0, wait.count())));
      } catch (const zmq::error_t& e) {
        if (e.num() != EINTR) throw;
      }
      if (items[0].revents & ZMQ_POLLIN) {
        for (int i = 0; i < 10000; ++i) {  // drain what is queued, bounded
          auto m = wire::recv_message(sub, zmq::recv_flags::dontwait);
          if (m && !m->has_value()) break;
          if (m) model.ingest(**m, std::chrono::steady_clock::now());
        }
      }
      if (term.active() && (items[1].revents & ZMQ_POLLIN)) {
        char c = 0;
        if (read(STDIN_FILENO, &c, 1) == 1) {
          if (c == 'q') break;
          const char* keys = "csdin";
          for (int k = 0; k < 5; ++k) {
            if (c == keys[k]) {
              key = static_cast<SortKey>(k);
              next_draw = std::chrono::steady_clock::now();  // redraw now
            }
          }
        }
      }
      const auto now = std::chrono::steady_clock::now();
      if (now < next_draw) continue;
      next_draw = now + refresh;
      winsize ws{};
      const bool sized = tty && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0;
      const auto lines = render(model.rows(key, now), model.stale_hosts(now), key, model.host_count(),
                                sized ? ws.ws_col : 200, sized ? ws.ws_row - 1 : 1000);
      std::string screen = tty ? "\x1b[H\x1b[2J" : "";  // home + clear
      for (const auto& l : lines) screen += l + "\n";
      if (!tty) screen += "\n";
      std::fwrite(screen.data(), 1, screen.size(), stdout);
      std::fflush(stdout);
      if (opts.frames > 0 && ++frames >= opts.frames) break;
    }
  } catch (const zmq::error_t& e) {
    std::fprintf(stderr, "vmtide top: %s\n", e.what());
    return 1;
  }
  return 0;
}

}  // namespace vmtide::cli
