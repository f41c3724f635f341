"""kernel/encode.py: the RuleSet -> map bytes step, on the host (no BPF)."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import pytest

from sentinel.compiler.build import build_ruleset
from sentinel.compiler.ir import (
    Action, Decision, FileEntry, Mode, NetEntry, Operation, PathKind, PolicyInfo, Protocol, RuleInfo, RuleSet,
    Selector, Severity, Slot, SlotDecisions, UidRange,
)
from sentinel.errors import NotSupported
from sentinel.kernel import abi
from sentinel.kernel.encode import FileIdentity, encode_ruleset, file_key, uid_bounds


def pol(index: int, name: str = "p", mode: Mode = Mode.ENFORCE, selector: Selector = Selector(),
        defaults: tuple[Action, Action, Action] = (Action.ALLOW,) * 3, connect: Action = Action.ALLOW) -> PolicyInfo:
    rules = tuple(RuleInfo(f"r{i}", Operation.OPEN, Action.DENY, Severity.MEDIUM) for i in range(3))
    return PolicyInfo(index, name, mode, selector, defaults, connect, rules)


def entry(path: Path, kind: PathKind, slot: Slot, *decisions: tuple[int, Action, int]) -> FileEntry:
    return FileEntry(str(path), kind, (SlotDecisions(slot, tuple((p, Decision(a, r)) for p, a, r in decisions)),))


def test_kernel_dev_is_major_shift_20_or_minor() -> None:
    st_dev = os.makedev(8, 3)
    assert abi.kernel_dev(st_dev) == (8 << 20) | 3


def test_file_masks_rule_refs_and_config(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_text("x")
    rs = RuleSet(
        policies=(pol(0, "a"), pol(1, "b", Mode.AUDIT, defaults=(Action.DENY, Action.AUDIT, Action.ALLOW))),
        files=(entry(f, PathKind.EXACT, Slot.READ, (0, Action.DENY, 2), (1, Action.AUDIT, 0)),
               entry(tmp_path, PathKind.SUBTREE, Slot.WRITE, (1, Action.DENY, 1))),
        port_classes=(), nets=(),
    )
    enc = encode_ruleset(rs, gen=1)
    key = bytes(file_key(FileIdentity.from_path(str(f)), PathKind.EXACT, 1))
    val = abi.sn_file_val.from_buffer_copy(enc.files[key])
    assert (val.match[Slot.READ], val.deny[Slot.READ], val.audit[Slot.READ]) == (0b11, 0b01, 0b10)
    ref = abi.sn_rule_ref_key(slot=int(Slot.READ), policy=0)
    ref.file = abi.sn_file_key.from_buffer_copy(key)
    assert abi.sn_rule_ref.from_buffer_copy(enc.rule_refs[bytes(ref)]).rule == 2
    cfg = abi.sn_config.from_buffer_copy(enc.config)
    assert cfg.active == 0b11 and cfg.audit_mode == 0b10
    assert cfg.default_deny[abi.SnSlot.EXEC] == 0b10 and cfg.default_audit[abi.SnSlot.READ] == 0b10
    assert cfg.subtree_any[Slot.WRITE] == 0b10 and cfg.subtree_deny[Slot.WRITE] == 0b10
    assert all(k[abi.sn_file_key.gen.offset] == 1 for k in enc.files)


def test_two_names_of_one_object_merge_to_the_stricter(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_text("x")
    (tmp_path / "link").symlink_to(f)
    rs = RuleSet(
        policies=(pol(0),),
        files=(entry(tmp_path / "link", PathKind.EXACT, Slot.READ, (0, Action.AUDIT, 0)),
               entry(f, PathKind.EXACT, Slot.READ, (0, Action.DENY, 1))),
        port_classes=(), nets=(),
    )
    enc = encode_ruleset(rs, gen=0)
    [(key, raw)] = own_entries(enc.files).items()
    val = abi.sn_file_val.from_buffer_copy(raw)
    assert (val.deny[Slot.READ], val.audit[Slot.READ]) == (1, 0)
    [ref] = own_entries(enc.rule_refs).values()
    assert abi.sn_rule_ref.from_buffer_copy(ref).rule == 1


def test_missing_paths_are_reported_not_fatal(tmp_path: Path) -> None:
    rs = RuleSet(policies=(pol(0),), files=(entry(tmp_path / "nope", PathKind.EXACT, Slot.READ, (0, Action.DENY, 0)),),
                 port_classes=(), nets=())
    enc = encode_ruleset(rs, gen=0)
    assert own_entries(enc.files) == {} and enc.unresolved == [str(tmp_path / "nope")]


def test_canary_is_policy_63_for_the_daemon_only(tmp_path: Path) -> None:
    c = tmp_path / "canary"
    c.write_text("c")
    enc = encode_ruleset(RuleSet((pol(0),), (), (), ()), gen=0, canary=FileIdentity.from_path(str(c)), canary_tgid=42)
    cfg = abi.sn_config.from_buffer_copy(enc.config)
    assert cfg.canary_tgid == 42 and cfg.active == (1 | 1 << 63)
    [raw] = enc.files.values()
    assert abi.sn_file_val.from_buffer_copy(raw).deny[abi.SnSlot.READ] == 1 << 63


def test_net_keys_and_port_classes() -> None:
    from sentinel.compiler.ir import PortClass

    net = NetEntry(Protocol.UDP, 1, ipaddress.ip_network("10.1.0.0/16"), ((0, Decision(Action.DENY, 2)),))
    net6 = NetEntry(Protocol.TCP, 0, ipaddress.ip_network("2001:db8::/32"), ((0, Decision(Action.AUDIT, 1)),))
    classes = (PortClass(0, 0, 52), PortClass(1, 53, 53), PortClass(2, 54, 65535))
    enc = encode_ruleset(RuleSet((pol(0),), (), classes, (net, net6)), gen=1)
    [(k4, v4)] = enc.net4.items()
    key = abi.sn_net4_key.from_buffer_copy(k4)
    assert (key.prefixlen, key.gen, key.protocol, bytes(key.port_class), bytes(key.addr)) == (
        48, 1, 17, b"\x00\x01", bytes([10, 1, 0, 0]))
    val = abi.sn_net_val.from_buffer_copy(v4)
    assert (val.match, val.deny, val.audit, val.rule[0], val.rule[1]) == (1, 1, 0, 2, abi.NO_RULE)
    [k6] = enc.net6
    assert abi.sn_net6_key.from_buffer_copy(k6).prefixlen == 64
    ports = enc.ports
    cls = lambda port: int.from_bytes(ports[4 * port: 4 * port + 4], "little")  # noqa: E731
    assert (cls(0), cls(52), cls(53), cls(54), cls(65535)) == (0, 0, 1, 2, 2)


def test_uid_bounds_are_disjoint_sorted_and_merged() -> None:
    a = pol(0, "a", selector=Selector(uids=(UidRange(1000, 1999), UidRange(3000, 3000))))
    b = pol(1, "b", selector=Selector(uids=(UidRange(1500, 4294967294),)))
    bounds = uid_bounds(RuleSet((a, b), (), (), ()))
    assert bounds == [(0, 0), (1000, 1), (1500, 3), (2000, 2), (3000, 3), (3001, 2), (4294967295, 0)]


def test_selectors_fill_maps_and_masks(tmp_path: Path) -> None:
    exe = tmp_path / "tool"
    exe.write_text("")
    sel = Selector(binaries=(str(exe),), not_binaries=(str(tmp_path / "missing"),), uids=(UidRange(5, 6),), cgroups=("/",))
    enc = encode_ruleset(RuleSet((pol(0, selector=sel),), (), (), ()), gen=0)
    cfg = abi.sn_config.from_buffer_copy(enc.config)
    assert (cfg.sel_bin, cfg.sel_notbin_any, cfg.sel_uid, cfg.sel_cgroup) == (1, 1, 1, 1)
    [raw] = enc.bins.values()
    assert abi.sn_bin_val.from_buffer_copy(raw).in_ == 1
    assert str(tmp_path / "missing") in enc.unresolved
    assert cfg.uid_count == 3 and len(enc.uids) == 3 * 16
    assert len(enc.cgroups) == (1 if Path("/sys/fs/cgroup").exists() else 0)


def test_compiled_policies_encode_end_to_end(tmp_path: Path) -> None:
    from sentinel.policy.loader import load_policies

    secret = tmp_path / "secret"
    secret.write_text("s")
    doc = tmp_path / "p.yaml"
    doc.write_text(f"""apiVersion: sentinel/v1
