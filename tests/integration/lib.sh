# SPDX-License-Identifier: Apache-2.0
# Shared by the shell integration tests: start things, find the endpoint
# the agent bound, and clean up everything started, whatever happens.
work=$(mktemp -d /tmp/vmtide-it.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# start_spinner: a process that always wants the CPU; sets $spinner.
start_spinner() {
    sh -c 'while :; do :; done' &
    spinner=$!
    pids+=("$spinner")
}

# start_agent BUILD_DIR ARGS...: runs vmtide-agent on 127.0.0.1 with its log
# in $work/agent.log and sets $ep to the endpoint it bound (bounded wait).
start_agent() {
    local build=$1
    shift
    "$build/bin/vmtide-agent" --endpoint 'tcp://127.0.0.1:*' --metrics off "$@" 2>"$work/agent.log" &
    pids+=($!)
    ep=""
    for _ in $(seq 1 100); do
        ep=$(grep -oE 'publishing on tcp://127\.0\.0\.1:[0-9]+' "$work/agent.log" | head -n1 | sed 's/publishing on //' || true)
        [[ -n $ep ]] && return 0
        sleep 0.1
    done
    echo "FAIL: the agent did not start"
    cat "$work/agent.log"
    exit 1
}
