"""The native event format: the contract's JSON, normalised.

Every other format (`ecs.py`, `ocsf.py`) reads the native dict, so the helpers
that several formats need (timestamps, the operation -> object rules) live
here too. Nothing in this module knows about sinks.

`format_event` is the identity in content: it returns a new dict with the
contract's keys in the contract's order and drops `None` values and empty
sections, so that a consumer never sees `"network": null` on an open alert and
two runs of the same event serialise to the same bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from types import MappingProxyType
from typing import Any

Event = Mapping[str, Any]
"""A native event as produced by events/enrich.py (read-only here)."""

Formatter = Callable[[Event], dict[str, Any]]
"""format_event(native) -> a JSON-ready dict in some schema."""

# Top-level sections in contract order; anything else is kept after them so a
# future field from enrich.py is not silently lost.
_ORDER = (
    "@timestamp",
    "event",
    "policy",
    "rule",
    "process",
    "file",
    "network",
    "lost",
    "status",
    "host",
)

KINDS = ("alert", "lost", "status")
OPERATIONS = ("exec", "open", "connect")
SEVERITIES = ("low", "medium", "high", "critical")


def format_event(native: Event) -> dict[str, Any]:
    """Return the native event with canonical key order and no empty values.

    Raises:
        ValueError: the dict lacks `@timestamp` or `event.kind`; such a dict is
            a bug upstream and must not reach a SIEM as a half-event.
    """
    event = native.get("event")
    if "@timestamp" not in native or not isinstance(event, Mapping) or "kind" not in event:
        raise ValueError("native event needs '@timestamp' and 'event.kind'")
    out: dict[str, Any] = {}
    for key in _ORDER:
        if key in native:
            _put(out, key, native[key])
    for key, value in native.items():
        if key not in out and key not in _ORDER:
            _put(out, key, value)
    return out


def _put(out: dict[str, Any], key: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, Mapping):
        section = {k: v for k, v in value.items() if v is not None}
        if section:
            out[key] = section
        return
    out[key] = value


def timestamp_ms(timestamp: str) -> int:
    """Milliseconds since the epoch for an RFC 3339 timestamp (OCSF `time`).

    A timestamp without an offset is taken as UTC, which is what the daemon
    writes (`...Z`).
    """
    parsed = datetime.fromisoformat(timestamp)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    # Integer arithmetic: float seconds * 1000 can round 0.123 down to 122.
    delta = parsed - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def section(native: Event, name: str) -> Mapping[str, Any]:
    """`native[name]` as a mapping, empty when absent (lost/status events)."""
    value = native.get(name)
    # Exact-type check first: the ABC isinstance() was a third of the
    # OCSF formatter's time (profiled, ~12 calls per event).
    if type(value) is dict or isinstance(value, Mapping):
        return value
    return _EMPTY


_EMPTY: Mapping[str, Any] = MappingProxyType({})


def summary(native: Event) -> str:
    """One human sentence for the event, used as ECS `message` / OCSF `message`."""
    event = section(native, "event")
    kind = event.get("kind")
    if kind == "lost":
        return f"{section(native, 'lost').get('count', 0)} events lost by the kernel"
    if kind == "status":
        status = section(native, "status")
        text = f"sentinel {status.get('state', 'status')}"
        message = status.get("message")
        return f"{text}: {message}" if message else text
    process = section(native, "process")
    target = object_text(native)
    who = f"{process.get('comm', '?')}[{process.get('pid', '?')}]"
    return f"{event.get('action', '?')} {event.get('operation', '?')} {target} by {who}"


def object_text(native: Event) -> str:
    """The object an alert is about: a path, or ADDR:PORT/PROTO for connect."""
    network = section(native, "network")
    if network:
        ip = str(network.get("dst_ip", "?"))
        host = f"[{ip}]" if ":" in ip else ip
        return f"{host}:{network.get('dst_port', '?')}/{network.get('protocol', '?')}"
    return str(section(native, "file").get("path", "?"))
