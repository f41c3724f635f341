"""Compiler: entries, precedence folding, port classes, limits, determinism."""

from __future__ import annotations

import ipaddress

import pytest

from sentinel.compiler import ir, limits
from sentinel.compiler.build import build_ruleset
from sentinel.errors import PolicyError
from tests.helpers import policy, rule

D = ir.Decision
A = ir.Action


def test_policies_indexed_by_name_with_info() -> None:
    rs = build_ruleset([
        policy("zeta", rule("r", "exec", "deny", paths=["/x"]), defaults={"exec": "deny", "open": "audit"}),
        policy("alpha", mode="audit", selector={"uids": [0, "10-20"], "notBinaries": ["/usr/bin/apt"]}),
    ])
    assert [p.name for p in rs.policies] == ["alpha", "zeta"]
    alpha, zeta = rs.policies
    assert alpha.index == 0 and alpha.mode == ir.Mode.AUDIT
    assert alpha.selector == ir.Selector(
        not_binaries=("/usr/bin/apt",), uids=(ir.UidRange(0, 0), ir.UidRange(10, 20))
    )
    assert zeta.default_file == (A.DENY, A.AUDIT, A.AUDIT)
    assert zeta.default_connect == A.ALLOW
    assert zeta.rules == (ir.RuleInfo("r", ir.Operation.EXEC, A.DENY, ir.Severity.MEDIUM),)


def test_mode_override() -> None:
    rs = build_ruleset([policy("a", mode="audit"), policy("b")], mode_override=ir.Mode.ENFORCE)
    assert [p.mode for p in rs.policies] == [ir.Mode.ENFORCE, ir.Mode.ENFORCE]


def test_file_entries_fold_strictest_per_policy_and_slot() -> None:
    rs = build_ruleset([
        policy(
            "p",
            rule("allow-etc", "open", "allow", prefixes=["/etc/"], access=["read"]),
            rule("deny-etc", "open", "deny", prefixes=["/etc/"], access=["write"]),
            rule("audit-etc", "open", "audit", prefixes=["/etc/"]),
            rule("exec-shadow", "exec", "deny", paths=["/etc/shadow"]),
            rule("root", "open", "audit", prefixes=["/"]),
        ),
        policy("q", rule("q-shadow", "open", "allow", paths=["/etc/shadow"])),
    ])
    assert rs.files == (
        ir.FileEntry("/", ir.PathKind.SUBTREE, (
            ir.SlotDecisions(ir.Slot.READ, ((0, D(A.AUDIT, 4)),)),
            ir.SlotDecisions(ir.Slot.WRITE, ((0, D(A.AUDIT, 4)),)),
        )),
        ir.FileEntry("/etc", ir.PathKind.SUBTREE, (
            ir.SlotDecisions(ir.Slot.READ, ((0, D(A.AUDIT, 2)),)),
            ir.SlotDecisions(ir.Slot.WRITE, ((0, D(A.DENY, 1)),)),
        )),
        ir.FileEntry("/etc/shadow", ir.PathKind.EXACT, (
            ir.SlotDecisions(ir.Slot.EXEC, ((0, D(A.DENY, 3)),)),
            ir.SlotDecisions(ir.Slot.READ, ((1, D(A.ALLOW, 0)),)),
            ir.SlotDecisions(ir.Slot.WRITE, ((1, D(A.ALLOW, 0)),)),
        )),
    )


def test_equal_actions_keep_the_first_rule() -> None:
    rs = build_ruleset([policy(
        "p",
        rule("first", "exec", "deny", paths=["/x"]),
        rule("second", "exec", "deny", paths=["/x"], prefixes=["/x/"]),
    )])
    exact, subtree = rs.files
    assert exact.slots[0].by_policy == ((0, D(A.DENY, 0)),)
    assert (subtree.path, subtree.kind) == ("/x", ir.PathKind.SUBTREE)
    assert subtree.slots[0].by_policy == ((0, D(A.DENY, 1)),)


def test_port_classes_partition_all_ports() -> None:
    rs = build_ruleset([policy(
        "p",
        rule("a", "connect", "deny", ports=[22, "6000-6100", 6050, 65535]),
        rule("b", "connect", "deny", ports=["0-9"]),
    )])
    assert [(c.first, c.last) for c in rs.port_classes] == [
        (0, 9), (10, 21), (22, 22), (23, 5999), (6000, 6049), (6050, 6050),
        (6051, 6100), (6101, 65534), (65535, 65535),
    ]
    assert [c.index for c in rs.port_classes] == list(range(9))


def test_no_ports_means_one_class() -> None:
    rs = build_ruleset([policy("p", rule("a", "connect", "deny", protocols=["udp"]))])
    assert rs.port_classes == (ir.PortClass(0, 0, 65535),)
    assert [(n.protocol, str(n.network)) for n in rs.nets] == [
        (ir.Protocol.UDP, "0.0.0.0/0"), (ir.Protocol.UDP, "::/0"),
    ]


