"""Memory stays bounded under an alert flood with a stalled output.

A TCP syslog peer accepts the connection and never reads, so everything sent
to it piles up in the daemon: its queue must stop at its bound, the rest must
be counted as dropped for that output, and the daemon's RSS must level off
while the flood goes on. The jsonl output next to it keeps receiving, so one
dead SIEM cannot starve the others.

The queue is bounded with `--output-queue` at 2,000 events, so that it fills
in a few bursts instead of the default 65,536 events (68 bursts, 17 minutes
under emulation). The bound is enforced by the same code at any size.
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.kernel.conftest import start_daemon

# The daemon's output queues do not depend on the enforcing mechanism.
pytestmark = [pytest.mark.kernel, pytest.mark.one_config]

# Bursts small enough that the ring buffer (about 2,000 events of ~8 KB) holds
# one: the daemon then sees nearly every alert, instead of the kernel dropping
# most of a flood before the stalled output's queue could ever fill.
BURST_OPENS = 1_000
QUEUE_EVENTS = 2_000
MAX_BURSTS_TO_FILL = 20  # a bound on the test, far above what filling the queue needs
BURSTS_AFTER_FULL = 10  # 10,000 alerts: an unbounded queue would grow by tens of MiB
MIB = 1024 * 1024
# What one queued event may cost the daemon: its JSON (about 1-2 KB here) and
# the objects around it, generously.
QUEUED_EVENT_COST = 8 * 1024


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


class EventsTail:
    """Counts what the daemon wrote to its jsonl output, reading only the new
    bytes each time: the file holds the whole flood."""

    def __init__(self, path: Path, output: str) -> None:
        self.path = path
        self.output = output
        self.offset = 0
        self.alerts = 0
        self.dropped = 0  # what the daemon reported dropped for OUTPUT

    def poll(self) -> None:
        if not self.path.exists():
            return
        with self.path.open("rb") as f:
            f.seek(self.offset)
            data = f.read()
        complete = data[: data.rfind(b"\n") + 1]
        self.offset += len(complete)
        self.alerts += complete.count(b'"kind":"alert"')
        for line in complete.splitlines():
            if b'"output_dropped"' in line:
                outputs = json.loads(line)["status"]["outputs"]
                self.dropped += outputs.get(self.output, {}).get("dropped", 0)

    def settle(self, quiet: float = 1.0, limit: float = 60) -> None:
        """Wait until no new alert arrived for QUIET seconds: the daemon has
        drained the ring buffer."""
        deadline = time.monotonic() + limit
        last, last_change = -1, time.monotonic()
        while time.monotonic() < deadline:
            self.poll()
            if self.alerts != last:
                last, last_change = self.alerts, time.monotonic()
            elif time.monotonic() - last_change >= quiet:
                return
            time.sleep(0.2)


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
    daemon = start_daemon(policy, events, "--output", stalled, "--alert-rate", "0",
                          "--output-queue", str(QUEUE_EVENTS))
    pid = daemon.proc.pid
    tail = EventsTail(events, stalled)
    started = time.monotonic()
    try:
        start_rss = rss_kib(pid)

        def burst() -> None:
            out = subprocess.run([str(helper), "open-loop", str(target), str(BURST_OPENS)],
                                 capture_output=True, text=True, check=True)
            assert out.stdout.strip() == "0"  # audit never blocks
            tail.settle()

        # Flood until the stalled output's queue is full: drops get reported for it.
        bursts = 0
        while tail.dropped == 0:
            assert bursts < MAX_BURSTS_TO_FILL, (
                f"the stalled output never filled its queue: {tail.alerts} alerts in {bursts} bursts")
            burst()
            bursts += 1
            if bursts % 5 == 0:
                print(f"memory flood: {bursts} bursts, {tail.alerts} alerts, RSS {rss_kib(pid) / 1024:.0f} MiB, "
                      f"{time.monotonic() - started:.0f} s", flush=True)
        full_rss = rss_kib(pid)
        alerts_at_full = tail.alerts
        # The flood goes on: a bounded daemon stays where it is.
        samples = []
        for _ in range(BURSTS_AFTER_FULL):
            burst()
            samples.append(rss_kib(pid))
        time.sleep(11)  # one more drop report
        tail.poll()
        peak = rss_kib(pid, "VmHWM")
        end_rss = rss_kib(pid)
    finally:
        err = daemon.stop()
        peer.close()
    print(f"\nmemory under a flood with a stalled output: RSS at start {start_rss / 1024:.0f} MiB; "
          f"queue full after {bursts} bursts of {BURST_OPENS} opens ({alerts_at_full} alerts) at "
          f"{full_rss / 1024:.0f} MiB; then {min(samples) / 1024:.0f}-{max(samples) / 1024:.0f} MiB over "
          f"{BURSTS_AFTER_FULL} more bursts ({tail.alerts - alerts_at_full} alerts); end {end_rss / 1024:.0f} MiB, "
          f"peak {peak / 1024:.0f} MiB; {tail.dropped} events reported dropped for the stalled output; "
          f"{time.monotonic() - started:.0f} s")
    assert daemon.proc.returncode == 0, err
    # The full queue plus the interpreter's working set for formatting bursts of
    # alerts (its arenas grew by 8 to 32 MiB in different runs, queue included).
    assert (peak - start_rss) * 1024 <= QUEUE_EVENTS * QUEUED_EVENT_COST + 32 * MIB
    # Leveled off: 10,000 more alerts after the queue filled did not grow the daemon.
    assert (max(samples + [end_rss]) - full_rss) * 1024 <= 4 * MIB
    # Every alert after the queue filled was dropped for the stalled output
    # (it takes nothing any more), while the jsonl output next to it got them all.
    assert tail.alerts - alerts_at_full >= BURSTS_AFTER_FULL * BURST_OPENS // 2
    assert tail.dropped >= tail.alerts - alerts_at_full
