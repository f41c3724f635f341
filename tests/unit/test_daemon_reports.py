"""The daemon turns each output's drops into a status event naming the output
and the count since the last report (checked without a kernel)."""

from __future__ import annotations

from typing import Any

from sentinel.daemon import Daemon, DaemonConfig


class RecordingPipeline:
    def __init__(self) -> None:
        self.dropped = {"stdout": 0, "syslog:tcp://127.0.0.1:6514": 0}
        self.events: list[dict[str, Any]] = []

    def stats(self) -> dict[str, Any]:
        return {"sinks": {name: {"dropped": n} for name, n in self.dropped.items()}}

    def emit(self, event: dict[str, Any]) -> bool:
        self.events.append(event)
        return True


class Log:
    def __init__(self) -> None:
        self.lines: list[tuple[str, dict[str, Any]]] = []

    def warning(self, msg: str, **kw: Any) -> None:
        self.lines.append((msg, kw))


def test_output_drops_are_reported_per_output_once() -> None:
    pipeline = RecordingPipeline()
    log = Log()
    daemon = Daemon(DaemonConfig([], None, pipeline), log)  # type: ignore[arg-type]
    daemon._report_output_drops(force=True)
    assert pipeline.events == []  # nothing dropped: nothing said

    pipeline.dropped["syslog:tcp://127.0.0.1:6514"] = 7
    daemon._report_output_drops(force=True)
    (event,) = pipeline.events
    assert event["event"]["kind"] == "status" and event["event"]["seq"] == 1
    assert event["status"]["state"] == "output_dropped"
    assert event["status"]["outputs"] == {"syslog:tcp://127.0.0.1:6514": {"dropped": 7, "dropped_total": 7}}
    assert log.lines == [("outputs dropped events", {"dropped": {"syslog:tcp://127.0.0.1:6514": 7}})]

    daemon._report_output_drops(force=True)  # no new drops: no second event
    assert len(pipeline.events) == 1
    pipeline.dropped["syslog:tcp://127.0.0.1:6514"] = 10
    pipeline.dropped["stdout"] = 2
    daemon._report_output_drops(force=True)
    assert pipeline.events[-1]["status"]["outputs"] == {
        "syslog:tcp://127.0.0.1:6514": {"dropped": 3, "dropped_total": 10},
        "stdout": {"dropped": 2, "dropped_total": 2},
    }


def test_output_drop_checks_are_throttled() -> None:
    pipeline = RecordingPipeline()
    daemon = Daemon(DaemonConfig([], None, pipeline), Log())  # type: ignore[arg-type]
    daemon._report_output_drops()  # the first check runs
    pipeline.dropped["stdout"] = 1
    daemon._report_output_drops()  # within OUTPUT_REPORT_S of it: not yet
    assert pipeline.events == []
    daemon._report_output_drops(force=True)
    assert len(pipeline.events) == 1


class InvalidPipeline(RecordingPipeline):
    """A pipeline whose formatter has failed on `invalid` events so far."""

    def __init__(self) -> None:
        super().__init__()
        self.invalid = 0

    def stats(self) -> dict[str, Any]:
        return dict(super().stats(), invalid=self.invalid)


def test_invalid_events_are_reported_once_per_growth() -> None:
    pipeline = InvalidPipeline()
    log = Log()
    daemon = Daemon(DaemonConfig([], None, pipeline), log)  # type: ignore[arg-type]
    daemon._report_invalid(force=True)
    assert pipeline.events == []  # nothing invalid: nothing said

    pipeline.invalid = 3
    daemon._report_invalid(force=True)
    (event,) = pipeline.events
    assert event["event"]["kind"] == "status" and event["event"]["seq"] == 1
    assert event["status"]["state"] == "output_invalid"
    assert event["invalid"] == {"count": 3, "total": 3}
    assert "3 events could not be formatted" in event["status"]["message"]
    assert log.lines == [("events could not be formatted", {"invalid": 3, "invalid_total": 3})]

    daemon._report_invalid(force=True)  # no growth: no second event
    assert len(pipeline.events) == 1
    pipeline.invalid = 5
    daemon._report_invalid()  # throttled: within OUTPUT_REPORT_S of the last check
    assert len(pipeline.events) == 1
    daemon._report_invalid(force=True)
    assert pipeline.events[-1]["invalid"] == {"count": 2, "total": 5}
    assert pipeline.events[-1]["event"]["seq"] == 2


def test_a_real_formatter_failure_becomes_a_status_event() -> None:
    """End to end through the real Pipeline: the bad event is counted, and the
    status event about it is delivered to the output."""
    import io
    import json

    from sentinel.output.pipeline import Pipeline
    from sentinel.output.sinks import QueuedSink, StdoutWriter

    stream = io.BytesIO()
    pipeline = Pipeline([QueuedSink("stdout", StdoutWriter(stream))], "native")
    daemon = Daemon(DaemonConfig([], None, pipeline), Log())  # type: ignore[arg-type]
    daemon._emit({"event": {"kind": "alert"}})  # no @timestamp, no process: unformattable
    assert pipeline.stats()["invalid"] == 1
    daemon._report_invalid(force=True)
    assert pipeline.close(5.0)
    (line,) = stream.getvalue().splitlines()
    event = json.loads(line)
    assert event["event"]["kind"] == "status" and event["status"]["state"] == "output_invalid"
    assert event["invalid"] == {"count": 1, "total": 1}


def test_status_file_carries_the_invalid_count(tmp_path: Any, monkeypatch: Any) -> None:
    from types import SimpleNamespace

    from sentinel.kernel import pins

    monkeypatch.setattr(pins, "STATUS_FILE", tmp_path / "status.json")
    pipeline = InvalidPipeline()
    daemon = Daemon(DaemonConfig([], None, pipeline), Log())  # type: ignore[arg-type]
    daemon.enforcer = SimpleNamespace(mechanism="tracepoint")  # type: ignore[assignment]
    daemon.ruleset = SimpleNamespace(policies=[])  # type: ignore[assignment]
    daemon._write_status(4)
    import json

    first = json.loads(pins.STATUS_FILE.read_text())
    assert first["invalid_events"] == 0 and first["generation"] == 4
    pipeline.invalid = 2
    daemon._report_invalid(force=True)  # growth rewrites the file, keeping the rest
    second = json.loads(pins.STATUS_FILE.read_text())
    assert second["invalid_events"] == 2
    assert {k: v for k, v in second.items() if k != "invalid_events"} == {
        k: v for k, v in first.items() if k != "invalid_events"}
