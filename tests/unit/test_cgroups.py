"""events/cgroups.py: the cgroup path of an event from the id the kernel captured."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sentinel.events.cgroups import RESCAN_EVERY_S, CgroupPaths, walk_cgroups
from sentinel.events.decode import Event
from sentinel.events.enrich import Enricher, ProcFacts
from sentinel.kernel import abi
from tests.unit.test_events import RS, record


def test_walk_maps_directory_inodes_to_cgroup_paths(tmp_path: Path) -> None:
    (tmp_path / "system.slice" / "odd name\n.service").mkdir(parents=True)
    (tmp_path / "system.slice" / "cgroup.procs").write_text("")  # control files are not cgroups
    found = walk_cgroups(str(tmp_path))
    assert found[os.stat(tmp_path).st_ino] == "/"
    assert found[os.stat(tmp_path / "system.slice").st_ino] == "/system.slice"
    assert found[os.stat(tmp_path / "system.slice" / "odd name\n.service").st_ino] == "/system.slice/odd name\n.service"
    assert len(found) == 3


def test_walk_of_a_missing_root_finds_nothing(tmp_path: Path) -> None:
    assert walk_cgroups(str(tmp_path / "absent")) == {}


def test_unknown_ids_cost_at_most_one_walk_per_interval() -> None:
    now = [100.0]
    walks = []
    tree = {7: "/a"}

    def walk() -> dict[int, str]:
        walks.append(now[0])
        return dict(tree)

    paths = CgroupPaths(walk=walk, clock=lambda: now[0])
    assert paths.path(7) == "/a" and len(walks) == 1
    assert paths.path(7) == "/a" and len(walks) == 1  # known: no walk
    assert paths.path(8) is None and len(walks) == 1  # unknown, walked just now
    tree[8] = "/b"
    now[0] += RESCAN_EVERY_S
    assert paths.path(8) == "/b" and len(walks) == 2  # a new cgroup is found by the next walk
    del tree[7]
    now[0] += RESCAN_EVERY_S
    assert paths.path(9) is None and paths.path(7) is None  # a removed cgroup drops out
    assert paths.path(0) is None  # no id captured


def test_enricher_prefers_the_kernel_captured_cgroup_over_proc() -> None:
    raw = record(op=abi.SnOp.OPEN, action=abi.SnAction.DENY, blocked=1, gen=1, path=b"/x", cgroup_id=42)
    en = Enricher(hostname="h", proc=lambda pid: {"cmdline": None, "exe": None, "cgroup": "/moved-since"},
                  parent_exe=lambda pid: None, cgroup_path={42: "/at-the-event"}.get)
    en.rulesets[1] = RS
    assert en(Event.from_bytes(raw))["process"]["cgroup"] == "/at-the-event"
    en = Enricher(hostname="h", proc=lambda pid: {"cmdline": None, "exe": None, "cgroup": "/from-proc"},
                  parent_exe=lambda pid: None, cgroup_path=lambda cid: None)
    en.rulesets[1] = RS
    assert en(Event.from_bytes(raw))["process"]["cgroup"] == "/from-proc"


def test_proc_facts_are_read_only_when_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[tuple[str, int]] = []
    monkeypatch.setitem(ProcFacts._READERS, "cgroup", lambda pid: reads.append(("cgroup", pid)) or "/from-proc")
    facts = ProcFacts(4242)
    assert reads == []
    assert facts.get("cgroup") == "/from-proc" and facts.get("cgroup") == "/from-proc"
    assert reads == [("cgroup", 4242)]  # once, and only when the kernel's id did not name it
