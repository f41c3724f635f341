"""Sinks: where serialised events go, each behind its own bounded queue.

    Pipeline.emit ──► QueuedSink.emit ──(bounded deque)──► thread ──► Writer
                       never blocks                          may block, retry

Backpressure policy: the kernel-event loop must never wait for a slow disk or
a dead SIEM, so `emit` only appends to an in-memory queue bounded both in
events (`max_events`) and bytes (`max_bytes`); when either bound is reached
the event is dropped and counted in `stats().dropped`, which the daemon
reports in its status/lost events. Memory per sink is therefore at most
`max_bytes` of queued JSON plus one batch in flight.

Retry policy: a Writer raises OSError for a transient failure (disk full,
peer gone, stalled peer timing out); the sink's thread resets the writer and
retries the same batch after an exponential backoff (`backoff_initial` doubling
up to `backoff_max`). Meanwhile `emit` keeps queueing and then dropping, so a
dead TCP peer costs memory up to the bounds and nothing else.

`open_sink(spec)` builds the right writer for a parsed Output SPEC.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, BinaryIO, Protocol

from sentinel.output.jsonl import JsonlWriter
from sentinel.output.record import Record
from sentinel.output.spec import OutputSpec, parse_spec, parse_specs
from sentinel.output.syslog import (
    Framer,
    SyslogWriter,
    TcpTransport,
    Transport,
    UdpTransport,
    UnixTransport,
)

__all__ = ["OutputSpec", "QueuedSink", "Sink", "SinkStats", "StdoutWriter", "Writer",
           "open_sink", "open_sinks", "parse_spec", "parse_specs"]

DEFAULT_MAX_EVENTS = 65_536
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
_BATCH = 512


class Writer(Protocol):
    """The blocking half of a sink, run on the sink's own thread."""

    @property
    def discarded(self) -> int:
        """Records the writer dropped because they can never be written."""
        ...

    def write(self, records: Sequence[Record]) -> None: ...
    def flush(self) -> None: ...
    def reset(self) -> None: ...
    def close(self) -> None: ...


class Sink(Protocol):
    """What the pipeline fans out to."""

    name: str

    def emit(self, record: Record) -> bool: ...
    def stats(self) -> SinkStats: ...
    def begin_close(self) -> None: ...
    def close(self, timeout: float = 5.0) -> bool: ...


