"""RuleSet -> map entries, as bytes built with kernel/abi.py.

Paths become (dev, ino) here, at load time: the kernel matches objects, not
names. Two paths naming one object (hard links, symlinks) merge into one key,
the stricter decision winning per policy, as the evaluator would decide.
"""

from __future__ import annotations

import ctypes
import os
import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field

from sentinel.compiler.ir import Action, Decision, FileEntry, Mode, NetEntry, PathKind, RuleSet, Slot
from sentinel.errors import NotSupported
from sentinel.kernel import abi

# ir.Slot numbering equals the kernel's for files; connect is the kernel's 4th slot.
_CONNECT_SLOT = abi.SnSlot.CONNECT


@dataclass(frozen=True)
class FileIdentity:
    dev: int  # the kernel's s_dev
    ino: int

    @classmethod
    def from_path(cls, path: str) -> FileIdentity:
        """The identity of the object PATH names now, symlinks followed.
        Raises OSError when nothing is there."""
        st = os.stat(path)
        return cls(abi.kernel_dev(st.st_dev), st.st_ino)


# Paths -> the identities the kernel hooks will see for the object there.
# Raises OSError when nothing is there.
Resolver = Callable[[str], "list[FileIdentity]"]


def stat_identities(path: str) -> list[FileIdentity]:
    """stat()'s view: right on ext4, xfs and tmpfs; on overlayfs, btrfs and 9p
    the kernel sees another device, which is why the daemon resolves through
    the kernel (Enforcer.resolver) instead."""
    return [FileIdentity.from_path(path)]


@dataclass
class EncodedRuleSet:
    """Map contents for one generation, plus what could not be placed."""

    gen: int
    files: dict[bytes, bytes] = field(default_factory=dict)  # sn_files
    rule_refs: dict[bytes, bytes] = field(default_factory=dict)  # sn_rule_refs
    net4: dict[bytes, bytes] = field(default_factory=dict)  # sn_net4
    net6: dict[bytes, bytes] = field(default_factory=dict)  # sn_net6
    ports: bytes = b""
    bins: dict[bytes, bytes] = field(default_factory=dict)  # sn_bins
    cgroups: dict[bytes, bytes] = field(default_factory=dict)  # sn_cgroups
    uids: bytes = b""  # this generation's sn_uids entries, in order  # this generation's half of sn_ports (port -> class), or b"" when no connect rules
    config: bytes = b""
    unresolved: list[str] = field(default_factory=list)  # paths with no object behind them
    names: dict[tuple[int, int], str] = field(default_factory=dict)  # (dev, ino) -> the rule path resolved to it


