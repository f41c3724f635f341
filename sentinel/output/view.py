"""One readable line per event, for `sentinel events`.

Reads the native format, and also ECS and OCSF documents (recognised by
`ecs.version` / `class_uid`), so the viewer works on whatever `--format` the
daemon was started with.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

RESET = "\x1b[0m"
_COLOURS = {
    "deny": "\x1b[1;31m",        # bold red: something was stopped
    "would_deny": "\x1b[33m",    # yellow: would have been stopped
    "audit": "\x1b[36m",         # cyan: allowed, recorded
    "lost": "\x1b[1;35m",        # bold magenta: a blind spot
    "status": "\x1b[32m",        # green: the daemon's lifecycle
    "reload_rejected": "\x1b[1;31m",
}
_DIM = "\x1b[2m"


@dataclass(frozen=True)
class View:
    """The facts shown for one event, whatever its schema."""

    timestamp: str
    kind: str
    action: str = ""
    operation: str = ""
    severity: str = ""
    policy: str = ""
    rule: str = ""
    process: str = ""
    target: str = ""
    detail: str = ""


def _get(doc: Mapping[str, Any], dotted: str, default: Any = "") -> Any:
    value: Any = doc
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return default
        value = value[part]
    return value


def extract(doc: Mapping[str, Any]) -> View:
    """Pull the displayed facts out of a native, ECS or OCSF document."""
    if "class_uid" in doc:
        return _from_ocsf(doc)
    if "ecs" in doc:
        return _from_ecs(doc)
    return _from_native(doc)


def _target(path: str, ip: Any, port: Any, proto: Any) -> str:
    if ip:
        host = f"[{ip}]" if ":" in str(ip) else str(ip)
        return f"{host}:{port}/{proto}"
    return path


def _from_native(doc: Mapping[str, Any]) -> View:
    kind = str(_get(doc, "event.kind"))
    ts = str(doc.get("@timestamp", ""))
    if kind == "lost":
        return View(ts, kind, detail=f"{_get(doc, 'lost.count', 0)} events lost by the kernel")
    if kind == "status":
        return View(ts, kind, action=str(_get(doc, "status.state")),
                    detail=_status_detail(_get(doc, "status", {})))
    access = ",".join(_get(doc, "file.access", []) or [])
    return View(
        ts, kind,
        action=str(_get(doc, "event.action")),
        operation=str(_get(doc, "event.operation")),
        severity=str(_get(doc, "rule.severity")),
        policy=str(_get(doc, "policy.name")),
        rule=str(_get(doc, "rule.id")),
        process=f"{_get(doc, 'process.comm', '?')}[{_get(doc, 'process.pid', '?')}] "
                f"uid={_get(doc, 'process.uid', '?')}",
        target=_target(str(_get(doc, "file.path")), _get(doc, "network.dst_ip"),
                       _get(doc, "network.dst_port"), _get(doc, "network.protocol")),
        detail=f"({access})" if access else "",
    )


def _from_ecs(doc: Mapping[str, Any]) -> View:
    kind = str(_get(doc, "sentinel.kind")) or str(_get(doc, "event.kind"))
    ts = str(doc.get("@timestamp", ""))
    if kind in ("lost", "status"):
        return View(ts, kind, action=str(_get(doc, "sentinel.status.state")),
                    detail=str(doc.get("message", "")))
    access = ",".join(_get(doc, "sentinel.file.access", []) or [])
    return View(
        ts, kind,
        action=str(_get(doc, "event.action")),
        operation=str(_get(doc, "sentinel.operation")),
        severity=str(_get(doc, "sentinel.rule.severity")),
        policy=str(_get(doc, "rule.ruleset")),
        rule=str(_get(doc, "rule.id")),
        process=f"{_get(doc, 'process.name', '?')}[{_get(doc, 'process.pid', '?')}] "
                f"uid={_get(doc, 'process.user.id', '?')}",
        target=_target(str(_get(doc, "file.path")), _get(doc, "destination.ip"),
                       _get(doc, "destination.port"), _get(doc, "network.transport")),
        detail=f"({access})" if access else "",
    )


def _from_ocsf(doc: Mapping[str, Any]) -> View:
    kind = str(_get(doc, "unmapped.event.kind"))
    ts = str(_get(doc, "metadata.original_time"))
    if kind in ("lost", "status"):
        return View(ts, kind, action=str(_get(doc, "unmapped.status.state")),
                    detail=str(doc.get("message", "")))
    actor = _get(doc, "actor.process", {})
    access = ",".join(_get(doc, "unmapped.file.access", []) or [])
    path = _get(doc, "file.path") or _get(doc, "process.file.path")
    return View(
        ts, kind,
        action=str(_get(doc, "unmapped.event.action")),
        operation=str(_get(doc, "unmapped.event.operation")),
        severity=str(_get(doc, "unmapped.rule.severity")),
        policy=str(_get(doc, "unmapped.policy.name")),
        rule=str(_get(doc, "unmapped.rule.id")),
        process=f"{_get(actor, 'name', '?')}[{_get(actor, 'pid', '?')}] "
                f"uid={_get(actor, 'user.uid', '?')}",
        target=_target(str(path), _get(doc, "dst_endpoint.ip"), _get(doc, "dst_endpoint.port"),
                       _get(doc, "connection_info.protocol_name")),
        detail=f"({access})" if access else "",
    )


def _status_detail(status: Any) -> str:
    if not isinstance(status, Mapping):
        return ""
    text = str(status.get("message", ""))
    if status.get("mechanism"):
        text += f" [{status['mechanism']}]"
    return text.strip()


def matches(view: View, rule: str | None, action: str | None) -> bool:
    """The --rule/--action filters. Any filter shows alerts only."""
    if rule is None and action is None:
        return True
    if view.kind != "alert":
        return False
    return (rule is None or view.rule == rule) and (action is None or view.action == action)


def render(view: View, colour: bool) -> str:
    """One line: time, verdict, operation, severity, policy/rule, who, what."""
    if view.kind == "alert":
        label = view.action.upper()
        body = (f"{view.operation:<7} {view.severity:<8} {view.policy}/{view.rule}  "
                f"{view.process}  {view.target}")
        if view.detail:
            body += f" {view.detail}"
        key = view.action
    elif view.kind == "lost":
        label, body, key = "LOST", view.detail, "lost"
    else:
        label = "STATUS"
        body = f"{view.action} {view.detail}".strip()
        key = "reload_rejected" if view.action == "reload_rejected" else "status"
    line = f"{label:<10} {body}"
    if not colour:
        return f"{view.timestamp}  {line}"
    return f"{_DIM}{view.timestamp}{RESET}  {_COLOURS.get(key, '')}{line}{RESET}"
