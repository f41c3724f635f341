"""The reference evaluator: the kernel's lookups, simulated on a RuleSet.

It reads only the compiled RuleSet, never the policy models, so that
`sentinel explain`, `sentinel test` and the kernel differential tests all
exercise the very entries the kernel gets.

Across policies the strictest verdict wins, ranked
deny (enforce-mode policy) > would_deny (audit-mode policy) > audit > allow;
ties go to the lowest policy index, then to the READ slot over WRITE.
"""

from __future__ import annotations

import bisect
import ipaddress
import os
import weakref
from collections.abc import Iterable
from dataclasses import dataclass

from sentinel.compiler import ir
from sentinel.errors import UsageError
from sentinel.compiler.addr import IPAddress, reached_address

_RANK_ALLOW, _RANK_AUDIT, _RANK_WOULD_DENY, _RANK_DENY = 1, 2, 3, 4
_ACTION_NAMES = {
    _RANK_ALLOW: "allow", _RANK_AUDIT: "audit", _RANK_WOULD_DENY: "would_deny", _RANK_DENY: "deny"
}


@dataclass(frozen=True)
class Process:
    """The subject of an operation, as the selector sees it."""

    binary: str | None = None  # real path of the executable
    uid: int = 0
    cgroup: str | None = None  # cgroup v2 path, e.g. "/system.slice/nginx.service"


@dataclass(frozen=True)
class Verdict:
    """The outcome of one operation.

    `policy` is None when no policy governs the process; `rule` is None when the
    deciding policy's default decided.
    """

    action: str  # deny | would_deny | audit | allow
    blocked: bool
    alert: bool
    policy: str | None = None
    rule: str | None = None
    severity: str | None = None  # of the deciding rule

    @property
    def decided_by(self) -> str:
        if self.policy is None:
            return "no policy"
        return f"{self.policy}/{self.rule or 'default'}"


ALLOW_UNGOVERNED = Verdict("allow", blocked=False, alert=False)


def resolve_path(path: str) -> str:
    """The object's real path, as the kernel sees it: symlinks and `..` of
    existing components resolved, the rest normalised.

    Raises:
        UsageError: a component cannot be read (e.g. /proc/1/root as non-root).
    """
    try:
        return os.path.realpath(os.path.abspath(path))
    except OSError as exc:
        raise UsageError(f"cannot resolve {path!r}: {exc.strerror} ({exc.filename})") from exc


class _Index:
    """Dictionaries over one RuleSet, built once per RuleSet."""

    _cache: dict[int, tuple[weakref.ref[ir.RuleSet], _Index]] = {}

    def __init__(self, rs: ir.RuleSet) -> None:
        self.files: dict[tuple[str, ir.PathKind], dict[ir.Slot, dict[int, ir.Decision]]] = {
            (e.path, e.kind): {s.slot: dict(s.by_policy) for s in e.slots} for e in rs.files
        }
        self.port_starts = [c.first for c in rs.port_classes]
        # (protocol, class, version) -> [(prefixlen, {network int: by_policy})], longest first
        lpm: dict[tuple[ir.Protocol, int, int], dict[int, dict[int, dict[int, ir.Decision]]]] = {}
        for e in rs.nets:
            table = lpm.setdefault((e.protocol, e.port_class, e.network.version), {})
            table.setdefault(e.network.prefixlen, {})[int(e.network.network_address)] = dict(
                e.by_policy
            )
        self.nets = {k: sorted(v.items(), reverse=True) for k, v in lpm.items()}

    @classmethod
    def of(cls, rs: ir.RuleSet) -> _Index:
        hit = cls._cache.get(id(rs))
        if hit is not None and hit[0]() is rs:
            return hit[1]
        index = cls(rs)
        key = id(rs)  # the callback must not capture rs itself, or it would never die
        cls._cache[key] = (weakref.ref(rs, lambda _: cls._cache.pop(key, None)), index)
        return index


def selector_applies(sel: ir.Selector, proc: Process) -> bool:
    """All present selector fields must hold."""
    if sel.binaries and proc.binary not in sel.binaries:
        return False
    if sel.not_binaries and proc.binary in sel.not_binaries:
        return False
    if sel.uids and not any(r.first <= proc.uid <= r.last for r in sel.uids):
        return False
    if sel.cgroups:
        cg = proc.cgroup
        if cg is None or not any(c == "/" or cg == c or cg.startswith(c + "/") for c in sel.cgroups):
            return False
    return True


def _rank(action: ir.Action, mode: ir.Mode) -> int:
    if action == ir.Action.DENY:
        return _RANK_DENY if mode == ir.Mode.ENFORCE else _RANK_WOULD_DENY
    return _RANK_AUDIT if action == ir.Action.AUDIT else _RANK_ALLOW


def _combine(
    rs: ir.RuleSet, candidates: Iterable[tuple[ir.PolicyInfo, ir.Decision]]
) -> Verdict:
    """Pick the strictest; candidates come in (slot, policy index) order so the
    first of equal rank is the tie winner."""
    best: tuple[int, ir.PolicyInfo, ir.Decision] | None = None
    for policy, decision in candidates:
        rank = _rank(decision.action, policy.mode)
        if best is None or rank > best[0] or (rank == best[0] and policy.index < best[1].index):
            best = (rank, policy, decision)
    if best is None:
        return ALLOW_UNGOVERNED
    rank, policy, decision = best
    rule = policy.rules[decision.rule] if decision.rule != ir.NO_RULE else None
    return Verdict(
        action=_ACTION_NAMES[rank],
        blocked=rank == _RANK_DENY,
        alert=rank > _RANK_ALLOW,
        policy=policy.name,
        rule=rule.id if rule else None,
        severity=rule.severity.name.lower() if rule else None,
    )


