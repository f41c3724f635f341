"""Native event -> Elastic Common Schema 8.x.

Mapping decisions (checked against the ECS 8.x field reference and the
categorisation allowed values):

- `event.kind`: a rule decision is `alert`; lost and status events are plain
  `event`s (ECS has no kind for "the sensor's own health").
- `event.category`/`event.type`: exec -> process/start, open -> file/access,
  connect -> network/connection. Alerts also carry `intrusion_detection` with
  `denied` or `allowed`, the ECS way to say a security control decided; those
  two types are only "expected" with intrusion_detection/network, so they are
  never paired with process or file alone.
- `event.outcome` is about the *operation*: a blocked open failed, so
  `failure`; audit and would_deny let it through, so `success`.
- ECS types ids (`user.id`, `file.inode`, `file.device`...) as keyword, so
  numbers become strings there; the numeric originals stay in `sentinel`.
- Facts ECS has no field for (policy mode, native action, access mode, cgroup,
  severity word, lost count, status object) go under `sentinel`.
"""

from __future__ import annotations

import posixpath
from typing import Any

from sentinel.output.native import Event, section, summary

ECS_VERSION = "8.11.0"

_CATEGORY = {"exec": "process", "open": "file", "connect": "network"}
_TYPE = {"exec": "start", "open": "access", "connect": "connection"}

# ECS event.severity is numeric; these are the Elastic detection-rule
# conventions for the four severity words, so dashboards sort correctly.
_SEVERITY = {"low": 21, "medium": 47, "high": 73, "critical": 99}

# status.state -> (category, type, outcome)
_STATUS = {
    "started": ("process", "start", "success"),
    "stopped": ("process", "end", "success"),
    "reloaded": ("configuration", "change", "success"),
    "reload_rejected": ("configuration", "change", "failure"),
}


def format_event(native: Event) -> dict[str, Any]:
    """Return the ECS document for one native event."""
    event = section(native, "event")
    kind = event.get("kind")
    out: dict[str, Any] = {
        "@timestamp": native["@timestamp"],
        "ecs": {"version": ECS_VERSION},
        "message": summary(native),
    }
    extra: dict[str, Any] = {"kind": kind}
    if kind == "alert":
        out["event"] = _alert_event(event, native)
        _add_alert(out, extra, native)
    elif kind == "lost":
        count = section(native, "lost").get("count", 0)
        out["event"] = _base_event(event, ["host"], ["info"], "events_lost", "failure")
        extra["lost"] = {"count": count}
    else:
        status = section(native, "status")
        category, etype, outcome = _STATUS.get(
            str(status.get("state")), ("process", "info", "unknown")
        )
        out["event"] = _base_event(
            event, [category], [etype], str(status.get("state", "status")), outcome
        )
        extra["status"] = dict(status)
    host = section(native, "host")
    if host.get("hostname"):
        out["host"] = {"hostname": host["hostname"], "name": host["hostname"]}
    out["sentinel"] = extra
    return out


def _base_event(
    event: Any, category: list[str], etype: list[str], action: str, outcome: str
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "kind": "event",
        "category": category,
        "type": etype,
        "action": action,
        "outcome": outcome,
        "module": "sentinel",
        "dataset": "sentinel.events",
    }
    if "seq" in event:
        result["sequence"] = event["seq"]
    return result


def _alert_event(event: Any, native: Event) -> dict[str, Any]:
    operation = str(event.get("operation"))
    blocked = event.get("outcome") == "blocked"
    rule = section(native, "rule")
    result: dict[str, Any] = {
        "kind": "alert",
        "category": [_CATEGORY.get(operation, "host"), "intrusion_detection"],
        "type": [_TYPE.get(operation, "info"), "denied" if blocked else "allowed"],
        "action": event.get("action"),
        "outcome": "failure" if blocked else "success",
        "module": "sentinel",
        "dataset": "sentinel.alerts",
    }
    if "seq" in event:
        result["sequence"] = event["seq"]
    if rule.get("severity") in _SEVERITY:
        result["severity"] = _SEVERITY[rule["severity"]]
    return result


def _add_alert(out: dict[str, Any], extra: dict[str, Any], native: Event) -> None:
    event = section(native, "event")
    policy = section(native, "policy")
    rule = section(native, "rule")
    extra.update(
        action=event.get("action"),
        outcome=event.get("outcome"),
        operation=event.get("operation"),
        policy=dict(policy),
        rule={"severity": rule.get("severity")},
    )
    out["rule"] = {"id": rule.get("id"), "name": rule.get("id"), "ruleset": policy.get("name")}

    process = section(native, "process")
    if process:
        out["process"] = _process(process)
        extra["process"] = {"cgroup": process.get("cgroup"), "uid": process.get("uid"),
                            "gid": process.get("gid")}
        out["user"] = {"id": _str(process.get("uid"))}
    file = section(native, "file")
    if file:
        path = str(file.get("path", ""))
        out["file"] = {
            "path": path,
            "name": posixpath.basename(path),
            "directory": posixpath.dirname(path),
            "inode": _str(file.get("inode")),
            "device": _str(file.get("dev")),
        }
        extra["file"] = {"access": list(file.get("access", [])), "dev": file.get("dev"),
                         "inode": file.get("inode")}
        if "via" in file:
            extra["file"]["via"] = file["via"]
    network = section(native, "network")
    if network:
        out["destination"] = {"ip": network.get("dst_ip"), "port": network.get("dst_port")}
        out["network"] = {
            "transport": network.get("protocol"),
            "type": network.get("family"),
            "direction": "egress",
        }


def _process(process: Any) -> dict[str, Any]:
    args = [str(a) for a in process.get("cmdline") or []]
    result: dict[str, Any] = {
        "pid": process.get("pid"),
        "thread": {"id": process.get("tid")},
        "parent": {"pid": process.get("ppid")},
        "user": {"id": _str(process.get("uid"))},
        "group": {"id": _str(process.get("gid"))},
        "name": process.get("comm"),
        "executable": process.get("exe"),
        "args": args,
        "args_count": len(args),
        # ECS's own examples join with single spaces; args keeps the exact argv.
        "command_line": " ".join(args),
    }
    parent_exe = (process.get("parent") or {}).get("exe")
    if parent_exe:
        result["parent"]["executable"] = parent_exe
    return result


def _str(value: Any) -> str | None:
    return None if value is None else str(value)
