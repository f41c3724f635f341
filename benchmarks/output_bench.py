"""Throughput of the output chain, measured in one run (not a test).

For each format: events/second through format -> serialise -> JsonlWriter
(synchronous, batches of 512, as the sink thread writes them), and through
the whole Pipeline with a QueuedSink (emit until the last event is on disk).
The baseline is a consumer that only serialises the native dict; ratios are
against it, so they hold across machines better than the absolute numbers.

    python benchmarks/output_bench.py [--events N]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from sentinel.output.jsonl import JsonlWriter  # noqa: E402
from sentinel.output.pipeline import FORMATS, Pipeline, json_encoder  # noqa: E402
from sentinel.output.record import Record  # noqa: E402
from sentinel.output.sinks import QueuedSink  # noqa: E402


def make_events(n: int) -> list[dict[str, Any]]:
    """A realistic mix: mostly open alerts, some exec and connect, rare lost."""
    base_proc = {"pid": 4242, "tid": 4242, "ppid": 1, "uid": 1000, "gid": 1000,
                 "comm": "cat", "exe": "/usr/bin/cat", "cmdline": ["cat", "/etc/shadow"],
                 "cgroup": "/user.slice/user-1000.slice/session-3.scope"}
    events = []
    for i in range(n):
        ts = f"2026-11-21T22:10:{i % 60:02d}.{i % 1_000_000:06d}Z"
        common = {"@timestamp": ts, "policy": {"name": "baseline", "mode": "enforce"},
                  "process": dict(base_proc, pid=1000 + i % 30000),
                  "host": {"hostname": "web-1"}}
        if i % 100 == 99:
            events.append({"@timestamp": ts, "event": {"kind": "lost", "seq": i},
                           "lost": {"count": 3}, "host": {"hostname": "web-1"}})
        elif i % 5 == 0:
            events.append(dict(common, event={"kind": "alert", "operation": "connect",
                                              "action": "deny", "outcome": "blocked", "seq": i},
                               rule={"id": "no-egress", "severity": "medium"},
                               network={"family": "ipv4", "protocol": "tcp",
                                        "dst_ip": "203.0.113.7", "dst_port": 22}))
        elif i % 5 == 1:
            events.append(dict(common, event={"kind": "alert", "operation": "exec",
                                              "action": "audit", "outcome": "allowed", "seq": i},
                               rule={"id": "shells", "severity": "low"},
                               file={"path": "/usr/bin/bash", "dev": 2049, "inode": 77,
                                     "access": ["read"]}))
        else:
            events.append(dict(common, event={"kind": "alert", "operation": "open",
                                              "action": "deny", "outcome": "blocked", "seq": i},
                               rule={"id": "no-shadow", "severity": "high"},
                               file={"path": "/etc/shadow", "dev": 2049, "inode": 1234,
                                     "access": ["read"]}))
    return events


def timed(fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench_serialise_only(events: list[dict[str, Any]]) -> float:
    def run() -> None:
        for event in events:
            json_encoder(event)
    return len(events) / timed(run)


def bench_sync(events: list[dict[str, Any]], fmt: str, directory: str) -> float:
    formatter = FORMATS[fmt]
    writer = JsonlWriter(os.path.join(directory, f"sync-{fmt}.jsonl"),
                         max_bytes=64 * 1024 * 1024, fsync_interval=None)

    def run() -> None:
        batch: list[Record] = []
        for event in events:
            batch.append(Record.from_native(event, json_encoder(formatter(event))))
            if len(batch) == 512:
                writer.write(batch)
                batch = []
        if batch:
            writer.write(batch)
    rate = len(events) / timed(run)
    writer.close()
    return rate


def bench_pipeline(events: list[dict[str, Any]], fmt: str, directory: str) -> tuple[float, float, int]:
    """(emit-side events/s, end-to-end events/s, dropped)."""
    writer = JsonlWriter(os.path.join(directory, f"pipe-{fmt}.jsonl"),
                         max_bytes=64 * 1024 * 1024, fsync_interval=1.0)
    sink = QueuedSink("jsonl", writer, max_events=len(events) + 1, max_bytes=1 << 31)
    pipeline = Pipeline([sink], fmt)
    start = time.perf_counter()
    for event in events:
        pipeline.emit(event)
    emitted = time.perf_counter()
    pipeline.close(60.0)
    done = time.perf_counter()
    return (len(events) / (emitted - start), len(events) / (done - start),
            sink.stats().dropped)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    events = make_events(args.events)
    print(f"python {sys.version.split()[0]}, {args.events} events "
          f"(60% open, 20% exec, 19% connect, 1% lost)\n")
    baseline = bench_serialise_only(events)
    print(f"{'consumer':<40} {'events/s':>12} {'vs baseline':>12}")
    print(f"{'serialise native dict only (baseline)':<40} {baseline:>12,.0f} {1.0:>11.2f}x")
    with tempfile.TemporaryDirectory() as directory:
        for fmt in FORMATS:
            rate = bench_sync(events, fmt, directory)
            print(f"{fmt + ': format+serialise+jsonl (sync)':<40} {rate:>12,.0f} "
                  f"{rate / baseline:>11.2f}x")
        print()
        print(f"{'full Pipeline + QueuedSink(jsonl)':<40} {'emit ev/s':>12} "
              f"{'end-to-end':>12} {'dropped':>8}")
        for fmt in FORMATS:
            emit_rate, e2e, dropped = bench_pipeline(events, fmt, directory)
            print(f"{fmt:<40} {emit_rate:>12,.0f} {e2e:>12,.0f} {dropped:>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
