"""What a sink receives: the serialised event plus the few facts about it that
transports need for their own framing (syslog PRI, MSGID, TIMESTAMP).

The facts come from the *native* event, not the formatted one, so a sink
never has to understand ECS or OCSF to frame them.
"""

from __future__ import annotations

from dataclasses import dataclass

from sentinel.output.native import Event, section

# RFC 5424 severities (section 6.2.1).
CRITICAL, ERROR, WARNING, NOTICE, INFO = 2, 3, 4, 5, 6

_ALERT_SEVERITY = {"critical": CRITICAL, "high": ERROR, "medium": WARNING, "low": NOTICE}


@dataclass(frozen=True, slots=True)
class Record:
    """One serialised event on its way to the sinks.

    Attributes:
        data: the JSON document, UTF-8, without a trailing newline.
        kind: native `event.kind` (alert, lost, status): the syslog MSGID.
        severity: RFC 5424 severity 0..7 for the syslog PRI.
        timestamp: native `@timestamp` (RFC 3339).
        hostname: native `host.hostname`, "" when the event has none.
    """

    data: bytes
    kind: str
    severity: int
    timestamp: str
    hostname: str

    @classmethod
    def from_native(cls, native: Event, data: bytes) -> Record:
        event = section(native, "event")
        kind = str(event.get("kind", "alert"))
        return cls(
            data=data,
            kind=kind,
            severity=severity_of(native),
            timestamp=str(native.get("@timestamp", "")),
            hostname=str(section(native, "host").get("hostname", "") or ""),
        )


def severity_of(native: Event) -> int:
    """The syslog severity an event deserves.

    An alert follows its rule's severity; lost events mean blind spots, so
    they are warnings; a rejected reload is an error an operator must see;
    other status changes are informational.
    """
    kind = section(native, "event").get("kind")
    if kind == "alert":
        return _ALERT_SEVERITY.get(str(section(native, "rule").get("severity")), WARNING)
    if kind == "lost":
        return WARNING
    if section(native, "status").get("state") == "reload_rejected":
        return ERROR
    return INFO
