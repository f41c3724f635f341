"""Backpressure: emit never blocks, drops are counted, memory stays bounded."""

from __future__ import annotations

import io
import os
import json
import socket
import threading
import time
import tracemalloc
from collections.abc import Iterator, Sequence

import pytest

from sentinel.output.pipeline import Pipeline
from sentinel.output.record import Record
from sentinel.output.sinks import QueuedSink, StdoutWriter, open_sink
from sentinel.output.syslog import Framer, SyslogWriter, TcpTransport
from tests.unit import samples


def _rec(pad: int = 1000) -> Record:
    return Record(b'{"x":"' + b"a" * pad + b'"}', "alert", 3, "2026-11-21T22:10:00Z", "h")


class _Blocking:
    """A writer that blocks until released, like a disk that stopped."""

    discarded = 0

    def __init__(self) -> None:
        self.released = False
        self.written: list[Record] = []

    def write(self, records: Sequence[Record]) -> None:
        while not self.released:
            time.sleep(0.01)
        self.written.extend(records)

    def flush(self) -> None:
        pass

    def reset(self) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.fixture
def stalled_peer() -> Iterator[int]:
    """A TCP server that accepts and never reads."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    yield server.getsockname()[1]
    server.close()


def _dead_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port: int = s.getsockname()[1]
    s.close()
    return port


def test_emit_stays_fast_and_counts_drops_against_stalled_peer(stalled_peer: int) -> None:
    transport = TcpTransport("127.0.0.1", stalled_peer, timeout=0.3)
    sink = QueuedSink("tcp", SyslogWriter(transport), max_events=500, max_bytes=10**9)
    total, slowest = 20_000, 0.0
    start = time.perf_counter()
    for _ in range(total):
        t0 = time.perf_counter()
        sink.emit(_rec())
        slowest = max(slowest, time.perf_counter() - t0)
    elapsed = time.perf_counter() - start
    stats = sink.stats()
    assert stats.dropped > total / 2
    assert stats.accepted + stats.dropped == total
    assert stats.queued <= 500
    assert elapsed < 2.0, elapsed
    # No emit waited for the socket: a blocked one would take the 0.3 s send
    # timeout. (Scheduler noise on a busy host can reach tens of ms.)
    assert slowest < 0.2, slowest
    t0 = time.perf_counter()
    sink.close(timeout=0.5)  # the kernel may absorb the queue into socket buffers
    assert time.perf_counter() - t0 < 1.5
    after = sink.stats()
    assert after.queued == 0
    assert after.written + after.dropped + after.in_flight == total


def test_memory_is_bounded_by_max_bytes() -> None:
    writer = _Blocking()
    sink = QueuedSink("blocked", writer, max_events=10**9, max_bytes=256 * 1024)
    tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    for _ in range(5_000):  # 5 MB offered
        sink.emit(_rec(1000))
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    stats = sink.stats()
    assert stats.queued_bytes <= 256 * 1024
    assert stats.dropped >= 5_000 - 256 - 512  # one batch may be in flight
    assert peak - base < 2 * 1024 * 1024, peak - base
    writer.released = True
    assert sink.close(5.0)
    assert sink.stats().written == stats.accepted


class _RecordingWait(threading.Event):
    """The sink's abort event, recording every backoff the thread waits for."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        if timeout is not None:
            self.waits.append(timeout)
        return super().wait(timeout)


def test_dead_peer_backs_off_and_close_is_prompt() -> None:
    transport = TcpTransport("127.0.0.1", _dead_port(), timeout=0.2)
    sink = QueuedSink("dead", SyslogWriter(transport), backoff_initial=0.01, backoff_max=0.08)
    waits = _RecordingWait()
    sink._abort = waits  # before the first emit: the thread is idle on _wake
    t0 = time.perf_counter()
    for _ in range(100):
        assert sink.emit(_rec(10))
    deadline = time.monotonic() + 10
    while sink.stats().errors < 7 and time.monotonic() < deadline:
        time.sleep(0.005)
    elapsed = time.perf_counter() - t0
    n_waits = len(waits.waits)
    stats = sink.stats()
    # Every event is accounted for: none written, none dropped, all 100 held
    # (one batch in flight, being retried).
    assert stats.accepted == 100 and stats.dropped == 0 and stats.written == 0
    assert stats.queued + stats.in_flight == 100, stats
    assert stats.errors >= 7 and "ConnectionRefusedError" in stats.last_error
    # Each failed attempt is followed by one backoff, doubling from 0.01 s and
    # capped at 0.08 s; the attempts really waited that long.
    assert waits.waits[:7] == pytest.approx([0.01, 0.02, 0.04, 0.08, 0.08, 0.08, 0.08]), waits.waits
    assert n_waits <= stats.errors <= n_waits + 1, (waits.waits, stats.errors)
    assert elapsed >= sum(waits.waits[:6]), elapsed
    t0 = time.perf_counter()
    assert sink.close(timeout=0.3) is False
    assert time.perf_counter() - t0 < 1.0
    final = sink.stats()
    assert final.dropped == 100 and final.written == 0
    assert sink.emit(_rec(10)) is False  # closed sinks refuse, counted
    assert sink.stats().dropped == 101


