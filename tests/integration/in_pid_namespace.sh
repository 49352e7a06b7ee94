#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Runs a test in a PID namespace with its own /proc, so an agent it starts
# with procfs discovery sees only the QEMU processes the test started, not
# those of anyone else on the machine. Without root or unshare(1), runs it
# as it is (the test itself says what it skips).
#   usage: in_pid_namespace.sh TEST [ARGS...]
if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null 2>&1 &&
    unshare --pid --fork --mount-proc --kill-child true 2>/dev/null; then
    exec unshare --pid --fork --mount-proc --kill-child "$@"
fi
exec "$@"