def proc_stat_fields(pid: int) -> list[bytes]:
    """The fields of /proc/PID/stat from field 3 (state) on: index i is field i + 3."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        stat = f.read()
    # comm (field 2) may hold spaces and parentheses: split after the last ')'.
    return stat[stat.rindex(b")") + 2 :].split()


def process_start_ticks(pid: int) -> int:
    """Field 22 of /proc/PID/stat: start time after boot in clock ticks. With the
    pid it names one process for good (the kernel checks both)."""
    return int(proc_stat_fields(pid)[19])


def file_key(ident: FileIdentity, kind: PathKind, gen: int) -> abi.sn_file_key:
    return abi.sn_file_key(ino=ident.ino, dev=ident.dev, kind=int(kind), gen=gen)


def _config(rs: RuleSet, canary_tgid: int) -> abi.sn_config:
    cfg = abi.sn_config()
    for pol in rs.policies:
        bit = 1 << pol.index
        cfg.active |= bit
        if pol.mode == Mode.AUDIT:
            cfg.audit_mode |= bit
        defaults = list(pol.default_file) + [pol.default_connect]
        for slot, action in enumerate(defaults):
            if action == Action.DENY:
                cfg.default_deny[slot] |= bit
            elif action == Action.AUDIT:
                cfg.default_audit[slot] |= bit
        if pol.fileless is not None:
            cfg.fileless_match |= bit
            if pol.fileless.action == Action.DENY:
                cfg.fileless_deny |= bit
            elif pol.fileless.action == Action.AUDIT:
                cfg.fileless_audit |= bit
            cfg.fileless_rule[pol.index] = pol.fileless.rule
    if canary_tgid:
        cfg.active |= 1 << abi.CANARY_POLICY
        cfg.canary_tgid = canary_tgid
        cfg.canary_start_ticks = process_start_ticks(canary_tgid)
    return cfg


def _check_supported(rs: RuleSet) -> None:
    """Refuse more policies than the kernel's masks hold (bit 63 is the
    self-check canary), rather than load a set that would not all hold."""
    if len(rs.policies) > abi.CANARY_POLICY:
        raise NotSupported(f"{len(rs.policies)} policies loaded; the kernel takes {abi.CANARY_POLICY}")


def encode_ruleset(
    rs: RuleSet,
    gen: int,
    canary: FileIdentity | None = None,
    canary_tgid: int = 0,
    resolve: Resolver = stat_identities,
    alert_rate: int = 0,
) -> EncodedRuleSet:
    """Build the entries of generation GEN (0 or 1) for RS.

    CANARY, when given, is the self-check file: the canary policy bit denies
    reading it to CANARY_TGID only. RESOLVE turns rule paths into identities.
    """
    _check_supported(rs)
    out = EncodedRuleSet(gen=gen)
    vals: dict[bytes, abi.sn_file_val] = {}
    subtree_any = [0] * abi.SLOTS
    subtree_deny = [0] * abi.SLOTS
    best: dict[tuple[bytes, int, int], Decision] = {}

    placed = []
    for entry in rs.files:
        try:
            idents = resolve(entry.path)
        except OSError:
            out.unresolved.append(entry.path)
            continue
        placed += [(ident, entry) for ident in idents]
    for ident, entry in placed:
        key = bytes(file_key(ident, entry.kind, gen))
        val = vals.setdefault(key, abi.sn_file_val())
        for slot_dec in entry.slots:
            slot = int(slot_dec.slot)
            for policy, decision in slot_dec.by_policy:
                prev = best.get((key, slot, policy))
                if prev is not None and prev.action >= decision.action:
                    continue
                best[(key, slot, policy)] = decision
                bit = 1 << policy
                val.match[slot] |= bit
                val.deny[slot] &= ~bit
                val.audit[slot] &= ~bit
                if decision.action == Action.DENY:
                    val.deny[slot] |= bit
                elif decision.action == Action.AUDIT:
                    val.audit[slot] |= bit
                if entry.kind == PathKind.SUBTREE:
                    subtree_any[slot] |= bit
                    if decision.action == Action.DENY:
                        subtree_deny[slot] |= bit

    for ident, entry in placed:
        out.names.setdefault((ident.dev, ident.ino), entry.path)
    _encode_guards(rs, gen, vals, out, resolve)

    if canary is not None:
        key = bytes(file_key(canary, PathKind.EXACT, gen))
        val = vals.setdefault(key, abi.sn_file_val())
        bit = 1 << abi.CANARY_POLICY
        val.match[abi.SnSlot.READ] |= bit
        val.deny[abi.SnSlot.READ] |= bit

    for (key, slot, policy), decision in best.items():
        ref = abi.sn_rule_ref_key(slot=slot, policy=policy)
        ref.file = abi.sn_file_key.from_buffer_copy(key)
        out.rule_refs[bytes(ref)] = bytes(abi.sn_rule_ref(rule=decision.rule))
    out.files = {k: bytes(v) for k, v in sorted(vals.items())}
    _encode_nets(rs, gen, out)
    cfg = _config(rs, canary_tgid)
    cfg.alert_rate = alert_rate
    _encode_selectors(rs, gen, out, cfg, resolve)
    for slot in range(abi.SLOTS):
        cfg.subtree_any[slot] = subtree_any[slot]
        cfg.subtree_deny[slot] = subtree_deny[slot]
    _encode_subtree_devs(cfg, {ident.dev for ident, entry in placed if entry.kind == PathKind.SUBTREE})
    out.config = bytes(cfg)
    if len(out.files) * 2 > abi.MAX_FILES or len(out.rule_refs) * 2 > abi.MAX_RULE_REFS:
        raise NotSupported(
            f"{len(out.files)} file entries / {len(out.rule_refs)} rule references exceed the kernel maps' "
            f"capacity ({abi.MAX_FILES // 2} / {abi.MAX_RULE_REFS // 2} per generation)"
        )
    return out


def _encode_subtree_devs(cfg: abi.sn_config, devs: set[int]) -> None:
    """The devices subtree-rule directories are on: the kernel's walk climbs
    through any other mount without a lookup per directory. Past
    SUBTREE_DEVS devices the list is marked unknown and every mount is walked."""
    if len(devs) > abi.SUBTREE_DEVS:
        cfg.subtree_dev_count = abi.SUBTREE_DEVS + 1
        return
    cfg.subtree_dev_count = len(devs)
    for i, dev in enumerate(sorted(devs)):
        cfg.subtree_devs[i] = dev


def guard_dirs(entry: FileEntry) -> list[str]:
    """The directories whose renaming or removal would free ENTRY's name: its
    parent and every ancestor but "/", and a subtree rule's own directory."""
    out = [entry.path] if entry.kind == PathKind.SUBTREE else []
    d = posixpath.dirname(entry.path)
    while d not in ("/", ""):
        out.append(d)
        d = posixpath.dirname(d)
    return [p for p in out if p != "/"]