@dataclass(frozen=True)
class SinkStats:
    """Counters of one sink.

    Every event offered to `emit` ends up in exactly one of written, dropped,
    queued or in_flight, so `offered == written + dropped + queued + in_flight`.

    Attributes:
        accepted: events `emit` put on the queue.
        dropped: events lost to backpressure (queue full), to a close that
            timed out, or discarded by the writer as unsendable.
        written: events the writer reported written.
        queued: events waiting now.
        in_flight: events the thread is writing (or retrying) now.
        errors: failed write attempts (each one retried).
        reconnects: writer resets after an error.
    """

    name: str
    accepted: int
    dropped: int
    written: int
    queued: int
    queued_bytes: int
    in_flight: int
    errors: int
    reconnects: int
    last_error: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class QueuedSink:
    """A Writer behind a bounded queue drained by a dedicated thread."""

    def __init__(
        self,
        name: str,
        writer: Writer,
        *,
        max_events: int = DEFAULT_MAX_EVENTS,
        max_bytes: int = DEFAULT_MAX_BYTES,
        backoff_initial: float = 0.1,
        backoff_max: float = 10.0,
        idle_flush: float = 0.5,
    ) -> None:
        self.name = name
        self.writer = writer
        self.max_events = max_events
        self.max_bytes = max_bytes
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.idle_flush = idle_flush
        self._queue: deque[Record] = deque()
        self._queued_bytes = 0
        # Held only for O(1) bookkeeping, never across I/O: this is what
        # keeps emit() from ever waiting on the writer.
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = False
        self._abort = threading.Event()
        self._accepted = self._dropped = self._written = self._in_flight = 0
        self._errors = self._reconnects = 0
        self._last_error = ""
        self._thread = threading.Thread(target=self._run, name=f"sink {name}", daemon=True)
        self._thread.start()

    # -- caller side -----------------------------------------------------

    def emit(self, record: Record) -> bool:
        """Queue a record; False (and counted) when it had to be dropped."""
        size = len(record.data)
        with self._lock:
            if (
                self._closing
                or len(self._queue) >= self.max_events
                or self._queued_bytes + size > self.max_bytes
            ):
                self._dropped += 1
                return False
            self._queue.append(record)
            self._queued_bytes += size
            self._accepted += 1
        self._wake.set()
        return True

    def stats(self) -> SinkStats:
        with self._lock:
            return SinkStats(
                name=self.name,
                accepted=self._accepted,
                dropped=self._dropped + self.writer.discarded,
                written=self._written - self.writer.discarded,
                queued=len(self._queue),
                queued_bytes=self._queued_bytes,
                in_flight=self._in_flight,
                errors=self._errors,
                reconnects=self._reconnects,
                last_error=self._last_error,
            )

    def close(self, timeout: float = 5.0) -> bool:
        """Stop accepting, write what is queued, close the writer.

        Returns True when everything queued was written within `timeout`;
        otherwise the rest is counted as dropped and the thread is told to
        give up (it is a daemon thread, so it cannot hold the process).
        """
        self.begin_close()
        self._thread.join(timeout)
        if not self._thread.is_alive():
            return True
        self._abort.set()
        with self._lock:
            self._dropped += len(self._queue)
            self._queue.clear()
            self._queued_bytes = 0
        # A thread in backoff wakes at once and counts its batch as dropped;
        # one stuck in a blocking send keeps it in_flight until the send ends.
        self._thread.join(0.2)
        return False

    def begin_close(self) -> None:
        """Stop accepting and start draining, without waiting."""
        with self._lock:
            self._closing = True
        self._wake.set()

    # -- sink thread -----------------------------------------------------

    def _take(self) -> list[Record]:
        with self._lock:
            n = min(len(self._queue), _BATCH)
            batch = [self._queue.popleft() for _ in range(n)]
            self._queued_bytes -= sum(len(r.data) for r in batch)
            self._in_flight = n
            if not self._queue:
                self._wake.clear()
            return batch

    def _run(self) -> None:
        try:
            while not self._abort.is_set():
                batch = self._take()
                if batch:
                    self._deliver(batch)
                    continue
                with self._lock:
                    if self._closing:
                        break
                self._flush()
                self._wake.wait(self.idle_flush)
        finally:
            try:
                self.writer.close()
            except OSError:
                pass

    def _deliver(self, batch: list[Record]) -> None:
        delay = self.backoff_initial
        while not self._abort.is_set():
            try:
                self.writer.write(batch)
            except OSError as exc:
                with self._lock:
                    self._errors += 1
                    self._reconnects += 1
                    self._last_error = f"{type(exc).__name__}: {exc}"
                self._reset()
                # Event.wait, not sleep: close() can cut a long backoff short.
                self._abort.wait(delay)
                delay = min(delay * 2, self.backoff_max)
                continue
            with self._lock:
                self._written += len(batch)
                self._in_flight = 0
            return
        with self._lock:
            self._dropped += len(batch)
            self._in_flight = 0

    def _flush(self) -> None:
        try:
            self.writer.flush()
        except OSError as exc:
            with self._lock:
                self._errors += 1
                self._last_error = f"{type(exc).__name__}: {exc}"

    def _reset(self) -> None:
        try:
            self.writer.reset()
        except OSError:
            pass


class StdoutWriter:
    """Lines to standard output (or any binary stream), flushed per batch."""

    discarded = 0

    def __init__(self, stream: BinaryIO | None = None) -> None:
        self._stream = stream if stream is not None else sys.stdout.buffer

    def write(self, records: Sequence[Record]) -> None:
        self._stream.write(b"".join(r.data + b"\n" for r in records))
        self._stream.flush()

    def flush(self) -> None:
        """Each batch is already flushed."""

    def reset(self) -> None:
        """A broken stdout stays broken; the retry backoff is all we can do."""

    def close(self) -> None:
        try:
            self._stream.flush()
        except ValueError:  # already closed by the interpreter at exit
            pass


def make_writer(spec: OutputSpec, *, framer: Framer | None = None) -> Writer:
    """The Writer for one parsed SPEC (nothing is opened until the first write)."""
    if spec.kind == "stdout":
        return StdoutWriter()
    if spec.kind == "jsonl":
        return JsonlWriter(spec.path)
    transport: Transport
    if spec.transport == "udp":
        transport = UdpTransport(spec.host, spec.port)
    elif spec.transport == "tcp":
        transport = TcpTransport(spec.host, spec.port)
    else:
        transport = UnixTransport(spec.path)
    return SyslogWriter(transport, framer)


def open_sink(spec: OutputSpec | str, **options: Any) -> QueuedSink:
    """A running QueuedSink for a SPEC; `options` go to QueuedSink."""
    parsed = parse_spec(spec) if isinstance(spec, str) else spec
    return QueuedSink(str(parsed), make_writer(parsed), **options)


def open_sinks(specs: list[str] | None, **options: Any) -> list[QueuedSink]:
    """Parse every SPEC first (all-or-nothing), then open them."""
    return [open_sink(s, **options) for s in parse_specs(specs)]
