"""events/decode.py and events/enrich.py: ring-buffer bytes to the contract's native event."""

from __future__ import annotations

import ctypes
import socket

import pytest

from sentinel.compiler.ir import Action, Mode, Operation, PolicyInfo, RuleInfo, RuleSet, Selector, Severity
from sentinel.events.decode import Event
from sentinel.events.enrich import Enricher
from sentinel.kernel import abi


def record(**fields: object) -> bytes:
    e = abi.sn_event()
    for name, value in fields.items():
        if name == "daddr":
            for i, b in enumerate(value):  # type: ignore[arg-type]
                e.daddr[i] = b
        else:
            setattr(e, name, value)
    return bytes(e)


RS = RuleSet(
    policies=(PolicyInfo(0, "base", Mode.ENFORCE, Selector(), (Action.ALLOW,) * 3, Action.ALLOW,
                         (RuleInfo("no-shadow", Operation.OPEN, Action.DENY, Severity.HIGH),)),
              PolicyInfo(1, "dry", Mode.AUDIT, Selector(), (Action.ALLOW,) * 3, Action.ALLOW, ())),
    files=(), port_classes=(), nets=(),
)


def enricher() -> Enricher:
    en = Enricher(hostname="web-1", proc=lambda pid: {"cmdline": ["cat", "/etc/shadow"], "exe": None, "cgroup": "/user.slice"},
                  parent_exe=lambda pid: "/usr/lib/systemd/systemd" if pid == 1 else None)
    en.rulesets[1] = RS
    return en


def test_open_alert_has_the_contract_fields() -> None:
    raw = record(kind=0, op=abi.SnOp.OPEN, action=abi.SnAction.DENY, blocked=1, policy=0, rule=0, gen=1,
                 pid=4242, tid=4243, ppid=1, uid=1000, gid=1000, comm=b"cat", exe=b"/usr/bin/cat",
                 path=b"/etc/shadow", dev=2049, ino=1234, access=abi.SnAccess.READ, ts_boot_ns=10**9)
    native = enricher()(Event.from_bytes(raw))
    assert native["event"] == {"kind": "alert", "operation": "open", "action": "deny", "outcome": "blocked"}
    assert native["policy"] == {"name": "base", "mode": "enforce"}
    assert native["rule"] == {"id": "no-shadow", "severity": "high"}
    assert native["file"] == {"path": "/etc/shadow", "dev": 2049, "inode": 1234, "access": ["read"]}
    p = native["process"]
    assert (p["pid"], p["tid"], p["ppid"], p["uid"], p["comm"], p["exe"]) == (4242, 4243, 1, 1000, "cat", "/usr/bin/cat")
    assert p["cmdline"] == ["cat", "/etc/shadow"] and "missing" not in p
    assert p["parent"] == {"pid": 1, "exe": "/usr/lib/systemd/systemd"}
    assert native["host"] == {"hostname": "web-1"}
    assert native["@timestamp"].endswith("Z")


def test_audit_mode_deny_is_would_deny_and_default_rule() -> None:
    raw = record(op=abi.SnOp.EXEC, action=abi.SnAction.DENY, blocked=0, policy=1, rule=abi.NO_RULE, gen=1,
                 path=b"/tmp/x")
    native = enricher()(Event.from_bytes(raw))
    assert native["event"]["action"] == "would_deny" and native["event"]["outcome"] == "allowed"
    assert native["policy"] == {"name": "dry", "mode": "audit"}
    assert native["rule"]["id"] == "default"
    assert "access" not in native["file"]


def test_connect_alert_decodes_both_families() -> None:
    v4 = record(op=abi.SnOp.CONNECT, action=abi.SnAction.AUDIT, policy=0, rule=0, gen=1,
                family=socket.AF_INET, protocol=17, dport=53, daddr=bytes([203, 0, 113, 7]))
    n4 = enricher()(Event.from_bytes(v4))
    assert n4["network"] == {"family": "ipv4", "protocol": "udp", "dst_ip": "203.0.113.7", "dst_port": 53}
    assert "file" not in n4 and n4["event"]["action"] == "audit"
    v6 = record(op=abi.SnOp.CONNECT, action=abi.SnAction.DENY, blocked=1, policy=0, gen=1,
                family=socket.AF_INET6, protocol=6, dport=22, daddr=bytes.fromhex("20010db8" + "00" * 11 + "01"))
    assert enricher()(Event.from_bytes(v6))["network"]["dst_ip"] == "2001:db8::1"


def test_odd_bytes_in_names_do_not_crash_and_missing_facts_are_marked() -> None:
    raw = record(op=abi.SnOp.OPEN, action=abi.SnAction.DENY, blocked=1, gen=1, path=b"/tmp/\xff\xfe\nname",
                 comm=b"\xc3(")
    en = Enricher(hostname="h", proc=lambda pid: {"cmdline": None, "exe": None, "cgroup": None},
                  parent_exe=lambda pid: None)
    en.rulesets[1] = RS
    native = en(Event.from_bytes(raw))
    assert native["file"]["path"] == "/tmp/\\xff\\xfe\nname"
    assert set(native["process"]["missing"]) == {"cmdline", "exe", "cgroup", "parent_exe"}


def test_short_record_is_rejected() -> None:
    with pytest.raises(ValueError):
        Event.from_bytes(b"\0" * (ctypes.sizeof(abi.sn_event) - 1))
