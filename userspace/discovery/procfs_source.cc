// SPDX-License-Identifier: Apache-2.0
// procfs VM source with the QMP dirty-rate fallback (procfs_source.h).
#include "procfs_source.h"

#include <sys/stat.h>

#include <algorithm>

#include "qmp.h"

namespace vmtide::discovery {

Result<std::vector<QemuProcess>> ProcfsSource::scan() {
  auto found = scan_qemu_processes(opts_.proc_root, opts_.extra_pids, &cache_);
  vms_.clear();
  for (const auto& p : found) vms_[p.id] = Vm{p.pid, p.qmp_sockets};
  return found;
}

Result<json::Value> ProcfsSource::qmp(const std::string& id, const char* command, const std::string& arguments) {
  auto it = vms_.find(id);
  if (it == vms_.end()) return make_error(Errc::kNotFound, "qmp: no VM " + id);
  const Vm& vm = it->second;
  if (vm.qmp_sockets.empty()) {
    return make_error(Errc::kUnsupported, "no QMP server socket on the command line of pid " + std::to_string(vm.pid));
  }
  // One time budget for the call, shared by the VM's sockets.
  const auto until = QmpClock::now() + opts_.qmp_timeout;
  const auto share = opts_.qmp_timeout / static_cast<int>(vm.qmp_sockets.size());
  std::optional<Error> first;
  for (const auto& path : vm.qmp_sockets) {
    const auto deadline = std::min(until, QmpClock::now() + share);
    auto c = QmpClient::connect(path, deadline);
    auto r = c ? c->execute(command, arguments, deadline) : Result<json::Value>(std::move(c).error());
    if (r) return r;
    // Busy wins over other errors: it says what the operator can fix.
    if (!first || (r.error().code == Errc::kBusy && first->code != Errc::kBusy)) first = r.error();
  }
  // A VM that exited between the scan and now: its socket is gone or
  // refuses. Say so, so the caller drops it quietly.
  struct stat st {};
  if (::stat((opts_.proc_root + "/" + std::to_string(vm.pid)).c_str(), &st) != 0) {
    return make_error(Errc::kNotFound, "qmp: pid " + std::to_string(vm.pid) + " is gone");
  }
  return *first;
}

Status ProcfsSource::start_dirty_rate(const std::string& id, int seconds) {
  auto r = qmp(id, "calc-dirty-rate", calc_dirty_rate_arguments(seconds, opts_.sample_pages_per_gib));
  if (!r) return std::move(r).error();
  return {};
}

Result<std::optional<HypervisorDirtyRate>> ProcfsSource::dirty_rate(const std::string& id) {
  auto r = qmp(id, "query-dirty-rate", "");
  if (!r) return std::move(r).error();
  return parse_query_dirty_rate(*r);
}

}  // namespace vmtide::discovery
