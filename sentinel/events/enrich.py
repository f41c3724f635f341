"""Event -> the contract's native JSON object.

The kernel captured what only it can see at that moment; here we add names
(policy, rule), wall-clock time, and what only /proc has (the command line),
marking in `process.missing` whatever could no longer be read.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timezone
from typing import Any

from sentinel.compiler.ir import Mode, RuleSet, Severity
from sentinel.events.cgroups import CgroupPaths
from sentinel.events.decode import Event
from sentinel.kernel import abi

_OPS = {abi.SnOp.EXEC: "exec", abi.SnOp.OPEN: "open", abi.SnOp.CONNECT: "connect"}
_PROTOCOLS = {6: "tcp", 17: "udp"}
_FAMILIES: dict[int, str] = {int(socket.AF_INET): "ipv4", int(socket.AF_INET6): "ipv6"}


def boot_to_wall_offset() -> float:
    """Seconds to add to CLOCK_BOOTTIME to get the wall clock (sampled now)."""
    return time.time() - time.clock_gettime(time.CLOCK_BOOTTIME)


def iso_timestamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _read_proc(pid: int, name: str) -> bytes | None:
    try:
        with open(f"/proc/{pid}/{name}", "rb") as f:
            return f.read()
    except OSError:
        return None


def read_cmdline(pid: int) -> list[str] | None:
    raw = _read_proc(pid, "cmdline")
    if not raw:
        return None
    return [a.decode("utf-8", "backslashreplace") for a in raw.rstrip(b"\0").split(b"\0")]


def read_exe(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None


def read_cgroup(pid: int) -> str | None:
    raw = _read_proc(pid, "cgroup")
    if raw is None:
        return None
    for line in raw.decode("utf-8", "replace").splitlines():
        if line.startswith("0::"):
            return line[3:]
    return None


class ProcFacts(Mapping[str, Any]):
    """A process's facts from /proc, each read only when first asked for: the
    exe and cgroup the kernel captured usually make those reads unnecessary."""

    _READERS: dict[str, Callable[[int], Any]] = {"cmdline": read_cmdline, "exe": read_exe, "cgroup": read_cgroup}

    def __init__(self, pid: int) -> None:
        self._pid = pid
        self._read: dict[str, Any] = {}

    def __getitem__(self, key: str) -> Any:
        if key not in self._read:
            self._read[key] = self._READERS[key](self._pid)
        return self._read[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._READERS)

    def __len__(self) -> int:
        return len(self._READERS)


class Enricher:
    """Turns decoded events into native dicts, naming policies of any generation
    the daemon has loaded (events in flight across a reload keep their names)."""

    def __init__(
        self,
        hostname: str | None = None,
        proc: Callable[[int], Mapping[str, Any]] | None = None,
        parent_exe: Callable[[int], str | None] = lambda pid: read_exe(pid),
        cgroup_path: Callable[[int], str | None] | None = None,
    ) -> None:
        self.hostname = hostname or socket.gethostname()
        self.rulesets: dict[int, RuleSet] = {}
        # Per generation, (dev, ino) -> the rule path resolved to it: completes
        # the paths of name-change events, whose hooks cannot call bpf_d_path.
        self.names: dict[int, dict[tuple[int, int], str]] = {}
        self._offset = boot_to_wall_offset()
        self._proc = proc or self._proc_facts
        self._parent_exe = parent_exe
        self._cgroup_path = cgroup_path or CgroupPaths().path

    @staticmethod
    def _proc_facts(pid: int) -> Mapping[str, Any]:
        return ProcFacts(pid)

    def __call__(self, ev: Event) -> dict[str, Any]:
        rs = self.rulesets.get(ev.gen)
        policy_name, mode, rule_id, severity = "unknown", "enforce", "unknown", "medium"
        if rs is not None and ev.policy < len(rs.policies):
            pol = rs.policies[ev.policy]
            policy_name = pol.name
            mode = "audit" if pol.mode == Mode.AUDIT else "enforce"
            if ev.rule == abi.NO_RULE:
                rule_id, severity = "default", "medium"
            elif ev.rule < len(pol.rules):
                rule = pol.rules[ev.rule]
                rule_id, severity = rule.id, Severity(rule.severity).name.lower()

        if ev.action == abi.SnAction.DENY:
            action = "deny" if ev.blocked else "would_deny"
        else:
            action = "audit"

        facts = self._proc(ev.pid)
        missing = [k for k in ("cmdline",) if facts.get(k) is None]
        exe = ev.exe or facts.get("exe")
        if not exe:
            missing.append("exe")
        # The cgroup the kernel saw at the event; /proc only where that id is
        # not a cgroup v2 directory (the process's cgroup now, if it still runs).
        cgroup = self._cgroup_path(ev.cgroup_id) or facts.get("cgroup")
        if cgroup is None:
            missing.append("cgroup")
        # The kernel gives the parent's pid only; its executable is read here,
        # and may be gone (or be another process's, if the pid was reused).
        parent_exe = self._parent_exe(ev.ppid) if ev.ppid else None
        if parent_exe is None:
            missing.append("parent_exe")
        process: dict[str, Any] = {
            "pid": ev.pid,
            "tid": ev.tid,
            "ppid": ev.ppid,
            "uid": ev.uid,
            "gid": ev.gid,
            "comm": ev.comm,
            "exe": exe,
            "cmdline": facts.get("cmdline"),
            "cgroup": cgroup,
            "cgroup_id": ev.cgroup_id,
            "parent": {"pid": ev.ppid, "exe": parent_exe},
        }
        if missing:
            process["missing"] = missing

        out: dict[str, Any] = {
            "@timestamp": iso_timestamp(ev.ts_boot_ns / 1e9 + self._offset),
            "event": {
                "kind": "alert",
                "operation": _OPS[ev.op],
                "action": action,
                "outcome": "blocked" if ev.blocked else "allowed",
            },
            "policy": {"name": policy_name, "mode": mode},
            "rule": {"id": rule_id, "severity": severity},
            "process": process,
            "host": {"hostname": self.hostname},
        }
        if ev.suppressed:
            # The rate limit held back this many alerts of this process and
            # rule in the window before this one: the summary travels with it.
            out["suppressed"] = {"count": ev.suppressed}
        if ev.op in (abi.SnOp.EXEC, abi.SnOp.OPEN):
            path = ev.path
            if ev.via not in (abi.SnVia.OPEN, abi.SnVia.MMAP) or (ev.via == abi.SnVia.MMAP and not path):
                # Name changes: the kernel sent the last name component only.
                path = self.names.get(ev.gen, {}).get((ev.dev, ev.ino), path)
            out["file"] = {"path": path, "dev": ev.dev, "inode": ev.ino}
            if ev.op == abi.SnOp.OPEN:
                out["file"]["access"] = list(ev.access)
            if ev.via != abi.SnVia.OPEN:
                # exec: mapped executable (mmap); open: a name change or truncate.
                out["file"]["via"] = ev.via.name.lower()
        else:
            out["network"] = {
                "family": _FAMILIES.get(ev.family, str(ev.family)),
                "protocol": _PROTOCOLS.get(ev.protocol, str(ev.protocol)),
                "dst_ip": ev.daddr,
                "dst_port": ev.dport,
            }
        return out
