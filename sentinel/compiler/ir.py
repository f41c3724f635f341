"""The compiled form of a set of policies: what the kernel maps hold, by name.

One RuleSet is produced by `compiler.build.build_ruleset()` and consumed by two
readers that must agree exactly:

* `kernel/encode.py` turns it into map entries (resolving paths to inodes at
  load time), and the BPF programs look those entries up;
* `compiler/evaluate.py` simulates the very same lookups in Python, behind
  `sentinel explain` and `sentinel test`.

So the shape here is the kernel's shape: precedence inside a policy and across
policies is already folded into the entries, leaving the readers one lookup per
level of a path walk (files) or one longest-prefix lookup (network).

Everything is frozen and plain (no pydantic, no ctypes), sorted, and therefore
deterministic: the same policies always give an equal RuleSet.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from enum import IntEnum

# Limits shared with bpf/sentinel.h (checked there by tests/abi).
# Per-policy verdicts are bits of a __u64; bit 63 is the daemon's self-check canary.
MAX_POLICIES = 63
NO_RULE = 0xFFFF  # rule index meaning "the policy's default decided"


class Action(IntEnum):
    """A verdict. The numeric order is strictness: ties go to the larger value."""

    ALLOW = 1
    AUDIT = 2
    DENY = 3


class Slot(IntEnum):
    """What a file entry is consulted for. Open rules with `access: [read, write]`
    fill both READ and WRITE; an open asking for both is judged on each and the
    stricter result wins."""

    EXEC = 0
    READ = 1
    WRITE = 2


class Operation(IntEnum):
    EXEC = 0
    OPEN = 1
    CONNECT = 2


class Mode(IntEnum):
    ENFORCE = 0
    AUDIT = 1


class Severity(IntEnum):
    LOW = 0
    MEDIUM = 1
    HIGH = 2
    CRITICAL = 3


class Protocol(IntEnum):
    TCP = 6
    UDP = 17


class PathKind(IntEnum):
    """EXACT entries apply to the object itself; SUBTREE entries (from `prefixes:`)
    apply to everything strictly below the directory."""

    EXACT = 0
    SUBTREE = 1


@dataclass(frozen=True, order=True)
class Decision:
    """One policy's decision at one entry: the action and the rule that gave it."""

    action: Action
    rule: int  # index into PolicyInfo.rules


@dataclass(frozen=True)
class RuleInfo:
    """What an alert needs to name the rule that decided."""

    id: str
    operation: Operation
    action: Action
    severity: Severity


@dataclass(frozen=True)
class UidRange:
    first: int
    last: int  # inclusive


@dataclass(frozen=True)
class Selector:
    """Which processes a policy governs; empty tuples mean "no constraint".
    All present fields must hold (AND)."""

    binaries: tuple[str, ...] = ()
    not_binaries: tuple[str, ...] = ()
    uids: tuple[UidRange, ...] = ()
    cgroups: tuple[str, ...] = ()  # cgroup v2 paths, subtree included


@dataclass(frozen=True)
class PolicyInfo:
    """One loaded policy. `index` is its bit in every per-policy mask; policies are
    indexed in order of name so the numbering is deterministic."""

    index: int
    name: str
    mode: Mode
    selector: Selector
    # Default per Slot (EXEC, READ, WRITE) and for connect.
    default_file: tuple[Action, Action, Action]
    default_connect: Action
    rules: tuple[RuleInfo, ...]
    # The `fileless: true` exec rule that decides for a file with no name in
    # any directory (the strictest, then the first): it ranks with an exact
    # path entry of the object, the stricter of the two winning.
    fileless: Decision | None = None


@dataclass(frozen=True)
class SlotDecisions:
    """Per policy, the decision of the most specific rule(s) of that policy at one
    entry for one slot; policies without a rule here are absent."""

    slot: Slot
    by_policy: tuple[tuple[int, Decision], ...]  # (policy index, decision), sorted


@dataclass(frozen=True)
class FileEntry:
    """A file-system entry: an absolute, normalised path (no trailing slash except
    for "/") and whether it is the object itself or a subtree root."""

    path: str
    kind: PathKind
    slots: tuple[SlotDecisions, ...]  # sorted by slot; only slots some rule fills


@dataclass(frozen=True)
class PortClass:
    """An interval of ports that every rule treats alike. Classes partition
    0..65535 and are numbered in port order."""

    index: int
    first: int
    last: int  # inclusive


@dataclass(frozen=True)
class NetEntry:
    """A longest-prefix-match entry for connect.

    The kernel looks up (protocol, port class, address) in an LPM trie and takes
    the entry with the longest prefix. Each entry already carries, for every
    policy with an applicable rule, that policy's winning decision among its rules
    whose prefix contains this one (longest prefix, then exact port over range over
    any port, then stricter action). IPv4-mapped IPv6 destinations are looked up as
    IPv4."""

    protocol: Protocol
    port_class: int
    network: ipaddress.IPv4Network | ipaddress.IPv6Network
    by_policy: tuple[tuple[int, Decision], ...]


@dataclass(frozen=True)
class RuleSet:
    """Everything the kernel needs, compiled from a set of policies."""

    policies: tuple[PolicyInfo, ...]
    files: tuple[FileEntry, ...]  # sorted by (path, kind)
    port_classes: tuple[PortClass, ...]
    nets: tuple[NetEntry, ...]  # sorted by (protocol, port_class, family, network)
