#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Rewrites the measured tables in docs/benchmarks.md from benchmark JSON lines.

Each benchmark owns the text between "<!-- bench:NAME -->" and
"<!-- /bench:NAME -->"; everything else in the file is prose and is kept.
usage: bench_tables.py RESULTS.jsonl docs/benchmarks.md
"""
import datetime
import json
import re
import sys


def table(result):
    env = result.get("env", {})
    when = datetime.date.today().isoformat()
    lines = [f"Measured {when} on kernel {env.get('kernel')}, {env.get('cpus')} CPUs, git {env.get('git')}.", "",
             "| metric | value |", "|---|---|"]
    for key, value in sorted(result.get("metrics", {}).items()):
        shown = "n/a" if value is None else (f"{value:.4g}" if isinstance(value, float) else str(value))
        lines.append(f"| `{key}` | {shown} |")
    for key, note in sorted(result.get("notes", {}).items()):
        lines.append(f"| `{key}` | not measured: {note} |")
    return "\n".join(lines)


def main():
    results = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
    path = sys.argv[2]
    doc = open(path).read()
    for r in results:
        name = r["bench"]
        block = f"<!-- bench:{name} -->\n{table(r)}\n<!-- /bench:{name} -->"
        pattern = re.compile(rf"<!-- bench:{re.escape(name)} -->.*?<!-- /bench:{re.escape(name)} -->", re.S)
        if pattern.search(doc):
            doc = pattern.sub(lambda _: block, doc)
        else:
            doc += f"\n## {name}\n\n{block}\n"
    open(path, "w").write(doc)


if __name__ == "__main__":
    main()
