"""Turn a vm_bench.py results file into the markdown table, the goals with
pass/miss, and the plot of open() latency against rule count.

Every latency figure is the median over runs (rounds x repetitions) of each
run's percentile, with the min-max of those runs as its spread. A ratio is
taken per A/B pair (the sentinel run over the no-agent run next to it), and
the median and min-max of those paired ratios are shown, so drift of the
emulated machine between pairs cancels out.

    python benchmarks/report.py RESULTS.json --out DIR [--readme README.md]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from pathlib import Path
from typing import Any

OPEN_SERIES = ["open-0", "open-100", "open-1k", "open-10k", "open-100k"]
LABELS = {"open": "open()+close()", "exec": "fork+exec+wait", "connect4": "TCP connect 127.0.0.1",
          "connect6": "TCP connect ::1"}


def runs(rnds: list[dict[str, Any]], side: str, workload: str, key: str) -> list[float]:
    return [float(r[key]) for rnd in rnds for r in rnd[side].get(workload, [])]


def paired(rnds: list[dict[str, Any]], workload: str, key: str) -> list[float]:
    out = []
    for rnd in rnds:
        for a, b in zip(rnd["none"].get(workload, []), rnd["sentinel"].get(workload, [])):
            out.append(float(b[key]) / float(a[key]))
    return out


def med(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def us(x: float) -> str:
    return f"{x / 1000:.1f}"


def spread(xs: list[float], fmt: Any = us) -> str:
    return f"{fmt(min(xs))}–{fmt(max(xs))}" if xs else "–"


def latency_rows(doc: dict[str, Any]) -> list[str]:
    rows = ["| configuration | operation | pct | no agent µs (range) | sentinel µs (range) | ratio (range) | runs |",
            "|---|---|---|---|---|---|---|"]
    for name, c in doc["configs"].items():
        rnds = c["rounds"]
        if not rnds:
            continue
        for w in rnds[0]["sentinel"]:
            for key in ("p50", "p99"):
                a, b, r = runs(rnds, "none", w, key), runs(rnds, "sentinel", w, key), paired(rnds, w, key)
                rows.append(f"| `{name}` | {LABELS.get(w, w)} | {key} | {us(med(a))} ({spread(a)}) | "
                            f"{us(med(b))} ({spread(b)}) | **{med(r):.3f}** ({spread(r, lambda x: f'{x:.3f}')}) | {len(r)} |")
    return rows


def daemon_rows(doc: dict[str, Any]) -> list[str]:
    rows = ["| configuration | rules | load s (range) | reload s (range) | daemon RSS MiB | map memlock MiB | "
            "kernel memory of the daemon's cgroup MiB | loads |",
            "|---|---|---|---|---|---|---|---|"]
    mib = 1024 * 1024
    for name, c in doc["configs"].items():
        ds = [r["daemon"] for r in c["rounds"] if "daemon" in r]
        if not ds:
            continue
        load = [d["load_s"] for d in ds]
        rel = [d["reload_s"] for d in ds if "reload_s" in d]
        f1 = lambda x: f"{x:.1f}"  # noqa: E731
        rows.append(f"| `{name}` | {c['rules']:,} | {med(load):.1f} ({spread(load, f1)}) | "
                    + (f"{med(rel):.1f} ({spread(rel, f1)})" if rel else "–")
                    + f" | {med([d['vmrss'] for d in ds]) / mib:.0f} | {med([d['map_memlock'] for d in ds]) / mib:.0f} | "
                    f"{med([d['memcg_kernel'] for d in ds]) / mib:.1f} | {len(ds)} |")
    return rows


# The program that judges each workload's operation (bpftool shows 15 characters of a name).
HOOK_SUFFIX = {"open": "file_open", "exec": "bprm_check", "connect4": "connect", "connect6": "connect"}


def bpf_rows(doc: dict[str, Any]) -> list[str]:
    """In-kernel time of sentinel's programs per run, from the kernel's own
    BPF statistics (one extra untimed run per round)."""
    rows = ["| configuration | operation | judging program | ns per run (range) | all sentinel programs, ns per op | runs |",
            "|---|---|---|---|---|---|"]
    for name, c in doc["configs"].items():
        rnds = [r for r in c["rounds"] if "bpf" in r]
        if not rnds:
            continue
        for w in rnds[0]["bpf"]:
            per_run, per_op, hook = [], [], "–"
            for r in rnds:
                progs = r["bpf"].get(w, {})
                hook_name = HOOK_SUFFIX.get(w, "?")
                judged = {k: v for k, v in progs.items() if "_" in k and hook_name.startswith(k.split("_", 1)[1])}
                if not judged:
                    continue
                hook, v = max(judged.items(), key=lambda kv: kv[1]["runs"])
                per_run.append(v["ns"] / v["runs"])
                per_op.append(sum(p["ns"] for p in progs.values()) / v["runs"])
            if per_run:
                f0 = lambda x: f"{x:.0f}"  # noqa: E731
                rows.append(f"| `{name}` | {LABELS.get(w, w)} | `{hook}` | {med(per_run):.0f} ({spread(per_run, f0)}) | "
                            f"{med(per_op):.0f} | {len(per_run)} |")
    return rows


def ratio_of(doc: dict[str, Any], name: str, w: str, key: str = "p50") -> list[float]:
    c = doc["configs"].get(name)
    return paired(c["rounds"], w, key) if c and c["rounds"] else []


def goals(doc: dict[str, Any]) -> list[tuple[str, str, float, float, str]]:
    """(goal, measured as, value, limit, spread) for each goal."""
    out = []
    r10k = ratio_of(doc, "open-10k", "open")
    out.append(("open() p50, 10,000 rules ≤ 1.10× no agent", "sentinel/no agent", med(r10k), 1.10, spread(r10k, lambda x: f"{x:.3f}")))
    r100, r100k = ratio_of(doc, "open-100", "open"), ratio_of(doc, "open-100k", "open")
    norm = med(r100k) / med(r100) if r100 and r100k else float("nan")
    rng = (f"{min(r100k) / max(r100):.3f}–{max(r100k) / min(r100):.3f}" if r100 and r100k else "–")
    out.append(("open() p50, 100,000 rules ≤ 1.02× 100 rules", "each over its own no-agent baseline", norm, 1.02, rng))
    for name, w, label in (("exec-10k", "exec", "fork+exec p50, 10,000 exec rules ≤ 1.05× no agent"),
                           ("connect-100k", "connect4", "connect p50 (IPv4), 100,000 CIDRs ≤ 1.05× no agent"),
                           ("connect-100k", "connect6", "connect p50 (IPv6), 100,000 CIDRs ≤ 1.05× no agent")):
        r = ratio_of(doc, name, w)
        out.append((label, "sentinel/no agent", med(r), 1.05, spread(r, lambda x: f"{x:.3f}")))
    return out


def goal_rows(doc: dict[str, Any]) -> list[str]:
    rows = ["| goal | measured as | value (range) | result |", "|---|---|---|---|"]
    for goal, how, value, limit, rng in goals(doc):
        verdict = "n/a" if value != value else ("**pass**" if value <= limit else "**miss**")
        rows.append(f"| {goal} | {how} | {value:.3f} ({rng}) | {verdict} |")
    return rows


def plot(doc: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    series = [("", "sentinel", "o-")]
    if any(k.endswith("@before") for k in doc["configs"]):
        series.append(("@before", "sentinel before the hot-path change", "s--"))
    xs_all: list[int] = []
    for suffix, label, style in series:
        xs, ys, lo, hi, base = [], [], [], [], []
        for name in OPEN_SERIES:
            c = doc["configs"].get(name + suffix)
            if not c or not c["rounds"]:
                continue
            b = runs(c["rounds"], "sentinel", "open", "p50")
            xs.append(max(c["rules"], 10))
            ys.append(med(b) / 1000)
            lo.append(med(b) / 1000 - min(b) / 1000)
            hi.append(max(b) / 1000 - med(b) / 1000)
            base.append(med(runs(c["rounds"], "none", "open", "p50")) / 1000)
        if not xs:
            continue
        ax.errorbar(xs, ys, yerr=[lo, hi], fmt=style, capsize=3, label=f"{label} (p50, min–max)")
        if not suffix:
            ax.plot(xs, base, "k:", marker="x", label="no agent, run next to each (p50)")
            xs_all = xs
    ax.set_xscale("log")
    ax.set_xticks(xs_all, ["0" if x == 10 else f"{x:,}" for x in xs_all])
    ax.set_xlabel("open rules loaded (none matching the workload)")
    ax.set_ylabel("open()+close() latency, µs")
    ax.set_title("open() latency vs rule count (Debian 6.1 VM, software emulation)")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def markdown(doc: dict[str, Any]) -> str:
    it = doc["iterations"]
    lines = [
        f"Kernel {doc['kernel']}, {doc['cpus']} vCPUs under software emulation (TCG), files on tmpfs; "
        f"{doc['rounds']} rounds ({doc.get('heavy_rounds', 1)} for the 100,000-entry sets) × {doc.get('reps', 1)} "
        f"latency runs per side; each run {it['open']:,} opens / {it['exec']:,} execs / {it['connect']:,} connects "
        f"after 10% warm-up. No agent and sentinel alternate A/B, B/A. Wall time {doc['wall_s'] / 60:.0f} min.",
        "",
        "**Goals**",
        "",
        *goal_rows(doc),
        "",
        "**Latency** (median over runs of each run's percentile; range = min–max over runs; ratio = median of "
        "per-pair sentinel/no-agent ratios)",
        "",
        *latency_rows(doc),
        "",
        "**In-kernel cost** (the kernel's BPF run-time statistics, `kernel.bpf_stats_enabled`, during one extra "
        "untimed run per round: mean time per run of the program that judges the operation, and of all "
        "sentinel's programs together per judged operation; under emulation, so compare rows, not hosts)",
        "",
        *bpf_rows(doc),
        "",
        "**Load, reload, memory** (load = `sentinel run` start to the self-check passing, interpreter start "
        "included; reload = SIGHUP to the self-check passing; memlock = what the maps declare by capacity; "
        "cgroup kernel memory = what the maps and ring buffer really hold; the `open-0` row is the baseline)",
        "",
        *daemon_rows(doc),
        "",
        "Configurations:",
        "",
        *[f"- `{name}`: {c['config']}" for name, c in doc["configs"].items()],
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("results")
    ap.add_argument("--out", required=True)
    ap.add_argument("--readme", default="")
    args = ap.parse_args()
    doc = json.loads(Path(args.results).read_text())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(doc, indent=1) + "\n")
    md = markdown(doc)
    (out / "results.md").write_text(md)
    plot(doc, out / "open_latency.png")
    print(md)
    for goal, _how, value, limit, rng in goals(doc):
        verdict = "n/a" if value != value else ("pass" if value <= limit else "miss")
        print(f"goal: {goal}: {value:.3f} ({rng}) {verdict}")
    if args.readme:
        readme = Path(args.readme)
        text = readme.read_text()
        block = f"<!-- bench:start -->\n{md}\n![open() latency vs rule count](benchmarks/results/open_latency.png)\n<!-- bench:end -->"
        if "<!-- bench:start -->" in text:
            text = re.sub(r"<!-- bench:start -->.*<!-- bench:end -->", lambda _m: block, text, flags=re.S)
            readme.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
