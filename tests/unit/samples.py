"""Native events exactly as in the contract, one per kind/operation."""

from __future__ import annotations

import copy
from typing import Any

_PROCESS = {"pid": 4242, "tid": 4243, "ppid": 1, "uid": 1000, "gid": 1001,
            "comm": "cat", "exe": "/usr/bin/cat",
            "cmdline": ["cat", "/etc/shadow"], "cgroup": "/user.slice",
            "parent": {"pid": 1, "exe": "/usr/lib/systemd/systemd"}}


def open_alert(action: str = "deny", outcome: str = "blocked", seq: int = 17) -> dict[str, Any]:
    return {
        "@timestamp": "2026-11-21T22:10:00.123456Z",
        "event": {"kind": "alert", "operation": "open", "action": action,
                  "outcome": outcome, "seq": seq},
        "policy": {"name": "baseline", "mode": "audit" if action == "would_deny" else "enforce"},
        "rule": {"id": "no-shadow", "severity": "high"},
        "process": copy.deepcopy(_PROCESS),
        "file": {"path": "/etc/shadow", "dev": 2049, "inode": 1234, "access": ["read"]},
        "host": {"hostname": "web-1"},
    }


def exec_alert() -> dict[str, Any]:
    return {
        "@timestamp": "2026-11-21T22:10:01.000001Z",
        "event": {"kind": "alert", "operation": "exec", "action": "deny",
                  "outcome": "blocked", "seq": 18},
        "policy": {"name": "baseline", "mode": "enforce"},
        "rule": {"id": "no-nc", "severity": "critical"},
        "process": dict(copy.deepcopy(_PROCESS), comm="bash", exe="/usr/bin/bash",
                        cmdline=["bash", "-c", "nc -l 4444"]),
        "file": {"path": "/usr/bin/nc.openbsd", "dev": 2049, "inode": 99, "access": ["read"]},
        "host": {"hostname": "web-1"},
    }


def connect_alert(action: str = "audit", outcome: str = "allowed") -> dict[str, Any]:
    return {
        "@timestamp": "2026-11-21T22:10:02.5Z",
        "event": {"kind": "alert", "operation": "connect", "action": action,
                  "outcome": outcome, "seq": 19},
        "policy": {"name": "egress", "mode": "enforce"},
        "rule": {"id": "ssh-out", "severity": "low"},
        "process": dict(copy.deepcopy(_PROCESS), comm="ssh", exe="/usr/bin/ssh",
                        cmdline=["ssh", "203.0.113.7"]),
        "network": {"family": "ipv4", "protocol": "tcp", "dst_ip": "203.0.113.7",
                    "dst_port": 22},
        "host": {"hostname": "web-1"},
    }


def lost_event(count: int = 12) -> dict[str, Any]:
    return {
        "@timestamp": "2026-11-21T22:10:03Z",
        "event": {"kind": "lost", "seq": 20},
        "lost": {"count": count},
        "host": {"hostname": "web-1"},
    }


def status_event(state: str = "started", message: str = "3 policies loaded") -> dict[str, Any]:
    return {
        "@timestamp": "2026-11-21T22:10:04Z",
        "event": {"kind": "status", "seq": 21},
        "status": {"state": state, "message": message, "mechanism": "bpf-lsm"},
        "host": {"hostname": "web-1"},
    }


def all_events() -> list[dict[str, Any]]:
    return [exec_alert(), open_alert(), connect_alert(), lost_event(), status_event()]
