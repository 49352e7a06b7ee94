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
# however loaded the machine is.
busy=$(awk '{print $3 + $4}' <<<"$row")
awk -v b="$busy" 'BEGIN { exit !(b > 80) }' || { echo "FAIL: a spinner should show CPU + steal near 100%: $row"; exit 1; }

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
echo "ok: $row"
