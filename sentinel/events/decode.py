"""Ring-buffer records -> Event: a frozen, plain view of struct sn_event."""

from __future__ import annotations

import ctypes
import ipaddress
import socket
from dataclasses import dataclass

from sentinel.kernel import abi

_ACCESS_NAMES = ((abi.SnAccess.READ, "read"), (abi.SnAccess.WRITE, "write"))


def _text(raw: bytes) -> str:
    # Paths are bytes in Linux: keep odd names readable and lossless-ish
    # (surrogateescape would not survive JSON, backslashreplace does).
    return raw.split(b"\0", 1)[0].decode("utf-8", "backslashreplace")


@dataclass(frozen=True)
class Event:
    kind: abi.SnEventKind
    op: abi.SnOp
    action: abi.SnAction
    blocked: bool
    policy: int
    rule: int  # abi.NO_RULE: the policy's default decided
    gen: int
    ts_boot_ns: int
    pid: int
    tid: int
    ppid: int
    uid: int
    gid: int
    comm: str
    exe: str
    cgroup_id: int
    path: str
    dev: int
    ino: int
    access: tuple[str, ...]
    family: int
    protocol: int
    daddr: str | None
    dport: int
    via: abi.SnVia = abi.SnVia.OPEN
    suppressed: int = 0  # alerts of this process and rule held back in the window before

    @classmethod
    def from_bytes(cls, raw: bytes) -> Event:
        """Decode one record. Raises ValueError when it is not a whole sn_event."""
        size = ctypes.sizeof(abi.sn_event)
        if len(raw) < size:
            raise ValueError(f"ring buffer record of {len(raw)} bytes, expected {size}")
        e = abi.sn_event.from_buffer_copy(raw[:size])
        daddr: str | None = None
        if e.family == socket.AF_INET:
            daddr = str(ipaddress.IPv4Address(bytes(e.daddr[:4])))
        elif e.family == socket.AF_INET6:
            daddr = str(ipaddress.IPv6Address(bytes(e.daddr)))
        return cls(
            kind=abi.SnEventKind(e.kind),
            op=abi.SnOp(e.op),
            action=abi.SnAction(e.action),
            blocked=bool(e.blocked),
            policy=e.policy,
            rule=e.rule,
            gen=e.gen,
            ts_boot_ns=e.ts_boot_ns,
            pid=e.pid,
            tid=e.tid,
            ppid=e.ppid,
            uid=e.uid,
            gid=e.gid,
            comm=_text(bytes(e.comm)),
            exe=_text(bytes(e.exe)),
            cgroup_id=e.cgroup_id,
            path=_text(bytes(e.path)),
            dev=e.dev,
            ino=e.ino,
            access=tuple(name for bit, name in _ACCESS_NAMES if e.access & bit),
            suppressed=e.suppressed,
            family=e.family,
            protocol=e.protocol,
            daddr=daddr,
            dport=e.dport,
            via=abi.SnVia(e.via) if e.via in abi.SnVia._value2member_map_ else abi.SnVia.OPEN,
        )