def test_net_entries_carry_the_inherited_winner() -> None:
    rs = build_ruleset([policy(
        "p",
        rule("net", "connect", "deny", addresses=["203.0.113.0/24"], protocols=["tcp"]),
        rule("host", "connect", "allow", addresses=["203.0.113.7"], ports=[443], protocols=["tcp"]),
    ), policy(
        "q", rule("wide", "connect", "audit", addresses=["203.0.113.0/25"], protocols=["tcp"]),
    )])
    classes = {(c.first, c.last): c.index for c in rs.port_classes}
    https = classes[(443, 443)]
    entries = {(n.port_class, str(n.network)): n.by_policy for n in rs.nets}
    # The /32 entry exists only for 443; q has no /32 rule but its /25 contains it.
    assert entries[(https, "203.0.113.7/32")] == ((0, D(A.ALLOW, 1)), (1, D(A.AUDIT, 0)))
    assert (classes[(0, 442)], "203.0.113.7/32") not in entries
    # p has no /25 rule: its /24 rule is inherited by q's /25 entry.
    assert entries[(https, "203.0.113.0/25")] == ((0, D(A.DENY, 0)), (1, D(A.AUDIT, 0)))
    assert entries[(https, "203.0.113.0/24")] == ((0, D(A.DENY, 0)),)
    assert {n.protocol for n in rs.nets} == {ir.Protocol.TCP}


def test_port_specificity_then_strictness_at_equal_prefix() -> None:
    rs = build_ruleset([policy(
        "p",
        rule("any", "connect", "deny", addresses=["127.0.0.0/8"]),
        rule("range", "connect", "audit", addresses=["127.0.0.0/8"], ports=["20-30"]),
        rule("exact", "connect", "allow", addresses=["127.0.0.0/8"], ports=[25]),
        rule("range-deny", "connect", "deny", addresses=["127.0.0.0/8"], ports=["20-22"]),
    )])
    by_port = {
        (c.first, c.last): n.by_policy[0][1].rule
        for n in rs.nets if n.protocol == ir.Protocol.TCP and n.network.version == 4
        for c in [rs.port_classes[n.port_class]]
    }
    assert by_port == {
        (0, 19): 0, (20, 22): 3, (23, 24): 1, (25, 25): 2, (26, 30): 1, (31, 65535): 0,
    }


def test_ipv4_mapped_networks_normalise_to_ipv4() -> None:
    rs = build_ruleset([policy(
        "p",
        rule("m", "connect", "deny", addresses=["::ffff:203.0.113.0/120", "::ffff:0:0/96", "::fffe:0:0/95"]),
    )])
    nets = {str(n.network) for n in rs.nets}
    assert nets == {"203.0.113.0/24", "0.0.0.0/0", "::fffe:0:0/95"}


def test_deterministic_regardless_of_input_order() -> None:
    ps = [
        policy("b", rule("x", "connect", "deny", addresses=["2001:db8::/32", "127.0.0.1"], ports=[1, "5-9"])),
        policy("a", rule("y", "open", "deny", paths=["/b", "/a"], prefixes=["/c/"])),
    ]
    one, two = build_ruleset(ps), build_ruleset(list(reversed(ps)))
    assert one == two
    keys = [(n.protocol, n.port_class, n.network.version, int(n.network.network_address)) for n in one.nets]
    assert keys == sorted(keys)
    assert [(f.path, f.kind) for f in one.files] == sorted((f.path, f.kind) for f in one.files)


def test_file_entry_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "MAX_FILE_ENTRIES", 2)
    with pytest.raises(PolicyError, match="3 file entries; the kernel maps hold at most 2"):
        build_ruleset([policy("p", rule("r", "open", "deny", paths=["/a", "/b", "/c"]))])


def test_net_entry_limit_per_family(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "MAX_NET_ENTRIES", 3)
    ok = policy("p", rule("r", "connect", "deny", addresses=["127.0.0.1", "127.0.0.2", "::1"], protocols=["tcp"]))
    assert len(build_ruleset([ok]).nets) == 3
    too_many = policy("p", rule("r", "connect", "deny", addresses=["127.0.0.1", "127.0.0.2"], ports=[1]))
    with pytest.raises(PolicyError, match="IPv4 connect entries; the kernel map holds at most 3") as info:
        build_ruleset([too_many])
    assert info.value.diagnostics[0].file == "<policy>"


def test_too_many_policies_and_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(PolicyError, match="64 policies; at most 63"):
        build_ruleset([policy(f"p{i}") for i in range(64)])
    monkeypatch.setattr(limits, "MAX_RULES_PER_POLICY", 2)
    with pytest.raises(PolicyError, match="has 2 rules; at most 1"):
        build_ruleset([policy("p", rule("a", "exec", "deny", paths=["/a"]), rule("b", "exec", "deny", paths=["/b"]))])


def test_ruleset_is_frozen() -> None:
    rs = build_ruleset([policy("p", rule("a", "exec", "deny", paths=["/a"]))])
    with pytest.raises(AttributeError):
        rs.files = ()  # type: ignore[misc]
    assert isinstance(rs.files, tuple) and isinstance(rs.nets, tuple)
    assert ipaddress.ip_network("0.0.0.0/0") not in {n.network for n in rs.nets}
