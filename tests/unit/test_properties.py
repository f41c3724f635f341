"""Property tests: the compiled RuleSet + evaluator agree with a direct,
independent reading of the policy semantics on the raw YAML data."""

from __future__ import annotations

import ipaddress
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from sentinel.compiler.build import build_ruleset
from sentinel.compiler.evaluate import Process, evaluate_connect, evaluate_exec, evaluate_open
from sentinel.policy.model import Policy
from tests import strategies as s

STRICT = {"allow": 1, "audit": 2, "deny": 3}
MAX_EXAMPLES = 300

# ---- the naive oracle: reads raw policy dicts, knows nothing of the compiler ----


def applies(doc: dict[str, Any], proc: dict[str, Any]) -> bool:
    sel = doc["spec"]["selector"]
    if "binaries" in sel and proc["binary"] not in sel["binaries"]:
        return False
    if "notBinaries" in sel and proc["binary"] in sel["notBinaries"]:
        return False
    if "uids" in sel:
        ranges = [(u, u) if isinstance(u, int) else tuple(map(int, u.split("-"))) for u in sel["uids"]]
        if not any(a <= proc["uid"] <= b for a, b in ranges):
            return False
    if "cgroups" in sel:
        cg = proc["cgroup"]
        if cg is None or not any(cg == c or cg.startswith(c + "/") for c in sel["cgroups"]):
            return False
    return True


def file_decision(doc: dict[str, Any], op: str, slot: str, path: str) -> tuple[str, str | None]:
    best: tuple[tuple[int, int, int, int], str, str] | None = None
    for i, r in enumerate(doc["spec"].get("rules", [])):
        if r["operation"] != op or (op == "open" and slot not in r["match"].get("access", ["read", "write"])):
            continue
        specificity = []
        if path in r["match"].get("paths", []):
            specificity.append((2, 0))
        for prefix in r["match"].get("prefixes", []):
            if path != "/" and path.startswith(prefix):
                specificity.append((1, len(prefix)))
        if specificity:
            key = (*max(specificity), STRICT[r["action"]], -i)
            if best is None or key > best[0]:
                best = (key, r["action"], r["id"])
    if best is None:
        return doc["spec"]["defaults"][op], None
    return best[1], best[2]


def as_v4(value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    net = ipaddress.ip_network(value)
    if net.version == 6 and net.prefixlen >= 96 and int(net.network_address) >> 32 == 0xFFFF:
        return ipaddress.ip_network((int(net.network_address) & 0xFFFFFFFF, net.prefixlen - 96))
    return net


def connect_decision(doc: dict[str, Any], addr: str, port: int, proto: str) -> tuple[str, str | None]:
    dest = as_v4(addr).network_address
    best: tuple[tuple[int, int, int, int], str, str] | None = None
    for i, r in enumerate(doc["spec"].get("rules", [])):
        m = r["match"]
        if r["operation"] != "connect" or proto not in m.get("protocols", ["tcp", "udp"]):
            continue
        nets = [as_v4(a) for a in m.get("addresses", ["0.0.0.0/0", "::/0"])]
        lengths = [n.prefixlen for n in nets if n.version == dest.version and dest in n]
        if not lengths:
            continue
        if "ports" in m:
            ranges = [(p, p) if isinstance(p, int) else tuple(map(int, p.split("-"))) for p in m["ports"]]
            hits = [2 if a == b else 1 for a, b in ranges if a <= port <= b]
            if not hits:
                continue
            port_rank = max(hits)
        else:
            port_rank = 0
        key = (max(lengths), port_rank, STRICT[r["action"]], -i)
        if best is None or key > best[0]:
            best = (key, r["action"], r["id"])
    if best is None:
        return doc["spec"]["defaults"]["connect"], None
    return best[1], best[2]


def combine(docs: list[dict[str, Any]], proc: dict[str, Any], decide: Any, slots: list[str]) -> tuple[str, str | None, str | None]:
    ranked = []
    for index, doc in enumerate(sorted(docs, key=lambda d: d["metadata"]["name"])):
        if not applies(doc, proc):
            continue
        for slot_order, slot in enumerate(slots):
            action, rule = decide(doc, slot)
            if action == "deny":
                verdict, rank = ("deny", 4) if doc["spec"]["mode"] == "enforce" else ("would_deny", 3)
            else:
                verdict, rank = action, STRICT[action]
            ranked.append((-rank, index, slot_order, verdict, doc["metadata"]["name"], rule))
    if not ranked:
        return ("allow", None, None)
    _, _, _, verdict, name, rule = min(ranked)
    return (verdict, name, rule)


def compiled(docs: list[dict[str, Any]]) -> Any:
    return build_ruleset([Policy.model_validate(d) for d in docs])


def outcome(v: Any) -> tuple[str, str | None, str | None]:
    return (v.action, v.policy, v.rule)


@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(s.policy_sets(), s.processes, st.lists(s.file_queries, min_size=1, max_size=5), s.access_sets)
def test_file_verdicts_match_naive_semantics(docs: list[dict[str, Any]], proc: dict[str, Any], paths: list[str], access: list[str]) -> None:
    rs = compiled(docs)
    p = Process(**proc)
    for path in paths:
        exec_expected = combine(docs, proc, lambda d, slot: file_decision(d, "exec", slot, path), ["exec"])
        assert outcome(evaluate_exec(rs, path, p)) == exec_expected
        order = [a for a in ("read", "write") if a in access]
        open_expected = combine(docs, proc, lambda d, slot: file_decision(d, "open", slot, path), order)
        assert outcome(evaluate_open(rs, path, access, p)) == open_expected


@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(s.policy_sets(), s.processes, st.lists(s.connect_queries, min_size=1, max_size=6))
def test_connect_verdicts_match_naive_semantics(docs: list[dict[str, Any]], proc: dict[str, Any], queries: list[tuple[str, int, str]]) -> None:
    rs = compiled(docs)
    for addr, port, proto in queries:
        expected = combine(docs, proc, lambda d, _slot: connect_decision(d, addr, port, proto), ["-"])
        assert outcome(evaluate_connect(rs, addr, port, proto, Process(**proc))) == expected


@settings(max_examples=100, deadline=None)
@given(s.policy_sets())
def test_compilation_is_deterministic_and_well_formed(docs: list[dict[str, Any]]) -> None:
    rs = compiled(docs)
    assert rs == compiled(list(reversed(docs)))
    classes = rs.port_classes
    assert classes[0].first == 0 and classes[-1].last == 65535
    assert all(a.last + 1 == b.first for a, b in zip(classes, classes[1:]))
    for entry in rs.files:
        assert entry.path == "/" or not entry.path.endswith("/")
        for slot in entry.slots:
            assert slot.by_policy and [i for i, _ in slot.by_policy] == sorted({i for i, _ in slot.by_policy})
    for net in rs.nets:
        assert not (net.network.version == 6 and net.network.subnet_of(ipaddress.ip_network("::ffff:0:0/96")))
