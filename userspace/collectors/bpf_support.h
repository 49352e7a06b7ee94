// SPDX-License-Identifier: Apache-2.0
// What every BPF collector needs before it loads: a preflight check that
// explains a missing privilege or kernel feature in one sentence, libbpf's
// log routed to spdlog, and kernel BTF queries for load-time configuration.
#pragma once

#include <string>

#include "vmtide/result.h"

namespace vmtide::bpf {

// Checks that BPF programs can be loaded here: kernel BTF present
// (/sys/kernel/btf/vmlinux, for CO-RE and tp_btf) and the effective
// capabilities include CAP_BPF + CAP_PERFMON, or CAP_SYS_ADMIN. The error's
// context is a sentence fit for a log line or a test's skip reason.
[[nodiscard]] Status preflight();

// Routes libbpf's messages to spdlog (warnings and errors; debug when
// `verbose`). Idempotent. The callback never throws (it is a C callback).
void install_libbpf_logging(bool verbose = false);

// Number of parameters of a tracepoint in the running kernel, from the BTF
// of its `btf_trace_<name>` typedef, not counting the leading `void *`.
// Used to set load-time options where tracepoints gained arguments.
[[nodiscard]] Result<int> tracepoint_arity(const std::string& name);

}  // namespace vmtide::bpf
