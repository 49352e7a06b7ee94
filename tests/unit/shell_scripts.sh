#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The project's bash scripts parse (bash -n), and scripts/demo, which needs
# root, two lab hosts and minutes of TCG to run for real, passes shellcheck.
# Exit 77 (skipped) after the parse check when shellcheck is not installed.
#   usage: shell_scripts.sh SOURCE_DIR
set -euo pipefail
src=$1
n=0
for f in "$src"/scripts/* "$src"/lab/* "$src"/tests/integration/*.sh "$src"/tests/unit/*.sh; do
    [[ -f $f ]] && head -n 1 "$f" | grep -q '^#!.*bash' || continue
    bash -n "$f" || { echo "FAIL: $f does not parse"; exit 1; }
    n=$((n + 1))
done
((n >= 5)) || { echo "FAIL: only $n bash scripts found under $src"; exit 1; }
echo "bash -n: $n scripts parse"
command -v shellcheck >/dev/null || { echo "SKIPPED: shellcheck not installed (scripts/deps installs it)"; exit 77; }
shellcheck -x "$src/scripts/demo"
echo "shellcheck: scripts/demo clean"
