#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `vmtide top` in a real terminal: tmux runs it against a live agent that
# tracks a spinning process; the pane must show that process's row, a key
# must change the sort, and q must quit. Exit 77 (skipped) without tmux.
#   usage: top_tmux.sh BUILD_DIR
set -euo pipefail
build=$1
command -v tmux >/dev/null || { echo "SKIPPED: tmux not installed (scripts/deps installs it)"; exit 77; }
session=vmtide-top-$$
. "$(dirname "$0")/lib.sh"
trap 'tmux kill-session -t "$session" 2>/dev/null || true; cleanup' EXIT

start_spinner
start_agent "$build" --discovery procfs --pid "$spinner" --interval 0.5 --no-bpf

tmux new-session -d -s "$session" -x 160 -y 30 "$build/bin/vmtide top --connect $ep --refresh 0.5"
# Poll the screen (what a person would look at) until the row appears.
want="pid$spinner"
screen=""
for _ in $(seq 1 100); do
    screen=$(tmux capture-pane -p -t "$session" || true)
    grep -q "$want" <<<"$screen" && break
    sleep 0.1
done
grep -q "$want" <<<"$screen" || { echo "FAIL: no row for $want; the screen was:"; echo "$screen"; exit 1; }
grep -q "sorted by steal" <<<"$screen" || { echo "FAIL: header missing:"; echo "$screen"; exit 1; }
row=$(grep "$want" <<<"$screen")
# A spinner always wants the CPU: it runs or it waits (steal), nothing else,
# however loaded the machine is. One row is one interval, and the agent
# stamps an interval before it reads /proc: when the agent itself is
# scheduled late (a loaded machine, a sanitizer build) one sample can read
# well under 100 %. Over consecutive samples those delays cancel out (the
# reads' deltas and the stamps' deltas telescope), so the invariant is
# checked on the sum of 8 samples from the same stream, within 10 %.
busy=$(awk '{print $3 + $4}' <<<"$row")
awk -v b="$busy" 'BEGIN { exit !(b > 50) }' || { echo "FAIL: the spinner should show busy, not idle: $row"; exit 1; }
"$build/bin/vmtide" tap --connect "$ep" --kind vm -n 8 --timeout 60 >"$work/tap.jsonl" ||
    { echo "FAIL: vmtide tap got no 8 samples:"; cat "$work/tap.jsonl"; exit 1; }
ratio=$(python3 -c '
import json, sys
tot = {"interval_ns": 0, "cpu_ns": 0, "steal_ns": 0}
def walk(o):
    if isinstance(o, dict):
        for k, v in o.items():
            if k in tot and isinstance(v, int): tot[k] += v
            else: walk(v)
for line in open(sys.argv[1]): walk(json.loads(line))
print(100.0 * (tot["cpu_ns"] + tot["steal_ns"]) / tot["interval_ns"] if tot["interval_ns"] else 0)
' "$work/tap.jsonl")
awk -v r="$ratio" 'BEGIN { exit !(r > 90 && r < 110) }' ||
    { echo "FAIL: over 8 samples a spinner's CPU + steal should be 100 % +- 10, got $ratio %:"; cat "$work/tap.jsonl"; exit 1; }

tmux send-keys -t "$session" c
for _ in $(seq 1 50); do
    screen=$(tmux capture-pane -p -t "$session" || true)
    grep -q "sorted by cpu" <<<"$screen" && break
    sleep 0.1
done
grep -q "sorted by cpu" <<<"$screen" || { echo "FAIL: 'c' did not sort by CPU:"; echo "$screen"; exit 1; }

tmux send-keys -t "$session" q
for _ in $(seq 1 50); do
    tmux has-session -t "$session" 2>/dev/null || break
    sleep 0.1
done
if tmux has-session -t "$session" 2>/dev/null; then echo "FAIL: q did not quit"; exit 1; fi
echo "ok: $row; CPU + steal over 8 samples $ratio %"