def _ancestors(path: str) -> Iterable[str]:
    """Parent directories from the deepest to "/"."""
    while path != "/":
        path = path.rsplit("/", 1)[0] or "/"
        yield path


def _stricter(a: ir.Decision | None, b: ir.Decision) -> ir.Decision:
    """Two decisions at one level: the stricter action, on a tie the earlier rule."""
    if a is None or b.action > a.action or (b.action == a.action and b.rule < a.rule):
        return b
    return a


def _file_candidates(
    rs: ir.RuleSet,
    path: str | None,
    slot: ir.Slot,
    proc: Process,
    fileless: bool = False,
    defaults: bool = True,
) -> list[tuple[ir.PolicyInfo, ir.Decision]]:
    index = _Index.of(rs)
    decided: dict[int, ir.Decision] = {}
    if path is not None:
        path = path.rstrip("/") or "/"
        # The kernel's walk: the object's own entry, then subtree roots upwards;
        # per policy the first hit decides.
        decided = dict(index.files.get((path, ir.PathKind.EXACT), {}).get(slot, {}))
    if fileless and slot == ir.Slot.EXEC:
        for p in rs.policies:
            if p.fileless is not None:
                decided[p.index] = _stricter(decided.get(p.index), p.fileless)
    if path is not None:
        for directory in _ancestors(path):
            for policy, decision in index.files.get((directory, ir.PathKind.SUBTREE), {}).get(
                slot, {}
            ).items():
                decided.setdefault(policy, decision)
    out = []
    for p in rs.policies:
        if not selector_applies(p.selector, proc):
            continue
        found = decided.get(p.index)
        if found is not None:
            out.append((p, found))
        elif defaults:
            out.append((p, ir.Decision(p.default_file[slot], ir.NO_RULE)))
    return out


def evaluate_exec(
    rs: ir.RuleSet, path: str | None, proc: Process, fileless: bool = False, mapping: bool = False
) -> Verdict:
    """Verdict for executing the file at `path` (its real, absolute path).

    Args:
        path: None for a file that never had a name (memfd, O_TMPFILE): no
            path or prefix rule can match it. A deleted file keeps its last
            path: rules on it and its directories still apply.
        fileless: the file has no name in any directory (`fileless: true`).
        mapping: mapped executable (mmap/mprotect PROT_EXEC) rather than
            exec'd: only rules that name the file decide, never a default
            (every process maps libraries no rule names).
    """
    return _combine(rs, _file_candidates(rs, path, ir.Slot.EXEC, proc, fileless, defaults=not mapping))


def evaluate_open(
    rs: ir.RuleSet, path: str, access: Iterable[str], proc: Process
) -> Verdict:
    """Verdict for opening `path` for `access` ("read" and/or "write"); with
    both, each slot is judged and the stricter result wins."""
    slots = sorted({ir.Slot[a.upper()] for a in access})
    if not slots:
        raise ValueError("open needs at least one of read, write")
    candidates = [c for slot in slots for c in _file_candidates(rs, path, slot, proc)]
    return _combine(rs, candidates)


def evaluate_connect(
    rs: ir.RuleSet,
    addr: str | IPAddress,
    port: int,
    protocol: ir.Protocol | str,
    proc: Process,
) -> Verdict:
    """Verdict for connecting (or sending) to addr:port over protocol, from an
    unbound socket: 0.0.0.0 and :: are judged as the loopback address they
    reach (see `reached_address`)."""
    if isinstance(protocol, str):
        protocol = ir.Protocol[protocol.upper()]
    if not 0 <= port <= 65535:
        raise ValueError(f"port {port} is out of range 0..65535")
    ip = reached_address(ipaddress.ip_address(addr) if isinstance(addr, str) else addr)
    index = _Index.of(rs)
    port_class = bisect.bisect_right(index.port_starts, port) - 1
    by_policy: dict[int, ir.Decision] = {}
    host_bits = ip.max_prefixlen
    value = int(ip)
    for plen, table in index.nets.get((protocol, port_class, ip.version), []):
        shift = host_bits - plen
        found = table.get((value >> shift) << shift)
        if found is not None:
            by_policy = found
            break
    return _combine(
        rs,
        [
            (p, by_policy.get(p.index) or ir.Decision(p.default_connect, ir.NO_RULE))
            for p in rs.policies
            if selector_applies(p.selector, proc)
        ],
    )


def parse_endpoint(text: str) -> tuple[IPAddress, int, ir.Protocol]:
    """Parse "ADDR:PORT[/tcp|/udp]", IPv6 as "[ADDR]:PORT"; protocol defaults to tcp.

    Raises:
        ValueError: with a message naming what is wrong.
    """
    rest, _, proto = text.partition("/")
    protocol = ir.Protocol.TCP
    if proto:
        if proto.lower() not in ("tcp", "udp"):
            raise ValueError(f"{text!r}: protocol must be tcp or udp, not {proto!r}")
        protocol = ir.Protocol[proto.upper()]
    if rest.startswith("["):
        host, sep, port_text = rest[1:].partition("]:")
    else:
        host, sep, port_text = rest.rpartition(":")
        if ":" in host:
            raise ValueError(f"{text!r}: write IPv6 addresses as [ADDR]:PORT")
    if not sep or not port_text.isdigit():
        raise ValueError(f"{text!r}: expected ADDR:PORT[/tcp|/udp] or [ADDR]:PORT")
    port = int(port_text)
    if port > 65535:
        raise ValueError(f"{text!r}: port {port} is out of range 0..65535")
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{text!r}: {host!r} is not an IP address") from None
    return addr, port, protocol
