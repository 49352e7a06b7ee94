#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Runs a libFuzzer target for $VMTIDE_FUZZ_SECONDS, else SECONDS (default
# 60), on a fresh copy of its checked-in seeds, so the source tree is never
# written; a crash or invariant failure exits non-zero and leaves the input in
# WORK/artifacts.
# usage: run_fuzzer.sh FUZZER SEED_DIR WORK_DIR [SECONDS]
set -eu
fuzzer=$1
seeds=$2
work=$3
rm -rf "$work"
mkdir -p "$work/corpus" "$work/artifacts"
cp "$seeds"/* "$work/corpus/"
exec "$fuzzer" -max_total_time="${VMTIDE_FUZZ_SECONDS:-${4:-60}}" -rss_limit_mb=2048 -timeout=10 \
  -max_len=16384 -print_final_stats=1 -artifact_prefix="$work/artifacts/" "$work/corpus"
