"""Hypothesis strategies: small random policies (as raw YAML data) and queries.

The universes are deliberately tiny so that random rules collide on the same
paths, prefixes, networks and ports, which is where precedence matters.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

NAMES = ["p0", "p1", "p2"]
DIRS = ["/r", "/r/a", "/r/a/b", "/r/b", "/s"]
FILES = ["/r/x", "/r/a/x", "/r/a/b/x", "/r/a/b", "/r/b/x", "/s/x", "/t"]
BINARIES = ["/bin/x", "/bin/y"]
CGROUPS = ["/c", "/c/d", "/e"]
NETWORKS = [
    "10.0.0.0/8", "10.1.0.0/16", "10.1.2.3", "10.1.2.0/24", "::ffff:10.1.0.0/112",
    "2001:db8::/32", "2001:db8:1::/48", "::1", "0.0.0.0/0",
]
ADDRESSES = [
    "10.1.2.3", "10.1.2.4", "10.1.9.9", "10.2.0.1", "11.0.0.1", "::ffff:10.1.2.3",
    "::ffff:11.0.0.1", "2001:db8:1::1", "2001:db8:2::1", "::1", "::2",
]
PORTS = st.integers(0, 12) | st.just(65535)

actions = st.sampled_from(["deny", "audit", "allow"])


@st.composite
def port_specs(draw: st.DrawFn) -> Any:
    first = draw(PORTS)
    if draw(st.booleans()):
        return first
    last = draw(st.integers(first, min(first + 6, 65535)))
    return f"{first}-{last}"


@st.composite
def rules(draw: st.DrawFn, index: int) -> dict[str, Any]:
    operation = draw(st.sampled_from(["exec", "open", "connect"]))
    match: dict[str, Any] = {}
    if operation == "connect":
        if draw(st.booleans()):
            match["addresses"] = draw(st.lists(st.sampled_from(NETWORKS), min_size=1, max_size=2))
        if draw(st.booleans()):
            match["ports"] = draw(st.lists(port_specs(), min_size=1, max_size=2))
        if draw(st.booleans()) or not match:
            match["protocols"] = draw(st.lists(st.sampled_from(["tcp", "udp"]), min_size=1, max_size=2))
    else:
        if draw(st.booleans()):
            match["paths"] = draw(st.lists(st.sampled_from(FILES), min_size=1, max_size=2))
        if draw(st.booleans()) or "paths" not in match:
            match["prefixes"] = draw(
                st.lists(st.sampled_from([d + "/" for d in DIRS] + ["/"]), min_size=1, max_size=2)
            )
        if operation == "open" and draw(st.booleans()):
            match["access"] = draw(st.lists(st.sampled_from(["read", "write"]), min_size=1, max_size=2))
    return {"id": f"r{index}", "operation": operation, "action": draw(actions), "match": match}


@st.composite
def selectors(draw: st.DrawFn) -> dict[str, Any]:
    sel: dict[str, Any] = {}
    if draw(st.integers(0, 3)) == 0:
        sel["binaries"] = draw(st.lists(st.sampled_from(BINARIES), min_size=1, max_size=1))
    if draw(st.integers(0, 3)) == 0:
        sel["notBinaries"] = draw(st.lists(st.sampled_from(BINARIES), min_size=1, max_size=1))
    if draw(st.integers(0, 3)) == 0:
        sel["uids"] = draw(st.lists(st.sampled_from([0, 1, "2-3", "1-4"]), min_size=1, max_size=2))
    if draw(st.integers(0, 3)) == 0:
        sel["cgroups"] = draw(st.lists(st.sampled_from(CGROUPS), min_size=1, max_size=1))
    return sel


@st.composite
def policy_docs(draw: st.DrawFn, name: str) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "mode": draw(st.sampled_from(["enforce", "audit"])),
        "selector": draw(selectors()),
        "defaults": {k: draw(actions) for k in ("exec", "open", "connect")},
    }
    count = draw(st.integers(0, 6))
    if count:
        spec["rules"] = [draw(rules(i)) for i in range(count)]
    return {"apiVersion": "sentinel/v1", "kind": "Policy", "metadata": {"name": name}, "spec": spec}


@st.composite
def policy_sets(draw: st.DrawFn) -> list[dict[str, Any]]:
    names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=3, unique=True))
    return [draw(policy_docs(n)) for n in names]


processes = st.fixed_dictionaries({
    "binary": st.sampled_from([None, *BINARIES]),
    "uid": st.integers(0, 5),
    "cgroup": st.sampled_from([None, "/", *CGROUPS, "/c/d/e", "/cd"]),
})

file_queries = st.sampled_from(FILES + DIRS + ["/", "/r/a/b/x/y", "/u/v"])
access_sets = st.lists(st.sampled_from(["read", "write"]), min_size=1, max_size=2, unique=True)
connect_queries = st.tuples(st.sampled_from(ADDRESSES), PORTS, st.sampled_from(["tcp", "udp"]))


# -- junk, for the fuzz suite (tests/unit/test_fuzz_loader.py) ---------------
# Structured junk: mostly-right policies with parts replaced by wrong types,
# odd unicode, NUL, huge numbers, then rendered to YAML and mangled at the
# text level (duplicate keys, anchors and aliases, deep nesting, raw bytes).

odd_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)) | st.sampled_from(
        ["\x00", "\u202e", "\ufeff", "\u2028", "\x85", "é", "/", ".", "*", "&", "<", ":", "-", "#", "'", '"']
    ),
    max_size=30,
)
huge_ints = st.integers() | st.sampled_from([2**64, -(2**63), 10**400, 2**32 - 1, 65536, -1])
scalars = st.none() | st.booleans() | huge_ints | st.floats() | odd_text | st.sampled_from(
    ["/etc/shadow", "/tmp/", "10.0.0.0/8", "22", "1-2", "exec", "open", "connect", "deny", "allow"]
)
junk_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(odd_text | st.sampled_from(
        ["paths", "prefixes", "match", "id", "operation", "action", "rules", "spec"]), inner, max_size=4),
    max_leaves=12,
)


@st.composite
def junk_policy_data(draw: st.DrawFn) -> Any:
    """A generated policy with some of its values (or itself) replaced by junk."""
    doc: Any = draw(policy_docs(draw(st.sampled_from(NAMES))))
    for _ in range(draw(st.integers(0, 4))):
        node = doc
        path: list[Any] = []
        while isinstance(node, (dict, list)) and node and draw(st.booleans()):
            key = draw(st.sampled_from(sorted(node) if isinstance(node, dict) else list(range(len(node)))))
            path.append(key)
            node = node[key]
        if not path:
            return draw(junk_values)
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        parent[path[-1]] = draw(junk_values)
    return doc


def _deep(depth: int, flow: bool) -> str:
    if flow:
        return "[" * depth + "]" * depth
    return "- " * depth + "x"


@st.composite
def junk_yaml(draw: st.DrawFn) -> bytes:
    """Policy-shaped YAML text, then mangled."""
    import yaml

    data = draw(junk_policy_data())
    try:
        text = yaml.safe_dump(data, allow_unicode=draw(st.booleans()), default_flow_style=draw(st.booleans()))
    except yaml.YAMLError:
        text = "x: 1\n"
    lines = text.splitlines()
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["dup", "anchor", "alias", "deep", "nul", "bytes", "cut", "docs"]))
        at = draw(st.integers(0, len(lines)))
        if kind == "dup" and lines:
            lines.insert(at, lines[min(at, len(lines) - 1)])
        elif kind == "anchor":
            lines.insert(at, "a: &x [1, 2]")
        elif kind == "alias":
            lines.insert(at, "b: [*x, *x, *x]")
        elif kind == "deep":
            lines.insert(at, "d: " + _deep(draw(st.sampled_from([31, 33, 200, 5000])), draw(st.booleans())))
        elif kind == "nul":
            lines.insert(at, "n: \x00")
        elif kind == "cut":
            lines = lines[:at]
        elif kind == "docs":
            lines.insert(at, "---")
        else:
            lines.insert(at, draw(st.binary(max_size=12)).decode("latin-1"))
    raw = "\n".join(lines).encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 9)) == 0:
        raw += draw(st.binary(max_size=16))  # invalid UTF-8 and stray bytes
    return raw


# Command-line junk: real option names mixed with odd strings. No token is a
# prefix of --help (argparse would exit 0 after printing it).
option_names = st.sampled_from([
    "--json", "--exec", "--open", "--connect", "--access", "--binary", "--uid", "--cgroup", "--policy",
    "--mode", "--output", "--format", "--alert-rate", "--output-queue", "--", "-", "--bogus", "-x",
])
argv_junk = st.lists(
    option_names
    | odd_text.filter(lambda t: not t.startswith(("-h", "--h")))
    | huge_ints.map(str)
    | st.sampled_from(["read", "write", "enforce", "audit", "stdout", "jsonl:", "1.2.3.4:99999", "[::1]:22/sctp"]),
    max_size=6,
)