def test_stdout_writer_and_pipeline_counts() -> None:
    stream = io.BytesIO()
    sink = QueuedSink("stdout", StdoutWriter(stream))
    pipeline = Pipeline([sink], "native")
    for event in samples.all_events():
        assert pipeline.emit(event)
    assert pipeline.emit({"no": "timestamp"}) is False
    assert pipeline.close(5.0)
    lines = stream.getvalue().splitlines()
    assert [json.loads(x)["event"]["kind"] for x in lines] == [
        "alert", "alert", "alert", "lost", "status"]
    stats = pipeline.stats()
    assert stats["emitted"] == 5 and stats["invalid"] == 1 and stats["dropped"] == 0
    assert stats["sinks"]["stdout"]["written"] == 5


def test_pipeline_uses_injected_encoder() -> None:
    stream = io.BytesIO()
    sink = QueuedSink("stdout", StdoutWriter(stream))
    calls: list[object] = []

    def encoder(obj: object) -> str:
        calls.append(obj)
        return json.dumps(obj, sort_keys=True)

    pipeline = Pipeline([sink], "ocsf", encoder)
    pipeline.emit(samples.exec_alert())
    pipeline.close(5.0)
    assert len(calls) == 1
    assert json.loads(stream.getvalue())["class_uid"] == 1007
    assert stream.getvalue().index(b'"action"') < stream.getvalue().index(b'"class_uid"')


def test_framer_rfc5424_layout() -> None:
    framer = Framer(facility=10, hostname="fallback")
    frame = framer.frame(Record(b'{"a":1}', "alert", 3, "2026-11-21T22:10:00.123456Z", "web-1"))
    pri, rest = frame.split(b">", 1)
    assert pri == b"<83"  # 10 * 8 + 3
    version, ts, host, app, procid, msgid, sd, msg = rest.split(b" ", 7)
    assert (version, ts, host, app, msgid, sd, msg) == (
        b"1", b"2026-11-21T22:10:00.123456Z", b"web-1", b"sentinel", b"alert", b"-", b'{"a":1}')
    assert procid.isdigit()
    # Bad header input is sanitised, never breaks the layout.
    odd = framer.frame(Record("{\"é\":1}".encode(), "sta tus", 6, "yesterday", ""))
    fields = odd.split(b" ", 7)
    assert fields[2] == b"fallback" and fields[5] == b"status"
    assert fields[1].endswith(b"Z") and fields[7].startswith(b"\xef\xbb\xbf")


def test_open_sink_names_by_spec(tmp_path: object) -> None:
    sink = open_sink("syslog:udp://127.0.0.1:9")
    assert sink.name == "syslog:udp://127.0.0.1:9"
    assert sink.close(1.0)


def test_udp_oversized_datagram_is_discarded_not_retried() -> None:
    from sentinel.output.syslog import UdpTransport

    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(2)
    transport = UdpTransport("127.0.0.1", receiver.getsockname()[1])
    sink = QueuedSink("udp", SyslogWriter(transport))
    sink.emit(_rec(70_000))  # beyond the 65507-byte UDP payload limit
    sink.emit(_rec(10))
    assert sink.close(5.0)
    data = receiver.recv(65535)
    receiver.close()
    assert data.endswith(b'{"x":"' + b"a" * 10 + b'"}')
    stats = sink.stats()
    assert (stats.written, stats.dropped, stats.errors) == (1, 1, 0)


def test_unix_sink_reconnects_when_the_receiver_socket_is_recreated(tmp_path: object) -> None:
    from pathlib import Path

    path = str(Path(str(tmp_path)) / "log.sock")

    def receiver() -> socket.socket:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind(path)
        s.settimeout(5)
        return s

    first = receiver()
    sink = open_sink(f"syslog:unix:{path}", backoff_initial=0.02, backoff_max=0.1)
    sink.emit(_rec(1))
    assert first.recv(4096).endswith(b'"a"}')
    first.close()
    os.unlink(path)  # the syslog daemon restarts: its socket goes away...
    sink.emit(_rec(2))
    time.sleep(0.2)
    assert sink.stats().errors >= 1
    second = receiver()  # ...and comes back at the same path
    assert second.recv(4096).endswith(b'"aa"}')
    second.close()
    assert sink.close(2.0)
    assert sink.stats().written == 2 and sink.stats().dropped == 0
