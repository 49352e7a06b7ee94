// SPDX-License-Identifier: Apache-2.0
// Preflight checks, libbpf logging and kernel BTF queries (bpf_support.h).
#include "bpf_support.h"

#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/capability.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <string>

#include <spdlog/spdlog.h>

namespace vmtide::bpf {
namespace {

// CAP_BPF and CAP_PERFMON are 39 and 38 (Linux 5.8); older headers lack them.
constexpr int kCapPerfmon = 38;
constexpr int kCapBpf = 39;

Result<unsigned long long> effective_caps() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("CapEff:", 0) == 0) {
      return std::stoull(line.substr(7), nullptr, 16);
    }
  }
  return make_error(Errc::kIo, "cannot read CapEff from /proc/self/status");
}

bool verbose_libbpf = false;

int libbpf_print(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (level == LIBBPF_DEBUG && !verbose_libbpf) return 0;
  char buf[1024];
  int n = std::vsnprintf(buf, sizeof buf, fmt, args);
  if (n <= 0) return 0;
  std::string_view msg(buf, std::min<size_t>(static_cast<size_t>(n), sizeof buf - 1));
  while (!msg.empty() && msg.back() == '\n') msg.remove_suffix(1);
  try {
    switch (level) {
      case LIBBPF_WARN: spdlog::warn("libbpf: {}", msg); break;
      case LIBBPF_INFO: spdlog::info("libbpf: {}", msg); break;
      case LIBBPF_DEBUG: spdlog::debug("libbpf: {}", msg); break;
    }
  } catch (...) {
    // Never let an exception cross libbpf's C frames (STYLE.md rule 8).
  }
  return n;
}

}  // namespace

Status preflight() {
  if (access("/sys/kernel/btf/vmlinux", R_OK) != 0) {
    return make_error(Errc::kUnsupported,
                      "kernel has no BTF (/sys/kernel/btf/vmlinux missing; needs CONFIG_DEBUG_INFO_BTF=y, "
                      "as in Debian, Ubuntu and RHEL kernels)");
  }
  auto caps = effective_caps();
  if (!caps) return caps.error();
  auto has = [&](int cap) { return (*caps >> cap) & 1ULL; };
  if (!has(CAP_SYS_ADMIN) && !(has(kCapBpf) && has(kCapPerfmon))) {
    return make_error(Errc::kPermission,
                      "loading BPF programs needs root, or CAP_BPF and CAP_PERFMON (effective capabilities: 0x" +
                          fmt::format("{:x}", *caps) + ")");
  }
  return {};
}

void install_libbpf_logging(bool verbose) {
  static std::once_flag once;
  verbose_libbpf = verbose;
  std::call_once(once, [] { libbpf_set_print(libbpf_print); });
}

Result<int> tracepoint_arity(const std::string& name) {
  struct btf* btf = btf__load_vmlinux_btf();
  if (btf == nullptr) {
    return make_error(Errc::kUnsupported, "cannot load kernel BTF: " + std::string(std::strerror(errno)));
  }
  const std::string type_name = "btf_trace_" + name;
  int id = btf__find_by_name_kind(btf, type_name.c_str(), BTF_KIND_TYPEDEF);
  Result<int> out = make_error(Errc::kNotFound, "no " + type_name + " in kernel BTF");
  if (id > 0) {
    // typedef -> pointer -> function prototype (void *__data, args...)
    const struct btf_type* t = btf__type_by_id(btf, btf__type_by_id(btf, id)->type);
    if (t != nullptr && btf_is_ptr(t)) t = btf__type_by_id(btf, t->type);
    if (t != nullptr && btf_is_func_proto(t) && btf_vlen(t) >= 1) {
      out = static_cast<int>(btf_vlen(t)) - 1;
    } else {
      out = make_error(Errc::kUnsupported, type_name + " is not a pointer to a function prototype");
    }
  }
  btf__free(btf);
  return out;
}

SlotPool::SlotPool(std::uint32_t size) : size_(size) {
  for (std::uint32_t i = 0; i < size; ++i) free_.insert(free_.end(), i);
}

std::optional<std::uint32_t> SlotPool::take() {
  if (free_.empty()) return std::nullopt;
  const std::uint32_t slot = *free_.begin();
  free_.erase(free_.begin());
  used_.insert(slot);
  return slot;
}

void SlotPool::release(std::uint32_t slot) {
  if (used_.erase(slot) != 0) held_.push_back(slot);
}

void SlotPool::settle() {
  free_.insert(held_.begin(), held_.end());
  held_.clear();
}

std::uint32_t SlotPool::span() const {
  std::uint32_t top = used_.empty() ? 0 : *used_.rbegin() + 1;
  for (std::uint32_t h : held_) top = std::max(top, h + 1);
  return top;
}

}  // namespace vmtide::bpf
