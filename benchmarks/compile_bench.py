"""Compile-time benchmark: 1,000 / 10,000 / 100,000 rules.

Prints, per size, the time to validate (pydantic) and to build the RuleSet,
peak traced memory of the build, and each per rule, so growth is visible at a
glance: per-rule figures that stay flat mean linear growth.

Run: python benchmarks/compile_bench.py [SIZES...]
Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import gc
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sentinel.compiler.build import build_ruleset  # noqa: E402
from sentinel.policy.model import Policy  # noqa: E402

RULES_PER_POLICY = 10_000
PORTS = [22, 80, 443, 3306, 5432, 6379, 8080, 9090]


def make_rule(i: int) -> dict[str, Any]:
    """A realistic mix: 50% exact paths, 20% prefixes, 30% connect rules that
    name one host and one of a few service ports."""
    kind = i % 10
    action = ("deny", "audit", "allow")[i % 3]
    if kind < 5:
        match: dict[str, Any] = {"paths": [f"/srv/app{i % 97}/data/file{i}"]}
        operation = "open" if kind % 2 else "exec"
    elif kind < 7:
        match = {"prefixes": [f"/srv/app{i % 97}/tree{i}/"]}
        operation = "open"
    else:
        host = f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}" if i % 4 else f"2001:db8::{i >> 16:x}:{i & 0xFFFF:x}"
        match = {"addresses": [host], "ports": [PORTS[i % len(PORTS)]], "protocols": ["tcp"]}
        operation = "connect"
    return {"id": f"r{i}", "operation": operation, "action": action, "match": match}


def make_docs(rules: int) -> list[dict[str, Any]]:
    docs = []
    for start in range(0, rules, RULES_PER_POLICY):
        count = min(RULES_PER_POLICY, rules - start)
        docs.append({
            "apiVersion": "sentinel/v1",
            "kind": "Policy",
            "metadata": {"name": f"bench-{start // RULES_PER_POLICY:03d}"},
            "spec": {"rules": [make_rule(start + j) for j in range(count)]},
        })
    return docs


def measure(rules: int) -> dict[str, float]:
    docs = make_docs(rules)
    gc.collect()
    t0 = time.perf_counter()
    policies = [Policy.model_validate(d) for d in docs]
    t1 = time.perf_counter()
    rs = build_ruleset(policies)
    t2 = time.perf_counter()
    entries = len(rs.files) + len(rs.nets)
    del rs
    gc.collect()
    tracemalloc.start()
    build_ruleset(policies)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"validate": t1 - t0, "build": t2 - t1, "peak": peak, "entries": entries}


def main(sizes: list[int]) -> None:
    print(f"{'rules':>8} {'entries':>8} {'validate s':>11} {'build s':>8} {'peak MiB':>9} "
          f"{'us/rule':>8} {'KiB/rule':>9}")
    for rules in sizes:
        m = measure(rules)
        print(
            f"{rules:>8} {int(m['entries']):>8} {m['validate']:>11.3f} {m['build']:>8.3f} "
            f"{m['peak'] / 2**20:>9.1f} {1e6 * m['build'] / rules:>8.1f} "
            f"{m['peak'] / 1024 / rules:>9.2f}"
        )


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1_000, 10_000, 100_000])
