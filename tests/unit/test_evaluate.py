"""Reference evaluator: the kernel's lookups on a RuleSet."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import pytest

from sentinel.compiler import ir
from sentinel.compiler.addr import reached_address
from sentinel.compiler.build import build_ruleset
from sentinel.compiler.evaluate import (
    Process,
    Verdict,
    evaluate_connect,
    evaluate_exec,
    evaluate_open,
    parse_endpoint,
    resolve_path,
    selector_applies,
)
from tests.helpers import policy, rule

ANY = Process()


def test_file_walk_exact_then_deepest_subtree_then_default() -> None:
    rs = build_ruleset([policy(
        "p",
        rule("root", "open", "audit", prefixes=["/"]),
        rule("etc", "open", "deny", prefixes=["/etc/"]),
        rule("ssl", "open", "allow", prefixes=["/etc/ssl/"]),
        rule("key", "open", "deny", paths=["/etc/ssl/key"]),
        defaults={"open": "deny"},
    )])
    rule_of = lambda path: evaluate_open(rs, path, ["read"], ANY).rule  # noqa: E731
    assert rule_of("/etc/ssl/key") == "key"
    assert rule_of("/etc/ssl/key/below") == "ssl"  # exact entries do not cover children
    assert rule_of("/etc/ssl/certs/a") == "ssl"
    assert rule_of("/etc/passwd") == "etc"
    assert rule_of("/etc") == "root"  # a subtree root is not below itself
    assert rule_of("/var") == "root"
    # "/" is below nothing: the default decides.
    assert evaluate_open(rs, "/", ["read"], ANY) == Verdict("deny", True, True, "p", None)


def test_verdict_fields_and_ungoverned() -> None:
    rs = build_ruleset([policy(
        "p", rule("r", "exec", "audit", paths=["/bin/x"]) | {"severity": "high"}, selector={"uids": [5]},
    )])
    assert evaluate_exec(rs, "/bin/x", Process(uid=5)) == Verdict(
        "audit", blocked=False, alert=True, policy="p", rule="r", severity="high"
    )
    ungoverned = evaluate_exec(rs, "/bin/x", Process(uid=6))
    assert ungoverned == Verdict("allow", False, False, None, None)
    assert ungoverned.decided_by == "no policy"
    assert evaluate_exec(rs, "/bin/y", Process(uid=5)).decided_by == "p/default"


def test_audit_mode_reports_would_deny_and_ranks_below_deny() -> None:
    rs = build_ruleset([
        policy("a-dry", rule("d", "open", "deny", paths=["/f"]), mode="audit"),
        policy("b-audit", rule("au", "open", "audit", paths=["/f", "/g"])),
        policy("c-deny", rule("dd", "open", "deny", paths=["/g"], access=["write"])),
    ])
    assert evaluate_open(rs, "/f", ["read"], ANY) == Verdict("would_deny", False, True, "a-dry", "d", "medium")
    assert evaluate_open(rs, "/g", ["read"], ANY) == Verdict("audit", False, True, "b-audit", "au", "medium")
    assert evaluate_open(rs, "/g", ["read", "write"], ANY) == Verdict("deny", True, True, "c-deny", "dd", "medium")


def test_ties_go_to_lowest_policy_index_then_read_slot() -> None:
    rs = build_ruleset([
        policy("a", rule("aw", "open", "deny", paths=["/f"], access=["write"])),
        policy("b", rule("br", "open", "deny", paths=["/f"], access=["read"])),
    ])
    assert evaluate_open(rs, "/f", ["read", "write"], ANY).policy == "a"
    rs2 = build_ruleset([policy(
        "a",
        rule("w", "open", "deny", paths=["/f"], access=["write"]),
        rule("r", "open", "deny", paths=["/f"], access=["read"]),
    )])
    assert evaluate_open(rs2, "/f", ["write", "read"], ANY).rule == "r"
    with pytest.raises(ValueError):
        evaluate_open(rs2, "/f", [], ANY)


@pytest.mark.parametrize(
    ("sel", "proc", "applies"),
    [
        (ir.Selector(), Process(), True),
        (ir.Selector(binaries=("/b",)), Process(binary="/b"), True),
        (ir.Selector(binaries=("/b",)), Process(binary="/c"), False),
        (ir.Selector(binaries=("/b",)), Process(binary=None), False),
        (ir.Selector(not_binaries=("/b",)), Process(binary="/b"), False),
        (ir.Selector(not_binaries=("/b",)), Process(binary=None), True),
        (ir.Selector(uids=(ir.UidRange(10, 20),)), Process(uid=10), True),
        (ir.Selector(uids=(ir.UidRange(10, 20),)), Process(uid=20), True),
        (ir.Selector(uids=(ir.UidRange(10, 20),)), Process(uid=21), False),
        (ir.Selector(uids=(ir.UidRange(10, 20),)), Process(uid=9), False),
        (ir.Selector(cgroups=("/a/b",)), Process(cgroup="/a/b"), True),
        (ir.Selector(cgroups=("/a/b",)), Process(cgroup="/a/b/c"), True),
        (ir.Selector(cgroups=("/a/b",)), Process(cgroup="/a/bc"), False),
        (ir.Selector(cgroups=("/a/b",)), Process(cgroup=None), False),
        (ir.Selector(cgroups=("/",)), Process(cgroup="/x"), True),
        (ir.Selector(binaries=("/b",), uids=(ir.UidRange(0, 0),)), Process(binary="/b", uid=1), False),
    ],
)
def test_selector(sel: ir.Selector, proc: Process, applies: bool) -> None:
    assert selector_applies(sel, proc) is applies


def test_connect_lpm_port_class_and_mapped() -> None:
    rs = build_ruleset([policy(
        "p",
        rule("net", "connect", "deny", addresses=["203.0.113.0/24"]),
        rule("host", "connect", "allow", addresses=["203.0.113.7"], ports=["1000-2000"]),
        rule("v6", "connect", "audit", addresses=["2001:db8::/32"], protocols=["udp"]),
        defaults={"connect": "audit"},
    )])
    rule_of = lambda a, port, proto="tcp": evaluate_connect(rs, a, port, proto, ANY).rule  # noqa: E731
    assert rule_of("203.0.113.7", 1000) == "host"
    assert rule_of("203.0.113.7", 2000) == "host"
    assert rule_of("203.0.113.7", 2001) == "net"
    assert rule_of("203.0.113.7", 999) == "net"
    assert rule_of("::ffff:203.0.113.7", 1500) == "host"
    assert rule_of("198.51.100.1", 1500) is None
    assert rule_of("2001:db8::1", 53, "udp") == "v6"
    assert rule_of("2001:db8::1", 53, "tcp") is None
    assert evaluate_connect(rs, ipaddress.ip_address("203.0.113.1"), 0, ir.Protocol.UDP, ANY).rule == "net"
    with pytest.raises(ValueError):
        evaluate_connect(rs, "203.0.113.1", 65536, "tcp", ANY)


def test_unspecified_destinations_are_judged_as_loopback() -> None:
    """0.0.0.0 and :: reach this host: from an unbound socket, loopback."""
    rs = build_ruleset([policy(
        "p",
        rule("lo", "connect", "deny", addresses=["127.0.0.0/8"], ports=[22]),
        rule("lo6", "connect", "deny", addresses=["::1"], ports=[22]),
        rule("any4", "connect", "audit", addresses=["0.0.0.0/32"]),
    )])
    rule_of = lambda a, port, proto="tcp": evaluate_connect(rs, a, port, proto, ANY).rule  # noqa: E731
    assert rule_of("0.0.0.0", 22) == "lo"
    assert rule_of("0.0.0.0", 22, "udp") == "lo"
    assert rule_of("::ffff:0.0.0.0", 22) == "lo"
    assert rule_of("::", 22) == "lo6"
    assert rule_of("::", 23) is None
    assert rule_of("0.0.0.0", 23) is None  # a rule on 0.0.0.0 itself can never match what the kernel reaches
    assert rule_of("127.0.0.1", 22) == "lo"  # control


@pytest.mark.parametrize(
    ("written", "reached"),
    [("0.0.0.0", "127.0.0.1"), ("::", "::1"), ("::ffff:0.0.0.0", "127.0.0.1"),
     ("::ffff:127.0.0.2", "127.0.0.2"), ("203.0.113.7", "203.0.113.7"), ("::1", "::1")],
)
def test_reached_address(written: str, reached: str) -> None:
    assert reached_address(ipaddress.ip_address(written)) == ipaddress.ip_address(reached)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:22", ("127.0.0.1", 22, ir.Protocol.TCP)),
        ("127.0.0.1:53/udp", ("127.0.0.1", 53, ir.Protocol.UDP)),
        ("[::1]:443/tcp", ("::1", 443, ir.Protocol.TCP)),
        ("[::ffff:127.0.0.1]:0", ("::ffff:7f00:1", 0, ir.Protocol.TCP)),
    ],
)
def test_parse_endpoint(text: str, expected: tuple[str, int, ir.Protocol]) -> None:
    addr, port, proto = parse_endpoint(text)
    assert (str(addr), port, proto) == expected


@pytest.mark.parametrize(
    "text", ["127.0.0.1", "::1:22", "[::1]22", "127.0.0.1:http", "127.0.0.1:70000", "1.2.3.4:1/icmp", "host:22"]
)
def test_parse_endpoint_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_endpoint(text)


def test_resolve_path_follows_symlinks_and_normalises(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.write_text("x")
    (tmp_path / "link").symlink_to(real)
    assert resolve_path(str(tmp_path / "link")) == str(real.resolve())
    assert resolve_path(str(tmp_path / "missing" / ".." / "real")) == str(real.resolve())
    assert resolve_path("/nonexistent-sentinel//a/./b/../c") == "/nonexistent-sentinel/a/c"
    cwd = os.getcwd()
    assert resolve_path("relative") == os.path.join(os.path.realpath(cwd), "relative")


def test_index_cache_does_not_keep_rulesets_alive() -> None:
    import gc
    import weakref

    rs = build_ruleset([policy("p", rule("r", "exec", "deny", paths=["/x"]))])
    assert evaluate_exec(rs, "/x", ANY).action == "deny"
    ref = weakref.ref(rs)
    del rs
    gc.collect()
    assert ref() is None


def test_fileless_ranks_with_the_exact_entry() -> None:
    rs = build_ruleset([policy(
        "p",
        rule("kept", "exec", "allow", paths=["/bin/kept"]),
        rule("watch", "exec", "audit", fileless=True),
        rule("x", "exec", "deny", paths=["/bin/x"]),
        rule("nofl", "exec", "deny", fileless=True),
        rule("dir", "exec", "allow", prefixes=["/opt/"]),
    )])
    assert rs.policies[0].fileless == ir.Decision(ir.Action.DENY, 3)  # the strictest fileless rule
    assert evaluate_exec(rs, "/bin/kept", ANY).rule == "kept"
    assert evaluate_exec(rs, "/bin/kept", ANY, fileless=True).rule == "nofl"  # stricter at one level
    assert evaluate_exec(rs, "/bin/x", ANY, fileless=True).rule == "x"  # equal action: the earlier rule
    assert evaluate_exec(rs, "/opt/tool", ANY, fileless=True).rule == "nofl"  # beats the prefix
    assert evaluate_exec(rs, "/opt/tool", ANY).rule == "dir"
    assert evaluate_exec(rs, None, ANY, fileless=True).action == "deny"  # a memfd
    assert evaluate_exec(rs, None, ANY).decided_by == "p/default"


def test_mappings_are_judged_by_rules_never_by_defaults() -> None:
    rs = build_ruleset([policy(
        "p",
        rule("ok", "exec", "allow", prefixes=["/usr/"]),
        rule("evil", "exec", "deny", paths=["/opt/evil"]),
        defaults={"exec": "deny"},
    )])
    assert evaluate_exec(rs, "/opt/lib.so", ANY).action == "deny"  # exec: the default
    assert evaluate_exec(rs, "/opt/lib.so", ANY, mapping=True).action == "allow"
    assert evaluate_exec(rs, "/opt/lib.so", ANY, mapping=True).policy is None
    assert evaluate_exec(rs, "/opt/evil", ANY, mapping=True).decided_by == "p/evil"
    assert evaluate_exec(rs, "/usr/lib/libc.so.6", ANY, mapping=True).decided_by == "p/ok"
