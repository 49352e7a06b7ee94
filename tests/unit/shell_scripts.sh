#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The project's bash scripts parse (bash -n) and pass shellcheck (all its
# severities); scripts/demo, which needs root, two lab hosts and minutes of
# TCG to run for real, is checked here beside the rest.
# Exit 77 (skipped) after the parse check when shellcheck is not installed.
#   usage: shell_scripts.sh SOURCE_DIR
set -euo pipefail
src=$1
n=0
scripts=()
for f in "$src"/scripts/* "$src"/lab/* "$src"/tests/*/*.sh; do
    if [[ ! -f $f ]] || ! head -n 1 "$f" | grep -q '^#!.*bash'; then continue; fi
    bash -n "$f" || { echo "FAIL: $f does not parse"; exit 1; }
    scripts+=("$f")
    n=$((n + 1))
done
((n >= 5)) || { echo "FAIL: only $n bash scripts found under $src"; exit 1; }
echo "bash -n: $n scripts parse"
command -v shellcheck >/dev/null || { echo "SKIPPED: shellcheck not installed (scripts/deps installs it)"; exit 77; }
# From the source root: scripts source "$root/..." or "$src/...", and the
# checker resolves those against its working directory (CTest runs this in
# the build tree).
(cd "$src" && shellcheck -x -P SCRIPTDIR "${scripts[@]}")
echo "shellcheck: ${#scripts[@]} scripts clean"
