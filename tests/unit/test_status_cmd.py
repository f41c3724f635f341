"""`sentinel status` shows the daemon's count of events its formatter failed
on, from the status file, in text and JSON (the kernel side is faked)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from sentinel.commands import status
from sentinel.kernel import abi, guard, objects, pins


class _State:
    maps: dict[str, Any] = {}

    def close(self) -> None:
        pass


@pytest.fixture
def loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """One policy loaded in a faked kernel; returns the status file to write."""
    cfg = abi.sn_config()
    cfg.active = 1
    monkeypatch.setattr(objects, "open_pinned", lambda: _State())
    monkeypatch.setattr(objects, "read_state", lambda maps: (1, cfg))
    counters = {c.name.lower(): 0 for c in abi.SnCounter if c != abi.SnCounter.MAX}
    monkeypatch.setattr(objects, "read_counters", lambda maps: counters)
    monkeypatch.setattr(pins, "pinned_links", lambda: [Path("lsm_file_open")])
    monkeypatch.setattr(guard, "read_guard", lambda: None)
    monkeypatch.setattr(pins, "STATUS_FILE", tmp_path / "status.json")
    monkeypatch.setattr(pins, "PID_FILE", tmp_path / "sentinel.pid")
    return tmp_path / "status.json"


def _record(path: Path, **extra: Any) -> None:
    path.write_text(json.dumps({"mechanism": "lsm", "enforcing": True, "self_check": "passed",
                                "self_check_at": "2026-11-21T22:10:00Z",
                                "policies": [{"name": "baseline", "mode": "enforce"}], **extra}))


def test_status_json_and_text_show_invalid_events(loaded: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _record(loaded, invalid_events=7)
    assert status.run(argparse.Namespace(json=True)) == 0
    assert json.loads(capsys.readouterr().out)["invalid_events"] == 7
    assert status.run(argparse.Namespace(json=False)) == 0
    out = capsys.readouterr().out
    assert "invalid events (could not be formatted, reached no output): 7" in out


def test_status_from_an_older_daemon_says_unknown_not_zero(loaded: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _record(loaded)  # written by a daemon that did not record the count
    status.run(argparse.Namespace(json=True))
    assert json.loads(capsys.readouterr().out)["invalid_events"] is None
    status.run(argparse.Namespace(json=False))
    assert "reached no output): ?" in capsys.readouterr().out
