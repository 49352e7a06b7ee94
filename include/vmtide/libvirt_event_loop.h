// SPDX-License-Identifier: Apache-2.0
// libvirt's default event loop, once per process, for every component that
// talks to libvirt (agent discovery, controller executor): lifecycle events
// and connection keepalives need it, and two loops in one process would
// compete for the same GLib context. Include only where libvirt is linked.
#pragma once

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <chrono>
#include <mutex>
#include <thread>

namespace vmtide {

// Starts the loop on first use and leaves it running: it is idle when no
// connection is open. Also silences libvirt's default error printing to
// stderr: vmtide's errors travel as Result values and become one log line
// where they are handled (virGetLastErrorMessage still works).
inline void ensure_libvirt_event_loop() {
  static std::once_flag once;  // inline function: one flag per process
  std::call_once(once, [] {
    // Before any other call: sets up libvirt's thread-local error state.
    if (virInitialize() != 0) return;
    virSetErrorFunc(nullptr, [](void*, virErrorPtr) {});
    if (virEventRegisterDefaultImpl() != 0) return;
    // A periodic no-op timer so the loop iteration returns regularly.
    virEventAddTimeout(
        500, [](int, void*) {}, nullptr, nullptr);
    std::thread([] {
      for (;;) {
        if (virEventRunDefaultImpl() != 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }).detach();
  });
}

}  // namespace vmtide
