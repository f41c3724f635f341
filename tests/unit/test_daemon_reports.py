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