kind: Policy
metadata: {{name: p}}
spec:
  rules:
    - {{id: r, operation: open, action: deny, match: {{paths: [{secret}]}}}}
""")
    enc = encode_ruleset(build_ruleset(load_policies([doc])), gen=0)
    [raw] = own_entries(enc.files).values()
    val = abi.sn_file_val.from_buffer_copy(raw)
    assert val.deny[Slot.READ] == 1 and val.deny[Slot.WRITE] == 1


def test_capacity_is_checked_before_loading(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    files = []
    for i in range(3):
        (tmp_path / str(i)).write_text("")
        files.append(entry(tmp_path / str(i), PathKind.EXACT, Slot.READ, (0, Action.DENY, 0)))
    monkeypatch.setattr(abi, "MAX_FILES", 4)
    with pytest.raises(NotSupported, match="capacity"):
        encode_ruleset(RuleSet((pol(0),), tuple(files), (), ()), gen=0)


def test_process_start_ticks_matches_proc_stat_field_22() -> None:
    from sentinel.kernel.encode import process_start_ticks

    fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    assert process_start_ticks(os.getpid()) == int(fields[19])


def own_entries(entries: dict[bytes, bytes]) -> dict[bytes, bytes]:
    """sn_files / sn_rule_refs entries of rule objects, without GUARD entries."""
    return {k: v for k, v in entries.items() if k[abi.sn_file_key.kind.offset] != abi.SnPathKind.GUARD}


def test_deny_rules_guard_the_directories_on_the_way(tmp_path: Path) -> None:
    d = tmp_path / "a" / "b"
    d.mkdir(parents=True)
    f = d / "secret"
    f.write_text("s")
    rs = RuleSet(
        policies=(pol(0), pol(1)),
        files=(entry(f, PathKind.EXACT, Slot.READ, (0, Action.DENY, 3)),
               entry(tmp_path / "a", PathKind.SUBTREE, Slot.WRITE, (1, Action.AUDIT, 0))),
        port_classes=(), nets=(),
    )
    enc = encode_ruleset(rs, gen=1)
    guards = {k: abi.sn_file_val.from_buffer_copy(v) for k, v in enc.files.items()
              if k[abi.sn_file_key.kind.offset] == abi.SnPathKind.GUARD}
    idents = {(abi.sn_file_key.from_buffer_copy(k).dev, abi.sn_file_key.from_buffer_copy(k).ino) for k in guards}
    # every ancestor of the denied file but "/", and nothing for the audit-only subtree rule's policy
    expected = {(FileIdentity.from_path(str(p)).dev, FileIdentity.from_path(str(p)).ino)
                for p in [d, *d.parents] if str(p) != "/"}
    assert idents == expected
    assert all((v.match[Slot.WRITE], v.deny[Slot.WRITE]) == (1, 1) for v in guards.values())
    refs = [abi.sn_rule_ref.from_buffer_copy(v).rule for k, v in enc.rule_refs.items()
            if k[abi.sn_file_key.kind.offset] == abi.SnPathKind.GUARD]
    assert refs and set(refs) == {3}
    assert enc.names[(FileIdentity.from_path(str(d)).dev, FileIdentity.from_path(str(d)).ino)] == str(d)


def test_subtree_devices_are_listed_for_the_walk(tmp_path: Path) -> None:
    # The kernel's walk skips the directories of mounts whose device holds no
    # subtree-rule directory; exact rules do not count.
    d = tmp_path / "d"
    d.mkdir()
    f = tmp_path / "f"
    f.write_text("x")
    only_exact = RuleSet(policies=(pol(0),), files=(entry(f, PathKind.EXACT, Slot.READ, (0, Action.DENY, 0)),),
                         port_classes=(), nets=())
    cfg = abi.sn_config.from_buffer_copy(encode_ruleset(only_exact, gen=0).config)
    assert cfg.subtree_dev_count == 0

    with_subtree = RuleSet(policies=(pol(0),), files=(entry(d, PathKind.SUBTREE, Slot.READ, (0, Action.DENY, 0)),),
                           port_classes=(), nets=())
    cfg = abi.sn_config.from_buffer_copy(encode_ruleset(with_subtree, gen=0).config)
    assert (cfg.subtree_dev_count, cfg.subtree_devs[0]) == (1, FileIdentity.from_path(str(d)).dev)

    # More devices than the kernel can list: marked unknown, nothing skipped.
    many = {str(tmp_path / f"s{i}"): FileIdentity(dev=100 + i, ino=5) for i in range(abi.SUBTREE_DEVS + 1)}
    files = tuple(entry(Path(p), PathKind.SUBTREE, Slot.READ, (0, Action.DENY, 0)) for p in many)
    cfg = abi.sn_config.from_buffer_copy(encode_ruleset(
        RuleSet(policies=(pol(0),), files=files, port_classes=(), nets=()),
        gen=0, resolve=lambda p: [many[p]] if p in many else [FileIdentity.from_path(p)]).config)
    assert cfg.subtree_dev_count > abi.SUBTREE_DEVS
