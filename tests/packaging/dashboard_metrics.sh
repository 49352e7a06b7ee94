#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The Grafana dashboard and the Prometheus alert rules in packaging/ use only
# metrics the agent really exports: the dashboard must parse as JSON, the
# rules as YAML, and every vmtide_* name in them must appear on a running
# agent's /metrics (procfs discovery, tracking one process) or, for series
# that exist only once a VM dirties memory, does I/O or has a cgroup, be
# registered in userspace/metrics/exporter.cc.
#   usage: dashboard_metrics.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1
src=$2
py=/usr/bin/python3
dash=$src/packaging/grafana/vmtide.json
rules=$src/packaging/prometheus/vmtide-alerts.yml
. "$src/tests/integration/lib.sh"

"$py" -m json.tool "$dash" >/dev/null || { echo "FAIL: $dash is not valid JSON"; exit 1; }
if "$py" -c 'import yaml' 2>/dev/null; then
    "$py" - "$rules" <<'PY' || { echo "FAIL: $rules is not valid alert rules"; exit 1; }
import sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
rules = [r for g in doc["groups"] for r in g["rules"]]
assert rules and all("alert" in r and "expr" in r for r in rules), "every rule needs alert and expr"
print(f"{len(rules)} alert rules parse")
PY
else
    echo "note: python3-yaml missing, alert rules not parsed (names still checked)"
fi

# A real agent, tracking a sleeping process as its one VM.
sleep 600 &
sleeper=$!
pids+=("$sleeper")
"$build/bin/vmtide-agent" --endpoint 'tcp://127.0.0.1:*' --metrics 127.0.0.1:0 --discovery procfs \
    --pid "$sleeper" --no-bpf --interval 0.2 2>"$work/agent.log" &
pids+=($!)
port=""
for _ in $(seq 1 100); do
    port=$(grep -oE 'metrics on http://127\.0\.0\.1:[0-9]+' "$work/agent.log" | grep -oE '[0-9]+$' || true)
    [[ -n $port ]] && break
    sleep 0.1
done
[[ -n $port ]] || { echo "FAIL: the agent did not serve /metrics"; cat "$work/agent.log"; exit 1; }
# Poll until the first tick's series are there (bounded).
for _ in $(seq 1 100); do
    "$py" -c "import urllib.request,sys; sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:$port/metrics', timeout=5).read().decode())" \
        >"$work/metrics" 2>/dev/null || true
    grep -q "^vmtide_vm_cpu_seconds_total{.*vm_id=\"proc:$sleeper\"" "$work/metrics" && break
    sleep 0.1
done
grep -q "^vmtide_vm_cpu_seconds_total{.*vm_id=\"proc:$sleeper\"" "$work/metrics" ||
    { echo "FAIL: no series for the tracked process on /metrics"; cat "$work/agent.log"; exit 1; }

sed -n 's/^\(vmtide_[a-z_]*\).*/\1/p' "$work/metrics" | sort -u >"$work/scraped"
grep -oE 'Name\("vmtide_[a-z_]+"\)' "$src/userspace/metrics/exporter.cc" | sed 's/Name("\(.*\)")/\1/' | sort -u >"$work/registered"
# The grep of the source is only trusted if it finds what the agent serves.
missing=$(comm -23 "$work/scraped" "$work/registered")
[[ -z $missing ]] || { echo "FAIL: served but not found in exporter.cc: $missing"; exit 1; }
echo "$(wc -l <"$work/scraped") metric names scraped, $(wc -l <"$work/registered") registered"

grep -ohE '\bvmtide_[a-z_]+' "$dash" "$rules" | sort -u >"$work/used"
status=0
while read -r name; do
    if grep -qx "$name" "$work/scraped"; then
        :
    elif grep -qx "$name" "$work/registered"; then
        echo "  $name: registered, no series without a workload (not scraped)"
    else
        echo "FAIL: $name is used by the dashboard or the alert rules but the agent does not export it"
        status=1
    fi
done <"$work/used"
[[ $(wc -l <"$work/used") -ge 15 ]] || { echo "FAIL: only $(wc -l <"$work/used") metric names found in the dashboard and rules"; exit 1; }
# Non-vmtide series: only Prometheus's own `up`.
others=$("$py" - "$dash" "$rules" <<'PY'
import json, re, sys
exprs = [t["expr"] for p in json.load(open(sys.argv[1]))["panels"] for t in p.get("targets", [])]
exprs += re.findall(r"^\s*expr:\s*(.*)$", open(sys.argv[2]).read(), re.M)
words = set()
for e in exprs:
    e = re.sub(r'"[^"]*"', "", e)       # label values
    e = re.sub(r"\{[^}]*\}", "", e)     # selectors
    e = re.sub(r"\[[^\]]*\]", "", e)    # ranges
    for w in re.findall(r"(?<![0-9.])[a-zA-Z_][a-zA-Z0-9_]*", e):
        words.add(w)
funcs = {"rate", "sum", "by", "count", "or", "vector", "delta", "max", "deriv", "topk", "and"}
print(" ".join(sorted(w for w in words if not w.startswith("vmtide_") and w not in funcs and w != "up")))
PY
)
[[ -z $others ]] || { echo "FAIL: unknown names in expressions: $others"; status=1; }
[[ $status -eq 0 ]] && echo "ok: $(wc -l <"$work/used") metric names, all exported"
exit "$status"
