"""Syslog sinks end to end against a real rsyslogd on loopback."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sentinel.output import ecs
from sentinel.output.pipeline import Pipeline
from sentinel.output.record import severity_of
from sentinel.output.sinks import QueuedSink, open_sink
from sentinel.output.syslog import FACILITY_AUTHPRIV, SyslogWriter, TcpTransport
from tests.unit import samples
from tests.unit.rsyslog_server import RsyslogServer, available

pytestmark = pytest.mark.skipif(not available(), reason="rsyslogd binary not installed")


@pytest.fixture
def rsyslog(tmp_path: Path) -> Iterator[RsyslogServer]:
    server = RsyslogServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _spec(server: RsyslogServer, transport: str) -> str:
    if transport == "udp":
        return f"syslog:udp://127.0.0.1:{server.udp_port}"
    if transport == "tcp":
        return f"syslog:tcp://127.0.0.1:{server.tcp_port}"
    return f"syslog:unix:{server.unix_path}"


@pytest.mark.parametrize("transport,input_name", [
    ("udp", "imudp"), ("tcp", "imtcp"), ("unix", "imuxsock")])
def test_rfc5424_fields_and_json_message(rsyslog: RsyslogServer, transport: str,
                                         input_name: str) -> None:
    events = samples.all_events()
    sink = open_sink(_spec(rsyslog, transport))
    pipeline = Pipeline([sink], "ecs")
    for event in events:
        assert pipeline.emit(event)
    assert pipeline.close(5.0)
    lines = rsyslog.wait_for(lambda ls: len(ls) >= len(events))
    assert len(lines) == len(events)
    for line, event in zip(lines, events):
        assert line.input == input_name
        assert line.pri == FACILITY_AUTHPRIV * 8 + severity_of(event)
        assert line.hostname == "web-1"
        assert line.app == "sentinel"
        assert line.procid == str(os.getpid())
        assert line.msgid == event["event"]["kind"]
        assert line.sd == "-"
        assert json.loads(line.msg) == ecs.format_event(event)
    assert [line.pri % 8 for line in lines] == [2, 3, 5, 4, 6]


def test_tcp_octet_counting_carries_large_messages(rsyslog: RsyslogServer) -> None:
    event = samples.exec_alert()
    event["process"]["cmdline"] = ["python3", "-c", "x" * 20_000]
    sink = open_sink(_spec(rsyslog, "tcp"))
    pipeline = Pipeline([sink], "native")
    pipeline.emit(event)
    pipeline.emit(samples.open_alert())
    assert pipeline.close(5.0)
    lines = rsyslog.wait_for(lambda ls: len(ls) >= 2)
    assert json.loads(lines[0].msg)["process"]["cmdline"][2] == "x" * 20_000
    assert json.loads(lines[1].msg)["rule"]["id"] == "no-shadow"


def test_tcp_reconnects_after_server_restart(rsyslog: RsyslogServer) -> None:
    transport = TcpTransport("127.0.0.1", rsyslog.tcp_port, timeout=1.0)
    sink = QueuedSink("tcp", SyslogWriter(transport), backoff_initial=0.05, backoff_max=0.4)
    pipeline = Pipeline([sink], "native")

    def batch(start: int) -> None:
        for seq in range(start, start + 10):
            pipeline.emit(samples.open_alert(seq=seq))

    def seqs() -> set[int]:
        return {json.loads(x.msg)["event"]["seq"] for x in rsyslog.lines("alert")}

    batch(0)
    rsyslog.wait_for(lambda ls: len(ls) >= 10)
    assert transport.connects == 1

    rsyslog.stop()
    batch(100)  # the server is down: these wait in the queue, emit does not block
    time.sleep(0.5)
    stats = sink.stats()
    assert stats.errors >= 1 and stats.written == 10
    assert stats.queued + stats.in_flight == 10

    rsyslog.start()
    batch(200)
    deadline = time.monotonic() + 15
    want = set(range(0, 10)) | set(range(100, 110)) | set(range(200, 210))
    while not want <= seqs() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert want <= seqs()
    assert transport.connects >= 2
    assert pipeline.close(5.0)
    assert sink.stats().dropped == 0
