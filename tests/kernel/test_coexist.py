"""Sentinel shares its hooks with another BPF-LSM user (issue 5, item 5).

systemd's RestrictFileSystems, for one, attaches its own BPF-LSM program to
file_open. Programs on one hook run as a chain, so each must return an earlier
program's denial unchanged and must not rely on running first. The other
program here (other_lsm.bpf.c, built by the test) denies opening, unlinking
and renaming file B; sentinel's policy denies file A. With the other attached
before the daemon starts and, in a second phase, attached again after it:
A is denied with sentinel's alert and not by the other, B is denied by the
other and sentinel neither allows it nor alerts on it, and C is untouched by
both. Open, and two of the path_* name hooks (unlink, rename).

Where BPF-LSM is not in the active LSM list an lsm/ program attaches but never
runs, so there the other program uses its fmod_ret/security_* entry points,
as sentinel itself does: the same scenario, the same assertions.

One daemon start serves both phases (a start costs ~30 s under emulation).

What this cannot show: on x86-64 the trampoline ends the chain at the first
non-zero return, so no program ever sees a non-zero `ret`, and an entry point
that ignored it passes here too (measured: with the ten path_* programs'
check removed, this test still passed in both configurations).
tests/abi/test_hook_chain.py checks the sources for that instead.
"""

from __future__ import annotations

import errno
import os
import struct
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sentinel.kernel import abi
from sentinel.kernel.libbpf import BpfObject, Link
from sentinel.kernel.probe import active_lsms
from tests.kernel.conftest import REPO, Daemon, start_daemon

pytestmark = pytest.mark.kernel

POLICY = """\
apiVersion: sentinel/v1
kind: Policy
metadata:
  name: coexist
spec:
  rules:
    - id: file-a
      operation: open
      action: deny
      severity: high
      match:
        paths: [{a}]
"""


class OtherLsm:
    """other_lsm.bpf.c loaded through sentinel's libbpf layer: one flavour's
    programs (lsm or fmr), attached and detached as a whole."""

    def __init__(self, obj: Path, flavour: str) -> None:
        self.obj = BpfObject(str(obj))
        self.programs = [p for name, p in self.obj.programs.items() if name.startswith(f"ot_{flavour}_")]
        for p in self.obj.programs.values():
            p.set_autoload(p in self.programs)
        self.obj.load()
        self.links: list[Link] = []

    def deny(self, path: Path) -> None:
        st = os.stat(path)
        key = struct.pack("<QII", st.st_ino, abi.kernel_dev(st.st_dev), 0)
        self.obj.maps["ot_deny"].update(key, struct.pack("<I", 1))

    def denied(self) -> int:
        raw = self.obj.maps["ot_denied"].lookup(struct.pack("<I", 0))
        assert raw is not None
        return int.from_bytes(raw[:8], "little")

    def attach(self) -> None:
        self.links = [p.attach() for p in self.programs]

    def detach(self) -> None:
        for link in self.links:
            link.close()  # not pinned: this detaches it
        self.links = []

    def close(self) -> None:
        self.detach()
        self.obj.close()


@pytest.fixture
def other(tmpfs: Path) -> Iterator[OtherLsm]:
    obj = tmpfs / "other_lsm.bpf.o"
    subprocess.run(
        ["clang", "-g", "-O2", "-target", "bpf", "-D__TARGET_ARCH_x86", "-Wall", "-Werror",
         "-I", str(REPO / "bpf"), "-c", str(Path(__file__).with_name("other_lsm.bpf.c")), "-o", str(obj)],
        check=True,
    )
    flavour = "lsm" if "bpf" in (active_lsms() or []) else "fmr"
    o = OtherLsm(obj, flavour)
    yield o
    o.close()


def eperm(fn: Callable[..., object], *args: object) -> bool:
    """True when FN(*ARGS) fails with EPERM; False when it succeeds."""
    try:
        fn(*args)
    except PermissionError as exc:
        assert exc.errno == errno.EPERM, exc
        return True
    return False


def read(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def alerts_on(daemon: Daemon, path: Path, via: str | None) -> list[dict[str, Any]]:
    return [a for a in daemon.events() if a["file"]["path"] == str(path) and a["file"].get("via", "open") == via]


def denied_by_sentinel(daemon: Daemon, other: OtherLsm, path: Path, via: str, op: Callable[[], object]) -> None:
    """OP fails with EPERM, sentinel reports it (one more blocked alert on
    PATH via VIA), and the other program had no part in it."""
    before, other_before = len(alerts_on(daemon, path, via)), other.denied()
    assert eperm(op), f"{via} {path} was allowed"
    deadline = time.monotonic() + 30
    while len(alerts := alerts_on(daemon, path, via)) <= before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(alerts) == before + 1, (via, path, daemon.events())
    a = alerts[-1]
    assert a["event"]["action"] == "deny" and a["event"]["outcome"] == "blocked", a
    assert a["rule"]["id"] == "file-a" and a["process"]["pid"] == os.getpid(), a
    assert other.denied() == other_before


def denied_by_other(other: OtherLsm, via: str, op: Callable[[], object]) -> None:
    before = other.denied()
    assert eperm(op), f"{via} of the other program's file was allowed"
    assert other.denied() == before + 1


def check_both_verdicts(daemon: Daemon, other: OtherLsm, root: Path) -> None:
    a, b, c = root / "a", root / "b", root / "c"
    # open
    denied_by_sentinel(daemon, other, a, "open", lambda: read(a))
    denied_by_other(other, "open", lambda: read(b))
    assert read(c) == b"c\n"
    # path_unlink
    denied_by_sentinel(daemon, other, a, "unlink", lambda: os.unlink(a))
    denied_by_other(other, "unlink", lambda: os.unlink(b))
    # path_rename
    denied_by_sentinel(daemon, other, a, "rename", lambda: os.rename(a, root / "a-moved"))
    denied_by_other(other, "rename", lambda: os.rename(b, root / "b-moved"))
    assert a.exists() and b.exists() and not (root / "a-moved").exists() and not (root / "b-moved").exists()
    # Negative control: neither program stops anything on C.
    denied = other.denied()
    os.rename(c, root / "c-moved")
    os.rename(root / "c-moved", c)
    (root / "c-link").write_text("x")
    os.unlink(root / "c-link")
    assert other.denied() == denied
    # Sentinel has no rule on B: it never alerts on it, whoever runs first.
    assert not [e for e in daemon.events() if e["file"]["path"] in (str(b), str(root / "b-moved"))]


def test_both_verdicts_hold_whichever_is_attached_first(tmpfs: Path, other: OtherLsm) -> None:
    for name in ("a", "b", "c"):
        (tmpfs / name).write_text(name + "\n")
    other.deny(tmpfs / "b")
    policy = tmpfs / "policy.yaml"
    policy.write_text(POLICY.format(a=tmpfs / "a"))

    # Phase 1: the other program is attached before sentinel.
    other.attach()
    assert eperm(read, tmpfs / "b") and read(tmpfs / "a") == b"a\n"
    daemon = start_daemon(policy, tmpfs / "events.jsonl")
    try:
        check_both_verdicts(daemon, other, tmpfs)
        # Phase 2: the same programs attached again, now after sentinel's.
        other.detach()
        assert read(tmpfs / "b") == b"b\n"  # detached: nothing denies B now
        other.attach()
        check_both_verdicts(daemon, other, tmpfs)
    finally:
        err = daemon.stop()
    assert "Traceback" not in err, err
