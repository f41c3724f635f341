"""The libbpf layer against the real kernel: load, map verbs, pins, ring
buffer, and the generation switch, driven in-process with a hand-built
RuleSet so that each verb is seen to work on its own."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

import pytest

from sentinel.compiler.ir import (
    Action, Decision, FileEntry, Mode, Operation, PathKind, PolicyInfo, RuleInfo, RuleSet, Selector,
    Severity, Slot, SlotDecisions,
)
from sentinel.errors import KernelError
from sentinel.kernel import abi, pins
from sentinel.kernel.encode import FileIdentity, encode_ruleset, file_key
from sentinel.bpf import OBJECT_PATH
from sentinel.kernel.objects import PROGRAMS, Enforcer, open_pinned, unload_all
from sentinel.kernel.probe import active_lsms

# The ctypes layer over libbpf does not depend on the enforcing mechanism.
pytestmark = [pytest.mark.kernel, pytest.mark.one_config]


def mechanism() -> str:
    return "bpf-lsm" if "bpf" in (active_lsms() or []) else "fmod_ret"


def deny_read(path: Path, audit: bool = False) -> RuleSet:
    pol = PolicyInfo(
        index=0, name="p", mode=Mode.AUDIT if audit else Mode.ENFORCE, selector=Selector(),
        default_file=(Action.ALLOW, Action.ALLOW, Action.ALLOW), default_connect=Action.ALLOW,
        rules=(RuleInfo("r", Operation.OPEN, Action.DENY, Severity.HIGH),),
    )
    entry = FileEntry(str(path), PathKind.EXACT, (SlotDecisions(Slot.READ, ((0, Decision(Action.DENY, 0)),)),))
    return RuleSet(policies=(pol,), files=(entry,), port_classes=(), nets=())


def readable(path: Path) -> bool:
    try:
        path.read_bytes()
        return True
    except PermissionError:
        return False


@pytest.fixture
def enforcer() -> Enforcer:
    enf = Enforcer.load(mechanism())
    yield enf
    enf.close()
    unload_all()


def test_map_verbs(enforcer: Enforcer, tmpfs: Path) -> None:
    files = enforcer.maps["sn_files"]
    key = abi.sn_file_key(ino=42, dev=7, kind=0, gen=1)
    val = abi.sn_file_val()
    val.deny[1] = 5
    assert files.lookup(key) is None
    files.update(key, val)
    got = abi.sn_file_val.from_buffer_copy(files.lookup(key) or b"")
    assert got.deny[1] == 5
    assert [k for k, _ in files.items()] == [bytes(key)]
    assert files.delete(key) is True
    assert files.delete(key) is False
    with pytest.raises(KernelError) as exc:
        files.update(b"\0" * ctypes.sizeof(abi.sn_file_key), b"\0" * 3)
    assert "expected" in str(exc.value)


def test_batch_verbs_on_hash_and_lpm_maps(enforcer: Enforcer) -> None:
    # Loads write tens of thousands of entries: batched where the map type
    # takes batches (hash), entry by entry where it does not (LPM trie).
    files = enforcer.maps["sn_files"]
    entries = {}
    for i in range(5000):  # more than one BATCH_CHUNK
        val = abi.sn_file_val()
        val.deny[0] = i
        entries[bytes(abi.sn_file_key(ino=i + 1, dev=7, kind=0, gen=1))] = bytes(val)
    files.update_many(entries)
    keys = files.all_keys()
    assert sorted(keys) == sorted(entries)
    assert files.lookup(list(entries)[4321]) == entries[list(entries)[4321]]
    files.delete_many(keys[:4500])
    assert sorted(files.all_keys()) == sorted(keys[4500:])
    files.delete_many(keys[4500:])
    assert files.all_keys() == []

    net4 = enforcer.maps["sn_net4"]
    nets = {}
    for i in range(300):
        key = abi.sn_net4_key(prefixlen=32 + 24, gen=1, protocol=6)
        key.addr[:] = [10, i // 256, i % 256, 0]
        nets[bytes(key)] = bytes(abi.sn_net_val(match=1, deny=1))
    net4.update_many(nets)
    assert sorted(net4.all_keys()) == sorted(nets)
    net4.delete_many(list(nets))
    assert net4.all_keys() == []


def test_resolver_session_answers_as_stat_on_tmpfs(enforcer: Enforcer, tmpfs: Path) -> None:
    # tmpfs is a file system where stat() is the hook's view: after the first
    # probe agreed, stat() alone answers; the answers must be the same.
    paths = []
    for i in range(5):
        p = tmpfs / f"r{i}"
        p.write_text("x")
        paths.append(p)
    resolver = enforcer.resolver
    with resolver.session():
        got = [resolver(str(p)) for p in paths]
        with pytest.raises(FileNotFoundError):
            resolver(str(tmpfs / "missing"))
    assert got == [[FileIdentity.from_path(str(p))] for p in paths]
    # The session restored sn_state: no probing left on, same generation.
    state = abi.sn_state.from_buffer_copy(enforcer.maps["sn_state"].lookup(b"\0" * 4) or b"")
    assert (state.gen, state.probe_tgid) == (enforcer.current_gen(), 0)


def test_deny_event_and_generation_switch(enforcer: Enforcer, tmpfs: Path) -> None:
    secret, other = tmpfs / "secret", tmpfs / "other"
    secret.write_text("x")
    other.write_text("y")
    records: list[bytes] = []
    ring = enforcer.ring_buffer(records.append)

    enc = enforcer.apply(lambda gen: encode_ruleset(deny_read(secret), gen))
    assert enforcer.current_gen() == enc.gen
    assert not readable(secret)
    assert readable(other)
    ring.poll(500)
    ev = abi.sn_event.from_buffer_copy(records[0])
    assert (ev.pid, ev.blocked, ev.action, ev.rule) == (os.getpid(), 1, abi.SnAction.DENY, 0)
    assert ev.path.decode() == str(secret)
    ident = FileIdentity.from_path(str(secret))
    assert (ev.dev, ev.ino) == (ident.dev, ident.ino)

    # Switch to an audit-mode generation: the read passes and is reported.
    enc2 = enforcer.apply(lambda gen: encode_ruleset(deny_read(secret, audit=True), gen))
    assert enc2.gen != enc.gen
    assert readable(secret)
    ring.poll(500)
    ev2 = abi.sn_event.from_buffer_copy(records[-1])
    assert (ev2.blocked, ev2.action) == (0, abi.SnAction.DENY)
    # The old generation's entries are gone.
    stale = [k for k in enforcer.maps["sn_files"].keys() if k[abi.sn_file_key.gen.offset] == enc.gen]
    assert stale == []
    assert enforcer.counters()["denied"] >= 1
    ring.close()


def test_poll_is_cut_short_after_the_record_in_hand(enforcer: Enforcer, tmpfs: Path) -> None:
    # What lets the daemon serve a reload ahead of an alert backlog.
    watched = tmpfs / "watched"
    watched.write_text("x")
    records: list[bytes] = []
    limit = [3]
    ring = enforcer.ring_buffer(records.append, cut_short=lambda: len(records) >= limit[0])
    enforcer.apply(lambda gen: encode_ruleset(deny_read(watched, audit=True), gen))
    for _ in range(10):
        assert readable(watched)
    assert ring.poll(500) == 3
    assert len(records) == 3
    limit[0] = 1_000
    assert ring.consume() == 7  # the rest were left in the ring, not lost
    assert len(records) == 10
    ring.close()


def test_pins_keep_enforcing_after_close(tmpfs: Path) -> None:
    secret = tmpfs / "secret"
    secret.write_text("x")
    enf = Enforcer.load(mechanism())
    enf.apply(lambda gen: encode_ruleset(deny_read(secret), gen))
    enf.close()
    assert not readable(secret)
    assert pins.pinned_links()
    state = open_pinned()
    key = file_key(FileIdentity.from_path(str(secret)), PathKind.EXACT, 0)
    gens = {k[abi.sn_file_key.gen.offset] for k in state.maps["sn_files"].keys()}
    state.close()
    assert len(gens) == 1 and key.ino
    # A second load of the same build adopts the pinned maps and links as they are.
    links = sorted(p.name for p in pins.pinned_links())
    enf2 = Enforcer.load(mechanism())
    assert enf2.adopted
    assert not readable(secret)
    assert sorted(p.name for p in pins.pinned_links()) == links
    enf2.close()
    # An upgrade (another build of the object: here the same ELF with bytes
    # appended, which changes its build id) attaches anew, then retires the old links.
    upgraded = tmpfs / "upgraded.bpf.o"
    upgraded.write_bytes(OBJECT_PATH.read_bytes() + b"\0" * 8)
    enf3 = Enforcer.load(mechanism(), object_path=upgraded)
    assert not enf3.adopted
    assert not readable(secret)
    after = sorted(p.name for p in pins.pinned_links())
    assert len(after) == len(PROGRAMS[mechanism()]) and set(after).isdisjoint(links)  # the old links were retired
    enf3.close()
    unload_all()
    assert readable(secret)
    assert not pins.PIN_ROOT.exists()