def _encode_guards(
    rs: RuleSet, gen: int, vals: dict[bytes, abi.sn_file_val], out: EncodedRuleSet, resolve: Resolver
) -> None:
    """GUARD entries: a read or write deny rule on a path denies renaming or
    removing the directories on the way to it (as a write), so the name the
    rule was written for cannot be moved away and recreated unprotected."""
    by_dir: dict[str, dict[int, int]] = {}
    for entry in rs.files:
        denies = sorted(
            {
                (policy, decision.rule)
                for sd in entry.slots
                if sd.slot in (Slot.READ, Slot.WRITE)
                for policy, decision in sd.by_policy
                if decision.action == Action.DENY
            }
        )
        if not denies:
            continue
        for d in guard_dirs(entry):
            rules = by_dir.setdefault(d, {})
            for policy, rule in denies:
                rules.setdefault(policy, rule)
    for d, rules in sorted(by_dir.items()):
        try:
            idents = resolve(d)
        except OSError:
            continue  # nothing there to rename; the nearest existing ancestor is guarded
        for ident in idents:
            out.names.setdefault((ident.dev, ident.ino), d)
            key = abi.sn_file_key(ino=ident.ino, dev=ident.dev, kind=int(abi.SnPathKind.GUARD), gen=gen)
            val = vals.setdefault(bytes(key), abi.sn_file_val())
            for policy, rule in rules.items():
                bit = 1 << policy
                if val.match[Slot.WRITE] & bit:
                    continue
                val.match[Slot.WRITE] |= bit
                val.deny[Slot.WRITE] |= bit
                ref = abi.sn_rule_ref_key(file=key, slot=int(Slot.WRITE), policy=policy)
                out.rule_refs[bytes(ref)] = bytes(abi.sn_rule_ref(rule=rule))


def _net_key(entry: NetEntry, gen: int) -> ctypes.Structure:
    """The LPM key: gen, protocol and port class always match whole; then the prefix."""
    net = entry.network
    key: ctypes.Structure
    key = abi.sn_net4_key() if net.version == 4 else abi.sn_net6_key()
    key.prefixlen = 32 + net.prefixlen
    key.gen = gen
    key.protocol = int(entry.protocol)
    key.port_class[0] = entry.port_class >> 8
    key.port_class[1] = entry.port_class & 0xFF
    packed = net.network_address.packed
    for i, byte in enumerate(packed):
        key.addr[i] = byte
    return key


