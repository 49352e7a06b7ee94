// SPDX-License-Identifier: Apache-2.0
// The real-migration lab's machinery, shared by vmtide-lab-migrate and the
// QMP executor's integration test: boot the lab guest (lab/build-guest) in
// a QEMU under TCG with a QMP socket, or an incoming QEMU for it; await
// its console's heartbeat (inotify, not sleeps); and the host-side
// telemetry the predictor needs that QMP does not give (which share of
// guest RAM is non-zero, how busy the vCPU thread is).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "vmtide/result.h"

namespace vmtide::lab {

using Clock = std::chrono::steady_clock;

struct GuestSpec {
  std::string kernel, initrd;  // lab/build-guest's output
  int mem_mib = 256;
  int ws_mib = 32;
  double rate = 5000;  // pages/s; 0 = CPU-bound (as fast as the vCPU runs)
  std::string pattern = "random";
  int fill_mib = 96;
};

// One QEMU this process started; the destructor kills it (SIGKILL to its
// pid only) and reaps it.
class Qemu {
 public:
  // Boots `g` (incoming = false), or waits for it on a migration stream
  // (incoming = true: -incoming defer; see listen_incoming()). Files go to
  // `dir`/<tag>.{qmp,console,log}.
  [[nodiscard]] static Result<Qemu> start(const GuestSpec& g, const std::string& dir, const std::string& tag,
                                          bool incoming);
  Qemu(Qemu&& o) noexcept;
  Qemu& operator=(Qemu&& o) noexcept;
  Qemu(const Qemu&) = delete;
  Qemu& operator=(const Qemu&) = delete;
  ~Qemu();

  pid_t pid() const { return pid_; }
  const std::string& qmp_path() const { return qmp_; }
  const std::string& console_path() const { return console_; }
  const std::string& log_path() const { return log_; }
  // Still running (reaps it if not).
  bool alive();
  void kill();

  // For an incoming QEMU: migrate-incoming on 127.0.0.1 port 0 and the URI
  // the kernel chose ("tcp:127.0.0.1:PORT", from query-migrate's
  // socket-address).
  [[nodiscard]] Result<std::string> listen_incoming(Clock::time_point deadline);
  // query-status's "status" (e.g. "running", "inmigrate", "postmigrate").
  [[nodiscard]] Result<std::string> run_state(Clock::time_point deadline);

 private:
  Qemu() = default;
  pid_t pid_ = -1;
  std::string qmp_, console_, log_;
};

// Waits until the console file holds `count` more lines containing `needle`
// than it held when called with `from_count` (or, with from_count < 0, the
// count at the call), or until `deadline` or `alive` says the QEMU died.
// Watches the file with inotify. Returns how many it holds then.
[[nodiscard]] Result<int> await_console(const std::string& path, const std::string& needle, int count,
                                        Clock::time_point deadline, Qemu* q = nullptr);
int count_in_file(const std::string& path, const std::string& needle);
std::string read_file(const std::string& path);
// The last "rate=<n>" the dirtier printed (its measured pages/s), or nullopt.
std::optional<double> last_dirtier_rate(const std::string& console);

// Share of guest RAM that is non-zero: reads `samples` random pages of the
// guest-RAM mapping of QEMU `pid` (the anonymous mapping of `ram_bytes`)
// with process_vm_readv. What QEMU's pass 0 sends in full; the process's
// RSS is no stand-in (it counts QEMU's own memory and pages the guest
// zeroed). Needs ptrace rights over the process (root).
[[nodiscard]] Result<double> nonzero_fraction(pid_t pid, std::uint64_t ram_bytes, int samples = 4096);

// Seconds the vCPU threads ("CPU n/TCG" or "CPU n/KVM", with
// -name debug-threads=on) of `pid` have run, and waited runnable for a CPU
// (/proc/<tid>/schedstat: what the agent reports as CPU and steal). Their
// sum over a span is the guest's CPU demand: a CPU-bound guest on a busy
// host demands all of its vCPU though it runs less.
struct VcpuTime {
  double run_s = 0;
  double wait_s = 0;
};
[[nodiscard]] Result<VcpuTime> vcpu_time(pid_t pid);

// Loopback TCP throughput (bytes/s) over `bytes`: the lab's "link" for the
// stop-and-copy, which QEMU sends without its rate limit.
[[nodiscard]] Result<double> loopback_bytes_per_s(std::uint64_t bytes = 64ull << 20);

}  // namespace vmtide::lab
