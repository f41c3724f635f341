"""Which pinned links a restarted daemon adopts as they are (host-only: the
pins are plain files here; the kernel side is tests/kernel/test_lifecycle.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from sentinel.kernel import guard, objects, pins
from sentinel.kernel.objects import MECH_FMOD_RET, MECH_LSM, PROGRAMS, adoptable_links, link_pin_name, parse_link_pin


@pytest.fixture
def link_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(pins, "LINK_DIR", tmp_path)
    return tmp_path


def pin_all(link_dir: Path, mechanism: str, build: str, stamp: int = 1) -> None:
    for program in PROGRAMS[mechanism]:
        (link_dir / link_pin_name(program, build, stamp)).touch()


def test_pin_names_round_trip() -> None:
    name = link_pin_name("lsm_file_open", "0123456789abcdef", 42)
    assert "." not in name  # bpffs refuses dots
    assert parse_link_pin(name) == ("lsm_file_open", "0123456789abcdef")
    assert parse_link_pin("lsm_file_open@1700000000") == ("lsm_file_open", None)  # an older release's pin


def test_same_build_and_mechanism_is_adopted(link_dir: Path) -> None:
    pin_all(link_dir, MECH_LSM, "aaaa")
    found = adoptable_links(MECH_LSM, "aaaa")
    assert found is not None and set(found) == set(PROGRAMS[MECH_LSM])


@pytest.mark.parametrize(
    "case",
    ["other build", "other mechanism", "one missing", "one extra", "twice pinned", "old names", "nothing"],
)
def test_anything_else_attaches_anew(link_dir: Path, case: str) -> None:
    if case == "other build":
        pin_all(link_dir, MECH_LSM, "bbbb")
    elif case == "other mechanism":
        pin_all(link_dir, MECH_FMOD_RET, "aaaa")
    elif case == "one missing":
        pin_all(link_dir, MECH_LSM, "aaaa")
        next(link_dir.iterdir()).unlink()
    elif case == "one extra":
        pin_all(link_dir, MECH_LSM, "aaaa")
        (link_dir / link_pin_name("fentry_file_open", "aaaa", 1)).touch()
    elif case == "twice pinned":
        pin_all(link_dir, MECH_LSM, "aaaa", stamp=1)
        (link_dir / link_pin_name(PROGRAMS[MECH_LSM][0], "aaaa", 2)).touch()
    elif case == "old names":
        for program in PROGRAMS[MECH_LSM]:
            (link_dir / f"{program}@1700000000").touch()
    assert adoptable_links(MECH_LSM, "aaaa") is None


def test_build_id_follows_the_bytes(tmp_path: Path) -> None:
    a, b = tmp_path / "a.o", tmp_path / "b.o"
    a.write_bytes(b"\x7fELF one")
    b.write_bytes(b"\x7fELF two")
    assert objects.object_build_id(a) != objects.object_build_id(b)
    assert objects.object_build_id(a) == objects.object_build_id(a)


def test_a_zombie_owner_holds_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """After kill -9 and before its parent reaps it, the daemon is a zombie
    with its pid and start time intact: it must not count as alive."""
    state = guard.GuardState(expires_ns=0, owner_pid=4242, owner_ticks=7)
    monkeypatch.setattr(guard, "process_start_ticks", lambda pid: 7)
    monkeypatch.setattr(guard, "process_exiting", lambda pid: False)
    assert state.owner_alive()
    monkeypatch.setattr(guard, "process_exiting", lambda pid: True)
    assert not state.owner_alive()
    monkeypatch.setattr(guard, "process_start_ticks", lambda pid: 8)  # a recycled pid
    monkeypatch.setattr(guard, "process_exiting", lambda pid: False)
    assert not state.owner_alive()


def test_this_process_is_not_exiting() -> None:
    assert not guard.process_exiting(os.getpid())


def test_a_real_unreaped_child_is_a_zombie() -> None:
    child = subprocess.Popen(["sleep", "30"])
    os.kill(child.pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while not guard.process_exiting(child.pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert guard.process_exiting(child.pid)
    child.wait()
