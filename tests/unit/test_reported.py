"""Where a restarted daemon resumes reporting the kernel's loss and tamper
counters (host-only: the pinned map is a plain file here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sentinel.kernel import pins, reported
from sentinel.kernel.reported import ReportedCounters


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    maps = tmp_path / "maps"
    maps.mkdir()
    (maps / "sn_counters").touch()
    monkeypatch.setattr(pins, "MAP_DIR", maps)
    monkeypatch.setattr(pins, "RUN_DIR", tmp_path)
    monkeypatch.setattr(reported, "REPORTED_FILE", tmp_path / "reported.json")
    return maps


def test_without_a_record_reporting_starts_from_now(state: Path) -> None:
    assert ReportedCounters.for_pinned_maps().starting_points({"ringbuf_full": 7, "tamper": 2, "suppressed": 0}) == {"ringbuf_full": 7, "tamper": 2}


def test_what_was_lost_while_no_daemon_ran_is_still_to_report(state: Path) -> None:
    ReportedCounters.for_pinned_maps().record({"ringbuf_full": 100, "tamper": 3})
    # The kernel went on counting after the daemon died: resume from the record.
    assert ReportedCounters.for_pinned_maps().starting_points({"ringbuf_full": 150, "tamper": 5}) == {"ringbuf_full": 100, "tamper": 3}


def test_a_record_ahead_of_the_kernel_or_of_other_maps_is_ignored(state: Path) -> None:
    ReportedCounters.for_pinned_maps().record({"ringbuf_full": 100, "tamper": 3})
    assert ReportedCounters.for_pinned_maps().starting_points({"ringbuf_full": 40, "tamper": 5}) == {"ringbuf_full": 40, "tamper": 3}
    # An unload and a new load pin a new map: the record is about the old one.
    (state / "sn_counters.new").touch()  # made before the old one goes: another inode
    (state / "sn_counters.new").replace(state / "sn_counters")
    assert ReportedCounters.for_pinned_maps().starting_points({"ringbuf_full": 150, "tamper": 5}) == {"ringbuf_full": 150, "tamper": 5}


def test_a_damaged_record_is_ignored(state: Path) -> None:
    (state.parent / "reported.json").write_text("{not json")
    assert ReportedCounters.for_pinned_maps().starting_points({"ringbuf_full": 9, "tamper": 0}) == {"ringbuf_full": 9, "tamper": 0}
