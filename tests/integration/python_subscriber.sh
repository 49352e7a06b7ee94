#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs examples/subscriber.py against a live agent tracking a spinning
# process: the example must print that process's samples and lose nothing.
# With --curve, the agent encrypts its stream (keys from `vmtide keygen`) and
# the example connects with --server-key.
# Exit 77 (skipped) if Debian's python3 lacks zmq or msgpack.
#   usage: python_subscriber.sh BUILD_DIR SOURCE_DIR [--curve]
set -euo pipefail
build=$1
src=$2
curve=${3:-}
py=/usr/bin/python3
"$py" -c 'import zmq, msgpack' 2>/dev/null || { echo "SKIPPED: $py lacks zmq or msgpack (python3-zmq, python3-msgpack)"; exit 77; }
. "$(dirname "$0")/lib.sh"
agent_args=() sub_args=()
if [[ $curve == --curve ]]; then
    "$build/bin/vmtide" keygen "$work/agent"
    agent_args=(--curve-secret-key "$work/agent.key")
    sub_args=(--server-key "$work/agent.pub")
fi
start_spinner
start_agent "$build" --discovery procfs --pid "$spinner" --interval 0.5 --no-bpf --wait-subscriber 30 "${agent_args[@]}"

# Other QEMU processes may run on this machine: follow ours by name.
"$py" "$src/examples/subscriber.py" --connect "$ep" "${sub_args[@]}" --vm "pid$spinner" --vm "proc:$spinner" --count 4 --timeout 30 >"$work/out" 2>"$work/err"
cat "$work/out" "$work/err"
n=$(grep -c "pid$spinner .*cpu" "$work/out" || true)
[[ $n -eq 4 ]] || { echo "FAIL: expected 4 samples of pid$spinner, got $n"; exit 1; }
grep -q "event vm_started" "$work/out" || { echo "FAIL: the vm_started event was not printed"; exit 1; }
grep -q "4 samples, 0 messages lost" "$work/err" || { echo "FAIL: loss reported"; exit 1; }
echo ok