def _encode_nets(rs: RuleSet, gen: int, out: EncodedRuleSet) -> None:
    if not rs.nets:
        return
    for entry in rs.nets:
        val = abi.sn_net_val()
        for i in range(abi.MAX_POLICIES):
            val.rule[i] = abi.NO_RULE
        for policy, decision in entry.by_policy:
            bit = 1 << policy
            val.match |= bit
            if decision.action == Action.DENY:
                val.deny |= bit
            elif decision.action == Action.AUDIT:
                val.audit |= bit
            val.rule[policy] = decision.rule
        target = out.net4 if entry.network.version == 4 else out.net6
        target[bytes(_net_key(entry, gen))] = bytes(val)
    classes = bytearray(4 * abi.PORTS)
    for pc in rs.port_classes:
        value = pc.index.to_bytes(4, "little")
        for port in range(pc.first, pc.last + 1):
            classes[4 * port : 4 * port + 4] = value
    out.ports = bytes(classes)
    if len(out.net4) * 2 > abi.MAX_NETS or len(out.net6) * 2 > abi.MAX_NETS:
        raise NotSupported(f"{len(out.net4)} IPv4 / {len(out.net6)} IPv6 connect entries exceed the kernel maps' "
                           f"capacity ({abi.MAX_NETS // 2} per family per generation)")


CGROUP_ROOT = "/sys/fs/cgroup"


def uid_bounds(rs: RuleSet) -> list[tuple[int, int]]:
    """Sorted (first uid, policy mask) intervals covering 0..2^32-1, for the
    policies with a uid selector; adjacent equal masks merged."""
    edges = {0}
    for pol in rs.policies:
        for r in pol.selector.uids:
            edges.add(r.first)
            if r.last + 1 <= 0xFFFFFFFF:
                edges.add(r.last + 1)
    out: list[tuple[int, int]] = []
    for first in sorted(edges):
        mask = 0
        for pol in rs.policies:
            if any(r.first <= first <= r.last for r in pol.selector.uids):
                mask |= 1 << pol.index
        if not out or out[-1][1] != mask:
            out.append((first, mask))
    return out


def _encode_selectors(rs: RuleSet, gen: int, out: EncodedRuleSet, cfg: abi.sn_config, resolve: Resolver) -> None:
    bins: dict[bytes, abi.sn_bin_val] = {}
    cgroups: dict[bytes, int] = {}
    for pol in rs.policies:
        bit = 1 << pol.index
        sel = pol.selector
        if sel.binaries:
            cfg.sel_bin |= bit
        if sel.not_binaries:
            cfg.sel_notbin_any |= bit
        if sel.uids:
            cfg.sel_uid |= bit
        if sel.cgroups:
            cfg.sel_cgroup |= bit
        for path, listed_in in [(p, True) for p in sel.binaries] + [(p, False) for p in sel.not_binaries]:
            try:
                idents = resolve(path)
            except OSError:
                out.unresolved.append(path)
                continue
            for ident in idents:
                val = bins.setdefault(bytes(file_key(ident, PathKind.EXACT, gen)), abi.sn_bin_val())
                if listed_in:
                    val.in_ |= bit
                else:
                    val.notin |= bit
        for cg in sel.cgroups:
            try:
                cg_id = os.stat(CGROUP_ROOT + cg.rstrip("/")).st_ino if cg != "/" else os.stat(CGROUP_ROOT).st_ino
            except OSError:
                out.unresolved.append(f"cgroup:{cg}")
                continue
            key = bytes(abi.sn_cgroup_key(id=cg_id, gen=gen))
            cgroups[key] = cgroups.get(key, 0) | bit
    out.bins = {k: bytes(v) for k, v in sorted(bins.items())}
    out.cgroups = {k: v.to_bytes(8, "little") for k, v in sorted(cgroups.items())}
    if cfg.sel_uid:
        bounds = uid_bounds(rs)
        if len(bounds) > abi.MAX_UID_BOUNDS:
            raise NotSupported(f"{len(bounds)} uid intervals exceed the kernel's {abi.MAX_UID_BOUNDS}")
        out.uids = b"".join(bytes(abi.sn_uid_bound(first=f, mask=m)) for f, m in bounds)
        cfg.uid_count = len(bounds)
    if (len(out.bins) + len(out.cgroups)) * 2 > abi.MAX_SELECTORS:
        raise NotSupported(f"{len(out.bins)} binaries / {len(out.cgroups)} cgroups exceed the kernel's selector maps")
