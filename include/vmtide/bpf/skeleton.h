// SPDX-License-Identifier: Apache-2.0
// Skeleton<T>: the one RAII owner of a bpftool-generated skeleton (STYLE.md
// rules 5 and 6; Katran's BpfSkeleton<T> is the model). The load sequence is
// open -> configure (rodata, max_entries) -> load -> attach; the destructor
// detaches and destroys on every path. Maps and programs are reached through
// the typed `skel->maps.x`, never by name.
#pragma once

#include <cerrno>
#include <cstring>
#include <functional>
#include <string>
#include <utility>

#include <bpf/libbpf.h>

#include "vmtide/result.h"

namespace vmtide::bpf {

// T is a skeleton struct from `bpftool gen skeleton` (>= 7.0), which
// declares static T::open/load/attach/destroy members for C++.
template <typename T>
class Skeleton {
 public:
  using Configure = std::function<Status(T&)>;

  Skeleton() = default;
  Skeleton(const Skeleton&) = delete;
  Skeleton& operator=(const Skeleton&) = delete;
  Skeleton(Skeleton&& o) noexcept : skel_(std::exchange(o.skel_, nullptr)), name_(std::move(o.name_)) {}
  Skeleton& operator=(Skeleton&& o) noexcept {
    if (this != &o) {
      reset();
      skel_ = std::exchange(o.skel_, nullptr);
      name_ = std::move(o.name_);
    }
    return *this;
  }
  ~Skeleton() { reset(); }

  // Opens, lets `configure` set rodata and map sizes, loads into the kernel
  // and attaches every program. On failure nothing stays loaded.
  [[nodiscard]] static Result<Skeleton> open_load_attach(std::string name, const Configure& configure = {}) {
    Skeleton s;
    s.name_ = std::move(name);
    s.skel_ = T::open();
    if (s.skel_ == nullptr) {
      return make_error(Errc::kBpfOpen, s.name_ + ": open: " + std::strerror(errno));
    }
    if (configure) {
      Status st = configure(*s.skel_);
      if (!st) return st.error();
    }
    if (int err = T::load(s.skel_); err != 0) {
      return make_error(errno_code(err, Errc::kBpfLoad),
                        s.name_ + ": load into the kernel: " + std::strerror(-err) + load_hint(err));
    }
    if (int err = T::attach(s.skel_); err != 0) {
      return make_error(errno_code(err, Errc::kBpfAttach), s.name_ + ": attach: " + std::strerror(-err));
    }
    return s;
  }

  T* operator->() const noexcept { return skel_; }
  T& operator*() const noexcept { return *skel_; }
  T* get() const noexcept { return skel_; }
  const std::string& name() const noexcept { return name_; }
  explicit operator bool() const noexcept { return skel_ != nullptr; }

  void reset() noexcept {
    if (skel_ != nullptr) {
      T::destroy(skel_);  // detaches links, unloads programs, frees maps
      skel_ = nullptr;
    }
  }

 private:
  static Errc errno_code(int err, Errc fallback) {
    return (err == -EPERM || err == -EACCES) ? Errc::kPermission : fallback;
  }
  static std::string load_hint(int err) {
    if (err == -EPERM || err == -EACCES) return " (needs root, or CAP_BPF and CAP_PERFMON)";
    return " (the verifier log above says why)";
  }

  T* skel_ = nullptr;
  std::string name_;
};

}  // namespace vmtide::bpf
