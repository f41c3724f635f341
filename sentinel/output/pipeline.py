"""format -> serialise -> fan out: the last three links of the output chain.

Each link is a plain callable so each can be tested (and swapped) alone:
the formatter is `native|ecs|ocsf.format_event`, the encoder any
`obj -> str | bytes` (json.dumps by default; orjson.dumps drops in), and the
sinks anything with `emit(Record)`.

`emit` runs on the kernel-event loop, so it does the CPU work (format,
encode) inline and hands the bytes to each sink's non-blocking queue. An
event that cannot be formatted or encoded is counted in `stats()["invalid"]`
rather than raised: one odd event must not stop enforcement reporting.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sentinel.output import ecs, native, ocsf
from sentinel.output.native import Event, Formatter
from sentinel.output.record import Record
from sentinel.output.sinks import Sink

Encoder = Callable[[Any], "str | bytes"]

FORMATS: Mapping[str, Formatter] = {
    "native": native.format_event,
    "ecs": ecs.format_event,
    "ocsf": ocsf.format_event,
}


def json_encoder(obj: Any) -> bytes:
    """Compact, ASCII-only JSON: one line, safe in every syslog transport."""
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode("ascii")


def get_formatter(name: str) -> Formatter:
    """The formatter for `--format NAME`.

    Raises:
        ValueError: unknown format name (argparse restricts it before this).
    """
    try:
        return FORMATS[name]
    except KeyError:
        raise ValueError(f"unknown format {name!r}; expected one of {sorted(FORMATS)}") from None


class Pipeline:
    """Formats native events once and fans the bytes out to every sink."""

    def __init__(
        self,
        sinks: Sequence[Sink],
        fmt: str | Formatter = "native",
        encoder: Encoder = json_encoder,
    ) -> None:
        self.sinks = list(sinks)
        self.format = get_formatter(fmt) if isinstance(fmt, str) else fmt
        self.encoder = encoder
        self._invalid = 0
        self._emitted = 0
        self._lock = threading.Lock()

    def emit(self, event: Event) -> bool:
        """Format, serialise and queue one native event on every sink.

        Returns False when the event was invalid (counted, not raised).
        Never blocks on I/O.
        """
        try:
            encoded = self.encoder(self.format(event))
            data = encoded.encode("utf-8") if isinstance(encoded, str) else encoded
            record = Record.from_native(event, data)
        except (KeyError, TypeError, ValueError):
            with self._lock:
                self._invalid += 1
            return False
        for sink in self.sinks:
            sink.emit(record)
        with self._lock:
            self._emitted += 1
        return True

    def stats(self) -> dict[str, Any]:
        """Counters for the daemon's status/lost reporting.

        `dropped` is the total over sinks; each sink's own counters are under
        `sinks`, keyed by its SPEC.
        """
        per_sink = {s.name: s.stats().as_dict() for s in self.sinks}
        with self._lock:
            return {
                "emitted": self._emitted,
                "invalid": self._invalid,
                "dropped": sum(s["dropped"] for s in per_sink.values()),
                "sinks": per_sink,
            }

    def close(self, timeout: float = 5.0) -> bool:
        """Flush and close every sink within one overall `timeout`.

        Returns True when every sink delivered everything it had queued.
        """
        deadline = time.monotonic() + timeout
        # All sinks drain in parallel; a dead peer on one must not eat the
        # time budget of the others.
        for sink in self.sinks:
            sink.begin_close()
        ok = True
        for sink in self.sinks:
            remaining = max(0.0, deadline - time.monotonic())
            ok = sink.close(remaining) and ok
        return ok
