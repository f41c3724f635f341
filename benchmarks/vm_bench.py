"""The cost of enforcement, measured inside the VM (run by scripts/bench).

Every figure is taken on a tmpfs inside the guest, with runs of no agent
(nothing of sentinel's in the kernel) and of sentinel (the daemon running
`sentinel run --policy <generated policy>`) interleaved in one boot: for each
configuration and each round, the no-agent run and the sentinel run follow
each other directly (alternating which goes first), so slow drift of the
emulated machine hits both sides alike.

Latencies come from benchmarks/sn_lat.c (clock_gettime around each op), so
no interpreter is timed. Writes one JSON document (see results_doc()).

    python benchmarks/vm_bench.py --lat BIN --out FILE [--rounds N] [--only CFG,...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROOT = Path("/run/snb")  # a tmpfs mounted by this script
RULE_FILES = ROOT / "rules"  # the files and directories non-matching rules name
WORK = ROOT / "work"  # what the workload touches
TARGET = WORK / "target"
TRUE = WORK / "true"
# /bin/true as shipped (dynamically linked): its exec maps ld.so and libc
# PROT_EXEC, and ld.so maps libc again - what the mmap hooks see per start.
DYN_TRUE = WORK / "true-dyn"
CGROUP = Path("/sys/fs/cgroup")
RULES_PER_POLICY = 10_000
ENTRIES_PER_RULE = 100  # paths/prefixes per YAML rule (see write_file_policies)
FILES_PER_DIR = 1_000
PREFIX_EVERY = 10  # one rule in ten is a subtree (prefix) rule


@dataclass(frozen=True)
class Config:
    """One sentinel configuration and the workloads measured under it."""

    name: str
    rules: int  # rules that count for this configuration (see describe)
    workloads: tuple[str, ...]
    describe: str
    reload: bool = False  # also time a SIGHUP reload of the same policies
    heavy: bool = False  # measured in the first --heavy-rounds rounds only (loads take minutes)
    obj: str = ""  # another BPF object to run instead of the built one (before/after runs)
    prefixes: bool = True  # one rule in PREFIX_EVERY a subtree rule

    @property
    def kind(self) -> str:
        """The policy family: the name without an @variant suffix."""
        return self.name.split("@")[0]


CONFIGS = [
    Config("open-0", 0, ("open",), "no file rules (one connect rule: a policy needs one)", reload=True),
    Config("open-100", 100, ("open",), "100 open rules that do not match"),
    Config("open-1k", 1_000, ("open",), "1,000 open rules that do not match", reload=True),
    Config("open-10k", 10_000, ("open",), "10,000 open rules that do not match", reload=True),
    Config("open-10k-exact", 10_000, ("open",), "10,000 open rules that do not match, exact paths only "
           "(no subtree rule: no walk up the tree)", prefixes=False),
    Config("open-100k", 100_000, ("open",), "100,000 open rules that do not match", reload=True, heavy=True),
    Config("open-allow", 10_001, ("open",), "10,000 non-matching + a subtree deny on the workload's directory "
           "with an allow exception for the file"),
    Config("open-audit", 10_001, ("open",), "10,000 non-matching + an audit rule on the file (an alert per open)"),
    Config("exec-10k", 10_000, ("exec",), "10,000 exec rules that do not match"),
    Config("exec-dyn-10k", 10_000, ("exec-dyn", "open"), "10,000 exec rules that do not match; fork+exec of a "
           "dynamically linked /bin/true (its ld.so and libc are mapped executable: the mmap hooks judge them)"),
    Config("connect-100k", 100_000, ("connect4", "connect6"),
           "50,000 IPv4 + 50,000 IPv6 CIDRs (deny, any port) that do not match", heavy=True),
]
# Configurations re-run with --compare-object (the BPF object before a change).
COMPARED = ("open-10k", "exec-dyn-10k")


# -- generated policies ------------------------------------------------------
def file_rule_targets(n: int) -> Iterator[tuple[str, str]]:
    """(kind, path) for N non-matching file rules: exact files, and one in
    PREFIX_EVERY a directory subtree (as real policies mix them)."""
    for i in range(n):
        if i % PREFIX_EVERY == PREFIX_EVERY - 1:
            yield "prefixes", f"{RULE_FILES}/p{i // FILES_PER_DIR}/s{i}/"
        else:
            yield "paths", f"{RULE_FILES}/d{i // FILES_PER_DIR}/f{i}"


def policy_yaml(name: str, rules: list[str], description: str = "") -> str:
    head = ["apiVersion: sentinel/v1", "kind: Policy", "metadata:", f"  name: {name}"]
    if description:
        head.append(f"  description: {json.dumps(description)}")
    return "\n".join(head + ["spec:", "  rules:"] + rules) + "\n"


def rule_yaml(rid: str, op: str, action: str, key: str, values: list[str]) -> str:
    vals = ", ".join(json.dumps(v) for v in values)
    return f"    - id: {rid}\n      operation: {op}\n      action: {action}\n      match:\n        {key}: [{vals}]"


def write_file_policies(d: Path, n: int, op: str, prefixes: bool = True) -> None:
    """N rule entries (paths or prefixes), ENTRIES_PER_RULE to a YAML rule.

    Each path or prefix compiles to the kernel entries a one-path rule would
    (one sn_files entry, one rule reference per slot); grouping them keeps the
    YAML composer, which costs ~0.3 ms per rule on a real CPU and tens of
    times that under the VM's emulation, from dominating 100,000-rule loads.
    """
    targets = list(file_rule_targets(n)) if prefixes else [("paths", f"{RULE_FILES}/d{i // FILES_PER_DIR}/f{i}") for i in range(n)]
    rules = []
    for start in range(0, n, ENTRIES_PER_RULE):
        chunk = targets[start : start + ENTRIES_PER_RULE]
        for kind in ("paths", "prefixes"):
            vals = [path for k, path in chunk if k == kind]
            if vals:
                rules.append(rule_yaml(f"{kind[:3]}{start}", op, "deny", kind, vals))
    per_policy = RULES_PER_POLICY // ENTRIES_PER_RULE
    for i, start in enumerate(range(0, len(rules), per_policy)):
        (d / f"bench-{i:03d}.yaml").write_text(policy_yaml(f"bench-{i:03d}", rules[start : start + per_policy]))


def net_cidrs(n4: int, n6: int) -> list[str]:
    v4 = [f"10.{(i >> 8) & 255}.{i & 255}.0/24" if i < 65536 else f"11.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}/32"
          for i in range(n4)]
    v6 = [f"2001:db8:{i >> 16:x}:{i & 0xFFFF:x}::/64" for i in range(n6)]
    return v4 + v6


def write_policies(cfg: Config, d: Path) -> None:
    d.mkdir(parents=True, exist_ok=True)
    name = cfg.kind
    if name == "open-0":
        rule = rule_yaml("none", "connect", "deny", "addresses", ["192.0.2.1/32"])
        (d / "bench.yaml").write_text(policy_yaml("bench", [rule]))
    elif name.startswith("open-") and name[5:].rstrip("k").isdigit() or name == "open-10k-exact":
        write_file_policies(d, cfg.rules, "open", cfg.prefixes)
    elif name in ("open-allow", "open-audit"):
        write_file_policies(d, 10_000, "open")
        if name == "open-allow":
            rules = [rule_yaml("work-deny", "open", "deny", "prefixes", [f"{WORK}/"]),
                     rule_yaml("target-allow", "open", "allow", "paths", [str(TARGET), str(TRUE)])]
        else:
            rules = [rule_yaml("target-audit", "open", "audit", "paths", [str(TARGET)])]
        (d / "match.yaml").write_text(policy_yaml("match", rules))
    elif name in ("exec-10k", "exec-dyn-10k"):
        write_file_policies(d, cfg.rules, "exec")
    elif name == "connect-100k":
        cidrs = net_cidrs(cfg.rules // 2, cfg.rules // 2)
        per = 100  # addresses per rule: 1,000 rules
        rules = [rule_yaml(f"n{i // per}", "connect", "deny", "addresses", cidrs[i : i + per])
                 for i in range(0, len(cidrs), per)]
        (d / "bench.yaml").write_text(policy_yaml("bench", rules))
    else:
        raise ValueError(cfg.name)


def make_rule_files(lat: str, n: int) -> None:
    """Files and directories for the largest non-matching rule set: a rule
    on a path with nothing behind it would not reach the kernel at all."""
    RULE_FILES.mkdir(parents=True, exist_ok=True)
    subprocess.run([lat, "mkfiles", str(RULE_FILES), str(n), str(FILES_PER_DIR)], check=True)
    for kind, path in file_rule_targets(n):
        if kind == "prefixes":
            os.makedirs(path, exist_ok=True)


# -- measuring -------------------------------------------------------------------
def run_lat(lat: str, workload: str, n: dict[str, int]) -> dict[str, float]:
    if workload == "open":
        args = ["open", str(TARGET), str(n["open"])]
    elif workload == "exec":
        args = ["exec", str(TRUE), str(n["exec"])]
    elif workload == "exec-dyn":
        args = ["exec", str(DYN_TRUE), str(n["exec"])]
    else:
        args = [workload, str(n["connect"])]
    out = subprocess.run([lat, *args], capture_output=True, text=True, check=True).stdout
    return dict(json.loads(out))


def memcg_stat(cg: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        for line in (cg / "memory.stat").read_text().splitlines():
            k, v = line.split()
            out[k] = int(v)
    except OSError:
        pass
    return out


def map_memlock(pid: int) -> int:
    """Sum of memlock over the BPF maps the daemon holds open (fdinfo)."""
    total = 0
    seen: set[int] = set()
    for fd in os.listdir(f"/proc/{pid}/fdinfo"):
        try:
            info = Path(f"/proc/{pid}/fdinfo/{fd}").read_text()
        except OSError:
            continue
        fields = dict(line.split(":\t", 1) for line in info.splitlines() if ":\t" in line)
        if "map_id" in fields and "memlock" in fields:
            mid = int(fields["map_id"])
            if mid not in seen:
                seen.add(mid)
                total += int(fields["memlock"])
    return total


def proc_status(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            out[line.split(":")[0]] = int(line.split()[1]) * 1024
    return out


@dataclass
class Daemon:
    proc: subprocess.Popen[bytes]
    cgroup: Path
    log: Path
    load_s: float = 0.0
    facts: dict[str, Any] = field(default_factory=dict)


def unload() -> None:
    from sentinel.kernel import pins
    from sentinel.kernel.objects import unload_all

    unload_all()
    for path in (pins.STATUS_FILE, pins.CANARY_FILE, pins.PID_FILE):
        path.unlink(missing_ok=True)


def status_file() -> Path:
    from sentinel.kernel import pins

    return pins.STATUS_FILE


def wait_status(pred: Any, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"daemon exited {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            st = json.loads(status_file().read_text())
            mtime = status_file().stat().st_mtime_ns
        except (OSError, ValueError):
            st, mtime = None, 0
        if st is not None and pred(st, mtime):
            return dict(st)
        time.sleep(0.02)
    raise RuntimeError(f"daemon not ready after {timeout} s: {log.read_text()[-2000:]}")


def start_daemon(cfg: Config, policy_dir: Path, tag: str) -> Daemon:
    cg = CGROUP / f"snb-{tag}"
    cg.mkdir(exist_ok=True)
    log = ROOT / f"daemon-{tag}.log"
    events = ROOT / "events.jsonl"
    events.unlink(missing_ok=True)

    def into_cgroup() -> None:
        (cg / "cgroup.procs").write_text(str(os.getpid()))

    status_file().unlink(missing_ok=True)
    if cfg.obj:  # the guest's root is read-only: put the other object over the built one
        from sentinel.bpf import OBJECT_PATH

        subprocess.run(["mount", "--bind", cfg.obj, str(OBJECT_PATH)], check=True)
    t0 = time.monotonic()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sentinel.cli", "run", "--policy", str(policy_dir), "--output", f"jsonl:{events}"],
            stdout=subprocess.DEVNULL, stderr=log.open("wb"), preexec_fn=into_cgroup,
        )
        st = wait_status(lambda s, _m: s.get("pid") == proc.pid, proc, log, timeout=3600)
    finally:
        if cfg.obj:
            subprocess.run(["umount", str(OBJECT_PATH)], check=False)
    d = Daemon(proc, cg, log, load_s=time.monotonic() - t0)
    if st.get("unresolved_paths"):
        raise RuntimeError(f"{cfg.name}: {len(st['unresolved_paths'])} rule paths unresolved, e.g. {st['unresolved_paths'][:3]}")
    mem = memcg_stat(cg)
    d.facts = {
        "load_s": d.load_s,
        **{k.lower(): v for k, v in proc_status(proc.pid).items()},
        "map_memlock": map_memlock(proc.pid),
        "memcg_kernel": mem.get("kernel", mem.get("slab", 0) + mem.get("percpu", 0) + mem.get("kernel_stack", 0)),
        "memcg_percpu": mem.get("percpu", 0),
        "memcg_slab": mem.get("slab", 0),
        "memcg_anon": mem.get("anon", 0),
    }
    return d


def reload_daemon(d: Daemon) -> float:
    before = status_file().stat().st_mtime_ns
    t0 = time.monotonic()
    d.proc.send_signal(signal.SIGHUP)
    wait_status(lambda _s, m: m != before, d.proc, d.log, timeout=1800)
    return time.monotonic() - t0


def stop_daemon(d: Daemon) -> None:
    d.proc.terminate()
    try:
        d.proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        d.proc.kill()
        d.proc.wait()
    unload()
    try:
        d.cgroup.rmdir()
    except OSError:
        pass


BPF_STATS = Path("/proc/sys/kernel/bpf_stats_enabled")


def prog_stats() -> dict[str, tuple[int, int]]:
    """name -> (run_time_ns, run_cnt) of every loaded BPF program (bpftool)."""
    out = subprocess.run(["bpftool", "prog", "show", "--json"], capture_output=True, text=True, check=True).stdout
    stats: dict[str, tuple[int, int]] = {}
    for prog in json.loads(out or "[]"):
        name = prog.get("name", f"id{prog.get('id')}")
        ns, cnt = stats.get(name, (0, 0))
        stats[name] = (ns + int(prog.get("run_time_ns", 0)), cnt + int(prog.get("run_cnt", 0)))
    return stats


def profiled_run(lat: str, workload: str, n: dict[str, int]) -> dict[str, Any]:
    """One extra, untimed workload run with the kernel's BPF run-time
    statistics on: how long sentinel's programs ran per call, measured by
    the kernel itself. Kept out of the A/B runs: the statistics add two
    clock reads to every program run."""
    BPF_STATS.write_text("1")
    try:
        before = prog_stats()
        run_lat(lat, workload, n)
        after = prog_stats()
    finally:
        BPF_STATS.write_text("0")
    progs = {}
    for name, (ns, cnt) in after.items():
        d_ns, d_cnt = ns - before.get(name, (0, 0))[0], cnt - before.get(name, (0, 0))[1]
        if d_cnt > 0:
            progs[name] = {"ns": d_ns, "runs": d_cnt}
    return progs


def measure_round(cfg: Config, rnd: int, lat: str, n: dict[str, int], policy_dir: Path, reps: int) -> dict[str, Any]:
    """One A/B pair: no agent and sentinel, in alternating order by round;
    each side runs every workload REPS times (a list of runs per workload)."""
    out: dict[str, Any] = {"round": rnd, "none": {}, "sentinel": {}}

    def none_side() -> None:
        for w in cfg.workloads:
            out["none"][w] = [run_lat(lat, w, n) for _ in range(reps)]

    def sentinel_side() -> None:
        d = start_daemon(cfg, policy_dir, f"{cfg.name.replace('@', '-')}-{rnd}")
        try:
            for w in cfg.workloads:
                out["sentinel"][w] = [run_lat(lat, w, n) for _ in range(reps)]
            out["bpf"] = {w: profiled_run(lat, w, n) for w in cfg.workloads}
            out["daemon"] = d.facts
            if cfg.reload:
                out["daemon"]["reload_s"] = reload_daemon(d)
                out["daemon"]["vmhwm_after_reload"] = proc_status(d.proc.pid).get("VmHWM", 0)
        finally:
            stop_daemon(d)

    sides = [none_side, sentinel_side] if rnd % 2 == 0 else [sentinel_side, none_side]
    for side in sides:
        side()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lat", required=True, help="the compiled sn_lat")
    ap.add_argument("--out", required=True)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--heavy-rounds", type=int, default=1, help="rounds for the 100,000-entry configurations")
    ap.add_argument("--reps", type=int, default=3, help="latency runs per side per round")
    ap.add_argument("--compare-object", default="", help="a BPF object to measure too, as CONFIG@before")
    ap.add_argument("--only", default="", help="comma-separated configuration names")
    ap.add_argument("--open-n", type=int, default=20_000)
    ap.add_argument("--exec-n", type=int, default=300)
    ap.add_argument("--connect-n", type=int, default=3_000)
    ap.add_argument("--tag", default="", help="a label stored in the results (e.g. before/after)")
    args = ap.parse_args()
    all_configs: list[Config] = []
    for c in CONFIGS:  # a compared configuration runs right after its counterpart: the pair sees the same drift
        all_configs.append(c)
        if args.compare_object and c.name in COMPARED:
            all_configs.append(replace(c, name=f"{c.name}@before", obj=args.compare_object, reload=False,
                                       describe=f"{c.describe}; BPF object before the change ({args.tag or args.compare_object})"))
    # --only also sets the order: the first named are measured first.
    by_name = {c.name: c for c in all_configs}
    configs = [by_name[name] for name in args.only.split(",")] if args.only else all_configs
    n = {"open": args.open_n, "exec": args.exec_n, "connect": args.connect_n}
    started = time.monotonic()

    ROOT.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1G", "tmpfs", str(ROOT)], check=True)
    if not (CGROUP / "cgroup.procs").exists():
        subprocess.run(["mount", "-t", "cgroup2", "none", str(CGROUP)], check=False)
    (CGROUP / "cgroup.subtree_control").write_text("+memory")
    unload()
    lat = str(ROOT / "sn_lat")
    shutil.copy(args.lat, lat)
    WORK.mkdir()
    TARGET.write_text("benchmark target\n")
    shutil.copy("/bin/busybox", TRUE)
    shutil.copy("/bin/true", DYN_TRUE)
    largest = max([c.rules for c in configs if not c.name.startswith("connect")] + [0])
    t = time.monotonic()
    make_rule_files(lat, largest)
    print(f"bench: {largest} rule targets created in {time.monotonic() - t:.1f} s", file=sys.stderr, flush=True)
    dirs = {}
    for c in configs:
        dirs[c.name] = ROOT / "policies" / c.name
        write_policies(c, dirs[c.name])

    results: dict[str, Any] = {c.name: {"config": c.describe, "rules": c.rules, "rounds": []} for c in configs}
    for rnd in range(max(args.rounds, args.heavy_rounds)):
        for c in configs:
            if rnd >= (args.heavy_rounds if c.heavy else args.rounds):
                continue
            t = time.monotonic()
            r = measure_round(c, rnd, lat, n, dirs[c.name], args.reps)
            results[c.name]["rounds"].append(r)
            summary = " ".join(f"{w}: {r['none'][w][0]['p50']}/{r['sentinel'][w][0]['p50']} ns" for w in c.workloads)
            print(f"bench: round {rnd} {c.name}: p50 none/sentinel {summary}; "
                  f"load {r['daemon']['load_s']:.1f} s ({time.monotonic() - t:.0f} s)", file=sys.stderr, flush=True)
            Path(args.out).write_text(json.dumps(results_doc(args, results, started), indent=1) + "\n")
    Path(args.out).write_text(json.dumps(results_doc(args, results, started), indent=1) + "\n")
    subprocess.run(["umount", "-l", str(ROOT)], check=False)
    return 0


def results_doc(args: argparse.Namespace, results: dict[str, Any], started: float) -> dict[str, Any]:
    return {
        "tag": args.tag,
        "kernel": platform.release(),
        "cpus": os.cpu_count(),
        "rounds": args.rounds,
        "heavy_rounds": args.heavy_rounds,
        "reps": args.reps,
        "entries_per_rule": ENTRIES_PER_RULE,
        "iterations": {"open": args.open_n, "exec": args.exec_n, "connect": args.connect_n},
        "wall_s": time.monotonic() - started,
        "configs": results,
    }


if __name__ == "__main__":
    raise SystemExit(main())
