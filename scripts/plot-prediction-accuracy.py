#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Predicted vs actual migrations from `scripts/bench predictor-accuracy`.

Reads the bench's JSON line (its "results" hold one object per real
migration) and writes a scatter plot (PNG): total time and downtime,
predicted (from the measured curve, calibrated online), predicted from the
true curve (oracle) and the textbook baseline, each against what QEMU did.
With --table it also prints the markdown table of runs for
docs/prediction-accuracy.md.

usage: scripts/plot-prediction-accuracy.py BENCH.json OUT.png [--table]
(Debian's /usr/bin/python3, which has python3-matplotlib.)
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def load(path):
    line = [l for l in open(path) if l.strip().startswith("{")][-1]
    bench = json.loads(line)
    return bench, bench.get("results", [])


def table(runs):
    rows = ["| case | cap MiB/s | actual s / ms / MiB / passes | predicted | oracle | baseline | guest alive |",
            "|---|---|---|---|---|---|---|"]
    for r in runs:
        c, a = r["case"], r["actual"]
        ac = " + auto-converge" if c.get("auto_converge") and "auto-converge" not in c["label"] else ""
        writer = "CPU-bound" if c["rate"] == 0 else f"{c['rate']:.0f} p/s"

        def cell(p):
            if not p.get("converged", False):
                return "no convergence"
            if p["total_ms"] > c["timeout_s"] * 1000:
                return f"{p['total_ms'] / 1000:.0f} s: past the {c['timeout_s']:.0f} s timeout"
            return (f"{p['total_ms'] / 1000:.2f} / {p['downtime_ms']:.0f} / {p['bytes'] / 2**20:.0f} / "
                    f"{p['passes']}")

        if a.get("converged"):
            throttle = a.get("max_throttle_pct", 0)
            actual = (f"{a['total_ms'] / 1000:.2f} / {a['downtime_ms']:.0f} / {a['bytes'] / 2**20:.0f} / "
                      f"{a['passes']}" + (f" (throttle {throttle:.0f} %)" if throttle else ""))
        else:
            actual = f"no convergence in {a['total_ms'] / 1000:.0f} s"
        alive = "yes" if r.get("alive", {}).get("ok") else "NO"
        rows.append(f"| {c['label']}{ac} ({c['wss_mib']} MiB, {writer} {c['pattern']}) | "
                    f"{c['bw_mib_s']:.0f} | {actual} | {cell(r['predicted'])} | {cell(r['predicted_oracle'])} | "
                    f"{cell(r['baseline'])} | {alive} |")
    return "\n".join(rows)


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    bench, runs = load(sys.argv[1])
    conv = [r for r in runs if r["actual"].get("converged")]
    fig, (ax_t, ax_d) = plt.subplots(1, 2, figsize=(11, 5))
    series = [("predicted", "vmtide (measured curve)", "o", "tab:blue"),
              ("predicted_oracle", "vmtide (true curve)", "^", "tab:green"),
              ("baseline", "textbook baseline", "x", "tab:red")]
    for key, label, marker, color in series:
        pts = [(r["actual"]["total_ms"] / 1000, r[key]["total_ms"] / 1000) for r in conv if r[key].get("converged")]
        if pts:
            ax_t.scatter(*zip(*pts), marker=marker, color=color, label=label)
        pts = [(r["actual"]["downtime_ms"], r[key]["downtime_ms"]) for r in conv if r[key].get("converged")]
        if pts:
            ax_d.scatter(*zip(*pts), marker=marker, color=color, label=label)
    # Log axes: the runs span 2 s to a minute.
    lo_t = 1.0
    hi_t = max([r["actual"]["total_ms"] / 1000 for r in conv] + [10]) * 1.5
    xs = [lo_t * (hi_t / lo_t) ** (k / 50) for k in range(51)]
    ax_t.plot(xs, xs, color="gray", lw=0.8)
    ax_t.fill_between(xs, [x * 0.9 for x in xs], [x * 1.1 for x in xs], color="gray", alpha=0.2, label="±10 %")
    ax_t.set_xscale("log")
    ax_t.set_yscale("log")
    ax_t.set_xlim(lo_t, hi_t)
    ax_t.set_ylim(lo_t, hi_t)
    ax_t.set_xlabel("actual total time (s)")
    ax_t.set_ylabel("predicted total time (s)")
    ax_t.set_title("Total time")
    ax_t.legend(fontsize=8)
    hi_d = 320
    ax_d.plot([0, hi_d], [0, hi_d], color="gray", lw=0.8)
    ax_d.fill_between([0, hi_d], [-25, hi_d - 25], [25, hi_d + 25], color="gray", alpha=0.2, label="±25 ms")
    ax_d.set_xlim(0, hi_d)
    ax_d.set_ylim(0, hi_d)
    ax_d.set_xlabel("actual downtime (ms)")
    ax_d.set_ylabel("predicted downtime (ms)")
    limits = sorted({int(r["case"]["downtime_ms"]) for r in runs}, reverse=True)
    ax_d.set_title("Downtime (limit " + " or ".join(f"{v} ms" for v in limits) + ")")
    ax_d.legend(fontsize=8)
    m = bench.get("metrics", {})
    missed = sum(1 for r in conv if not r["predicted"].get("converged"))
    title = (f"{len(runs)} real QMP migrations, QEMU 10 under TCG: total-time p90 error "
             f"{m.get('total_time_p90_err_pct', float('nan')):.1f} % (baseline "
             f"{m.get('baseline_total_time_p90_err_pct', float('nan')):.1f} %)")
    if "total_time_p90_err_pct_excluding_auto_converge" in m:
        title += (f"; without auto-converge {m['total_time_p90_err_pct_excluding_auto_converge']:.1f} % "
                  f"(baseline {m['baseline_total_time_p90_err_pct_excluding_auto_converge']:.1f} %)")
    if missed:
        title += f"\n{missed} converged run(s) predicted not to converge are off the time plot"
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=110)
    if "--table" in sys.argv[3:]:
        print(table(runs))


if __name__ == "__main__":
    main()
