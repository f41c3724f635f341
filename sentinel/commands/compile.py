"""`sentinel compile POLICY... [--json]`: show the map entries, with counts."""

from __future__ import annotations

import argparse
import json
from typing import Any

from sentinel.compiler import ir
from sentinel.compiler.build import build_ruleset
from sentinel.policy.loader import load_policies


def _decisions(rs: ir.RuleSet, by_policy: tuple[tuple[int, ir.Decision], ...]) -> list[Any]:
    out = []
    for index, decision in by_policy:
        policy = rs.policies[index]
        rule = policy.rules[decision.rule].id if decision.rule != ir.NO_RULE else None
        out.append({"policy": policy.name, "action": decision.action.name.lower(), "rule": rule})
    return out


def ruleset_to_json(rs: ir.RuleSet) -> dict[str, Any]:
    """A deterministic, JSON-ready view of a RuleSet."""
    return {
        "counts": counts(rs),
        "policies": [
            {
                "index": p.index,
                "name": p.name,
                "mode": p.mode.name.lower(),
                "selector": {
                    "binaries": list(p.selector.binaries),
                    "notBinaries": list(p.selector.not_binaries),
                    "uids": [[r.first, r.last] for r in p.selector.uids],
                    "cgroups": list(p.selector.cgroups),
                },
                "defaults": {
                    "exec": p.default_file[ir.Slot.EXEC].name.lower(),
                    "open": p.default_file[ir.Slot.READ].name.lower(),
                    "connect": p.default_connect.name.lower(),
                },
                "rules": [
                    {
                        "id": r.id,
                        "operation": r.operation.name.lower(),
                        "action": r.action.name.lower(),
                        "severity": r.severity.name.lower(),
                    }
                    for r in p.rules
                ],
            }
            for p in rs.policies
        ],
        "files": [
            {
                "path": e.path,
                "kind": e.kind.name.lower(),
                "slots": {s.slot.name.lower(): _decisions(rs, s.by_policy) for s in e.slots},
            }
            for e in rs.files
        ],
        "port_classes": [[c.first, c.last] for c in rs.port_classes],
        "nets": [
            {
                "protocol": n.protocol.name.lower(),
                "port_class": n.port_class,
                "network": str(n.network),
                "decisions": _decisions(rs, n.by_policy),
            }
            for n in rs.nets
        ],
    }


def counts(rs: ir.RuleSet) -> dict[str, int]:
    return {
        "policies": len(rs.policies),
        "rules": sum(len(p.rules) for p in rs.policies),
        "exact_files": sum(1 for e in rs.files if e.kind == ir.PathKind.EXACT),
        "subtrees": sum(1 for e in rs.files if e.kind == ir.PathKind.SUBTREE),
        "port_classes": len(rs.port_classes),
        "net4": sum(1 for n in rs.nets if n.network.version == 4),
        "net6": sum(1 for n in rs.nets if n.network.version == 6),
    }


def _cell(rs: ir.RuleSet, by_policy: tuple[tuple[int, ir.Decision], ...]) -> str:
    return ", ".join(
        f"{d['policy']}:{d['action']}({d['rule'] or 'default'})" for d in _decisions(rs, by_policy)
    )


def format_table(rs: ir.RuleSet) -> str:
    lines = ["policies:"]
    for p in rs.policies:
        lines.append(f"  [{p.index}] {p.name} mode={p.mode.name.lower()} rules={len(p.rules)}")
    lines.append("files:")
    for e in rs.files:
        for s in e.slots:
            kind = "exact  " if e.kind == ir.PathKind.EXACT else "subtree"
            lines.append(f"  {kind} {s.slot.name.lower():5} {e.path}  {_cell(rs, s.by_policy)}")
    lines.append("port classes:")
    for c in rs.port_classes:
        lines.append(f"  [{c.index}] {c.first}-{c.last}")
    lines.append("connect:")
    for n in rs.nets:
        lines.append(
            f"  {n.protocol.name.lower()} class={n.port_class} {n.network}  {_cell(rs, n.by_policy)}"
        )
    lines.append("counts: " + " ".join(f"{k}={v}" for k, v in counts(rs).items()))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    rs = build_ruleset(load_policies(args.policies))
    if args.json:
        print(json.dumps(ruleset_to_json(rs), indent=2, sort_keys=True))
    else:
        print(format_table(rs))
    return 0
