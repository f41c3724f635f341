"""`sentinel events`: rendering, filters, colour, following across rotation."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from sentinel import cli
from sentinel.output import ecs, native, ocsf
from sentinel.output.follow import LineFollower
from sentinel.output.jsonl import JsonlWriter
from sentinel.output.record import Record
from sentinel.output.view import extract, render
from tests.unit import samples


def _write_events(path: Path, events: list[dict[str, object]]) -> None:
    with open(path, "a") as f:
        for event in events:
            f.write(json.dumps(event) + "\n")


def test_plain_view_of_every_kind(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "events.jsonl"
    _write_events(path, samples.all_events())
    assert cli.main(["events", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 5
    assert "\x1b[" not in "".join(out)  # captured stdout is not a tty
    assert out[1] == ("2026-11-21T22:10:00.123456Z  DENY       open    high     "
                      "baseline/no-shadow  cat[4242] uid=1000  /etc/shadow (read)")
    assert "EXEC" not in out[0] and "exec" in out[0] and "/usr/bin/nc.openbsd" in out[0]
    assert out[2].split()[1] == "AUDIT" and "203.0.113.7:22/tcp" in out[2]
    assert "LOST" in out[3] and "12 events lost" in out[3]
    assert "STATUS" in out[4] and "started 3 policies loaded [bpf-lsm]" in out[4]


def test_filters_and_forced_colour(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "events.jsonl"
    _write_events(path, samples.all_events() + [samples.open_alert("would_deny", "allowed")])
    assert cli.main(["events", "--action", "deny", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all(" DENY " in x for x in lines)
    assert cli.main(["events", "--rule", "no-shadow", "--color", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert "\x1b[1;31mDENY" in lines[0] and "\x1b[33mWOULD_DENY" in lines[1]


def test_same_view_from_every_format() -> None:
    for event in samples.all_events():
        want = render(extract(native.format_event(event)), False)
        for fmt in (ecs.format_event, ocsf.format_event):
            got = render(extract(json.loads(json.dumps(fmt(event)))), False)
            if event["event"]["kind"] == "alert":
                assert got == want
            else:
                assert got.split()[:2] == want.split()[:2]


def test_missing_file_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["events", str(tmp_path / "nope.jsonl")]) == 1
    assert "no such file" in capsys.readouterr().err


def test_bad_line_is_skipped_with_a_warning(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "e.jsonl"
    path.write_text("not json\n" + json.dumps(samples.open_alert()) + "\n")
    assert cli.main(["events", str(path)]) == 0
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 1 and "not JSON" in captured.err


def _rec(i: int) -> Record:
    return Record(json.dumps({"i": i, "pad": "p" * 60}).encode(), "alert", 4, "", "")


def test_follower_reads_across_rotation_without_loss(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    follower = LineFollower(str(path))
    assert follower.read_available() == []  # not created yet: wait, no error
    writer = JsonlWriter(str(path), max_bytes=500, keep=50, fsync_interval=None)
    seen: list[int] = []
    for i in range(300):
        writer.write([_rec(i)])
        if i % 7 == 0:  # read at irregular points, sometimes just after a rotation
            seen += [json.loads(x)["i"] for x in follower.read_available()]
    writer.close()
    seen += [json.loads(x)["i"] for x in follower.read_available()]
    assert writer.rotations > 20
    assert seen == list(range(300))


def test_follower_waits_for_a_partial_line_and_survives_truncation(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    path.write_bytes(b'{"a":1}\n{"b"')
    follower = LineFollower(str(path))
    assert follower.read_available() == [b'{"a":1}']
    with open(path, "ab") as f:
        f.write(b':2}\n')
    assert follower.read_available() == [b'{"b":2}']
    os.truncate(path, 0)
    with open(path, "ab") as f:
        f.write(b'{"c":3}\n')
    assert follower.read_available() == [b'{"c":3}']


def test_follow_command_tails_last_lines_then_new_ones(tmp_path: Path) -> None:
    import queue
    import subprocess
    import sys
    import threading
    import time

    path = tmp_path / "e.jsonl"
    _write_events(path, [samples.open_alert(seq=i) for i in range(15)])
    proc = subprocess.Popen(
        [sys.executable, "-m", "sentinel.cli", "events", "--follow", str(path)],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2])
    try:
        assert proc.stdout is not None
        first = [proc.stdout.readline() for _ in range(10)]
        assert all("DENY" in x for x in first)
        # Small files: the first write rotates the old file away and every
        # later write rotates again while the viewer is polling.
        writer = JsonlWriter(str(path), max_bytes=700, keep=10)
        payload = json.dumps(samples.connect_alert()).encode()
        for _ in range(4):
            writer.write([Record(payload, "alert", 5, "", "")])
            time.sleep(0.1)
        writer.close()
        # A reader thread, so a missing line fails the test instead of hanging it.
        lines: queue.Queue[str] = queue.Queue()
        stdout = proc.stdout

        def pump() -> None:
            for line in stdout:
                lines.put(line)

        threading.Thread(target=pump, daemon=True).start()
        later: list[str] = []
        try:
            while len(later) < 4:
                later.append(lines.get(timeout=10))
        except queue.Empty:
            pass
        assert writer.rotations >= 4
        assert len(later) == 4 and all("203.0.113.7:22/tcp" in x for x in later)
    finally:
        proc.terminate()
        proc.wait(5)
