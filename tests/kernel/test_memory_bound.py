"""Memory stays bounded under an alert flood with a stalled output.

A TCP syslog peer accepts the connection and never reads, so everything sent
to it piles up in the daemon: its queue must stop at its bound, the rest must
be counted as dropped for that output, and the daemon's RSS must level off
while the flood goes on. The jsonl output next to it keeps receiving, so one
dead SIEM cannot starve the others.
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from sentinel.output.sinks import DEFAULT_MAX_BYTES
from tests.kernel.conftest import start_daemon

pytestmark = pytest.mark.kernel

ROUND_OPENS = 20_000
MAX_ROUNDS_TO_FILL = 30  # a bound on the test, far above what filling the queue needs
ROUNDS_AFTER_FULL = 4
MIB = 1024 * 1024


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for pid {pid}")


class StalledPeer:
    """A TCP syslog server that accepts one connection and then never reads a
    byte nor accepts another: the sender's timeouts and reconnects get it
    nowhere, so what the daemon holds for it can only pile up or be dropped."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.conn: socket.socket | None = None
        threading.Thread(target=self._accept_one, daemon=True).start()

    def _accept_one(self) -> None:
        try:
            self.conn, _ = self.sock.accept()  # kept open, never read
        except OSError:
            return
        self.sock.close()  # later connects are refused

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.sock.close()


def dropped_by(events: Path, output: str) -> int:
    """Drops the daemon reported for OUTPUT so far. Only the status lines are
    parsed: the file holds the whole flood."""
    total = 0
    with events.open("rb") as f:
        for line in f:
            if b'"output_dropped"' in line:
                outputs = json.loads(line)["status"]["outputs"]
                total += outputs.get(output, {}).get("dropped", 0)
    return total


def count_alerts(events: Path) -> int:
    with events.open("rb") as f:
        return sum(1 for line in f if b'"kind":"alert"' in line)


def test_rss_levels_off_under_a_flood_with_a_stalled_output(tmpfs: Path) -> None:
    helper = tmpfs / "sn-op"
    subprocess.run(["gcc", "-O2", "-o", str(helper), str(Path(__file__).with_name("sn_op.c"))], check=True)
    target = tmpfs / "watched"
    target.write_text("x")
    policy = tmpfs / "policy.yaml"
    policy.write_text(f"""\
apiVersion: sentinel/v1
kind: Policy
metadata: {{name: watch}}
spec:
  rules:
    - id: audit-watched
      operation: open
      action: audit
      match: {{paths: [{target}]}}
""")
    peer = StalledPeer()
    stalled = f"syslog:tcp://127.0.0.1:{peer.port}"
    events = tmpfs / "events.jsonl"
    daemon = start_daemon(policy, events, "--output", stalled, "--alert-rate", "0")
    pid = daemon.proc.pid
    try:
        start_rss = rss_kib(pid)

        def flood() -> None:
            out = subprocess.run([str(helper), "open-loop", str(target), str(ROUND_OPENS)],
                                 capture_output=True, text=True, check=True)
            assert out.stdout.strip() == "0"  # audit never blocks

        # Flood until the stalled output's queue is full: drops get reported for it.
        rounds = 0
        while dropped_by(events, stalled) == 0:
            assert rounds < MAX_ROUNDS_TO_FILL, "the stalled output never filled its queue"
            flood()
            rounds += 1
            print(f"round {rounds}: RSS {rss_kib(pid) / 1024:.0f} MiB", flush=True)
        full_rss = rss_kib(pid)
        # The flood goes on: a bounded daemon stays where it is.
        samples = []
        for _ in range(ROUNDS_AFTER_FULL):
            flood()
            samples.append(rss_kib(pid))
        time.sleep(11)
        peak = rss_kib(pid, "VmHWM")
        end_rss = rss_kib(pid)
        drops = dropped_by(events, stalled)
    finally:
        err = daemon.stop()
        peer.close()
    print(f"\nmemory under a flood with a stalled output: RSS at start {start_rss / 1024:.0f} MiB, "
          f"queue full after {rounds} rounds of {ROUND_OPENS} opens at {full_rss / 1024:.0f} MiB, "
          f"then {', '.join(f'{s / 1024:.0f}' for s in samples)} MiB over {ROUNDS_AFTER_FULL} more rounds, "
          f"end {end_rss / 1024:.0f} MiB, peak {peak / 1024:.0f} MiB; "
          f"{drops} events dropped for the stalled output")
    assert daemon.proc.returncode == 0, err
    # The queue's byte bound plus the objects around the queued records, with
    # room for the interpreter's arenas: far below what an unbounded queue of
    # this flood would hold.
    assert (peak - start_rss) * 1024 <= DEFAULT_MAX_BYTES + 64 * MIB
    # Leveled off: more flood after the queue filled did not grow the daemon.
    assert (max(samples + [end_rss]) - full_rss) * 1024 <= 16 * MIB
    assert drops > 0
    # The jsonl output next to the stalled one still got alerts throughout.
    assert count_alerts(events) > ROUND_OPENS // 10
