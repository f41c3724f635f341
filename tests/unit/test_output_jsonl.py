"""JSONL sink: append, rotation by size, never a split or lost line."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from sentinel.output.jsonl import JsonlWriter
from sentinel.output.pipeline import Pipeline
from sentinel.output.record import Record
from sentinel.output.sinks import QueuedSink
from tests.unit import samples


def _rec(i: int, pad: int = 0) -> Record:
    data = json.dumps({"i": i, "pad": "x" * pad}).encode()
    return Record(data, "alert", 4, "2026-11-21T22:10:00Z", "h")


def _all_lines(path: Path) -> list[dict[str, object]]:
    lines: list[dict[str, object]] = []
    for candidate in sorted(path.parent.glob(path.name + "*")):
        raw = candidate.read_bytes()
        assert raw == b"" or raw.endswith(b"\n"), f"{candidate} ends mid-line"
        lines.extend(json.loads(line) for line in raw.splitlines())
    return lines


def test_appends_to_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "events.jsonl"
    path.parent.mkdir()
    path.write_bytes(b'{"old":1}\n')
    writer = JsonlWriter(str(path))
    writer.write([_rec(1), _rec(2)])
    writer.close()
    assert path.read_bytes().splitlines()[0] == b'{"old":1}'
    assert [json.loads(x)["i"] for x in path.read_bytes().splitlines()[1:]] == [1, 2]


def test_new_file_is_not_world_readable(tmp_path: Path) -> None:
    path = tmp_path / "new.jsonl"
    writer = JsonlWriter(str(path))
    writer.write([_rec(1)])
    writer.close()
    assert path.stat().st_mode & 0o007 == 0


def test_rotation_keeps_n_files_each_within_bound(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    writer = JsonlWriter(str(path), max_bytes=1000, keep=3)
    for i in range(200):
        writer.write([_rec(i, pad=40)])
    writer.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["events.jsonl", "events.jsonl.1", "events.jsonl.2", "events.jsonl.3"]
    for p in tmp_path.iterdir():
        assert 0 < p.stat().st_size <= 1000
    # The kept files hold the newest events, contiguous and in order.
    order = [json.loads(x)["i"] for n in ("events.jsonl.3", "events.jsonl.2",
                                          "events.jsonl.1", "events.jsonl")
             for x in (tmp_path / n).read_bytes().splitlines()]
    assert order == list(range(order[0], 200))
    assert writer.rotations > 3


def test_batch_spanning_a_rotation_splits_between_lines(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    writer = JsonlWriter(str(path), max_bytes=300, keep=10)
    writer.write([_rec(i, pad=50) for i in range(20)])
    writer.close()
    assert sorted(x["i"] for x in _all_lines(path)) == list(range(20))  # type: ignore[type-var]


def test_oversized_line_is_written_whole(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    writer = JsonlWriter(str(path), max_bytes=100, keep=2)
    writer.write([_rec(1), _rec(2, pad=500), _rec(3)])
    writer.close()
    lines = _all_lines(path)
    assert sorted(x["i"] for x in lines) == [1, 2, 3]  # type: ignore[type-var]


def test_reopens_when_file_is_moved_away(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    writer = JsonlWriter(str(path), reopen_check=0.0)
    writer.write([_rec(1)])
    os.rename(path, tmp_path / "moved")
    writer.write([_rec(2)])
    writer.close()
    assert [json.loads(x)["i"] for x in path.read_bytes().splitlines()] == [2]


def test_rotation_tolerates_path_renamed_away(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    writer = JsonlWriter(str(path), max_bytes=60, keep=2, reopen_check=3600)
    writer.write([_rec(1, pad=20)])
    os.rename(path, tmp_path / "elsewhere")
    writer.write([_rec(2, pad=20)])  # needs a rotation while PATH is gone
    writer.close()
    assert [json.loads(x)["i"] for x in path.read_bytes().splitlines()] == [2]


def test_concurrent_writers_never_split_or_lose_lines(tmp_path: Path) -> None:
    """8 threads hammer one writer directly, with rotation every ~2 KiB."""
    path = tmp_path / "e.jsonl"
    writer = JsonlWriter(str(path), max_bytes=2048, keep=10_000, fsync_interval=None)

    def work(t: int) -> None:
        for i in range(250):
            writer.write([_rec(t * 1000 + i, pad=(i * 7) % 90)])

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    writer.close()
    seen = sorted(x["i"] for x in _all_lines(path))  # type: ignore[type-var]
    assert seen == sorted(t * 1000 + i for t in range(8) for i in range(250))
    for p in tmp_path.iterdir():
        assert p.stat().st_size <= 2048


def test_concurrent_emitters_through_pipeline(tmp_path: Path) -> None:
    """Many emitting threads -> one queued JSONL sink with rotation."""
    path = tmp_path / "e.jsonl"
    sink = QueuedSink("jsonl", JsonlWriter(str(path), max_bytes=4096, keep=10_000))
    pipeline = Pipeline([sink], "ecs")

    def work(t: int) -> None:
        for i in range(300):
            event = samples.open_alert(seq=t * 1000 + i)
            pipeline.emit(event)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert pipeline.close(120.0)  # correctness, not speed: generous under a loaded machine
    seqs = sorted(x["event"]["sequence"] for x in _all_lines(path))  # type: ignore[index]
    assert seqs == sorted(t * 1000 + i for t in range(6) for i in range(300))
    stats = sink.stats()
    assert stats.written == 1800 and stats.dropped == 0 and stats.queued == 0
