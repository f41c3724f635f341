"""Native event -> OCSF 1.3.0.

Class choices (checked against the OCSF 1.3 class pages):

| native                    | class                          | activity                 |
|---------------------------|--------------------------------|--------------------------|
| alert, exec               | 1007 Process Activity (cat 1)  | 1 Launch                 |
| alert, open               | 1001 File System Activity (1)  | 14 Open ("create a file handle"; not Read, an open may be for write) |
| alert, connect            | 4001 Network Activity (cat 4)  | 1 Open                   |
| status started/stopped    | 6002 Application Lifecycle (6) | 3 Start / 4 Stop         |
| status reloaded/rejected  | 6002 Application Lifecycle (6) | 8 Update (rejected: status Failure) |
| lost                      | 1008 Event Log Activity (1)    | 99 Other, activity_name "Drop", `count` = events lost |

`type_uid` is always `class_uid * 100 + activity_id`.

The security_control profile carries the verdict: `action_id` 1 Allowed /
2 Denied and `disposition_id` 1 Allowed / 2 Blocked. An audit-mode
`would_deny` is what actually happened, Allowed/Allowed, plus an observable
named `sentinel.would_deny` so a SIEM rule can still find what *would* have
been blocked. `status_id` is about the operation: a blocked one failed.

`actor.process` is the process that asked (the native `process`); for exec the
class's `process` is the image being launched (same pid, the new file). Facts
OCSF has no attribute for (policy, rule, access mode, inode/dev, cgroup) go
under `unmapped`, as the spec asks.
"""

from __future__ import annotations

import posixpath
from typing import Any

from sentinel import __version__ as _SENTINEL_VERSION
from sentinel.output.native import Event, section, summary, timestamp_ms

OCSF_VERSION = "1.3.0"

_PRODUCT = {"name": "sentinel", "vendor_name": "sentinel", "version": _SENTINEL_VERSION}

# operation -> (category_uid, category_name, class_uid, class_name, activity_id, activity_name)
_ALERT_CLASS = {
    "exec": (1, "System Activity", 1007, "Process Activity", 1, "Launch"),
    "open": (1, "System Activity", 1001, "File System Activity", 14, "Open"),
    "connect": (4, "Network Activity", 4001, "Network Activity", 1, "Open"),
}

_SEVERITY = {"low": (2, "Low"), "medium": (3, "Medium"), "high": (4, "High"),
             "critical": (5, "Critical")}
_INFO = (1, "Informational")

# status.state -> (activity_id, activity_name, status_id)
_STATUS = {
    "started": (3, "Start", 1),
    "stopped": (4, "Stop", 1),
    "reloaded": (8, "Update", 1),
    "reload_rejected": (8, "Update", 2),
}
_STATUS_NAME = {0: "Unknown", 1: "Success", 2: "Failure"}


def format_event(native: Event) -> dict[str, Any]:
    """Return the OCSF event for one native event."""
    kind = section(native, "event").get("kind")
    if kind == "alert":
        return _alert(native)
    if kind == "lost":
        return _lost(native)
    return _status(native)


def _base(native: Event, category: tuple[int, str], klass: tuple[int, str],
          activity: tuple[int, str], severity: tuple[int, str], status_id: int,
          profiles: list[str]) -> dict[str, Any]:
    event = section(native, "event")
    metadata: dict[str, Any] = {
        "version": OCSF_VERSION,
        "product": dict(_PRODUCT),
        "profiles": profiles,
        "original_time": native["@timestamp"],
    }
    if "seq" in event:
        # metadata.sequence is OCSF's "sequence number of the event"; it is
        # what lets a consumer see gaps.
        metadata["sequence"] = event["seq"]
    out: dict[str, Any] = {
        "category_uid": category[0],
        "category_name": category[1],
        "class_uid": klass[0],
        "class_name": klass[1],
        "activity_id": activity[0],
        "activity_name": activity[1],
        "type_uid": klass[0] * 100 + activity[0],
        "type_name": f"{klass[1]}: {activity[1]}",
        "severity_id": severity[0],
        "severity": severity[1],
        "status_id": status_id,
        "status": _STATUS_NAME[status_id],
        "time": timestamp_ms(str(native["@timestamp"])),
        "message": summary(native),
        "metadata": metadata,
    }
    host = section(native, "host")
    if host.get("hostname"):
        # Required by the host profile; type_id 0 = Unknown (server vs desktop
        # is not something the sensor knows).
        out["device"] = {"hostname": host["hostname"], "type_id": 0, "type": "Unknown"}
    return out


def _alert(native: Event) -> dict[str, Any]:
    event = section(native, "event")
    operation = str(event.get("operation"))
    cat_uid, cat_name, cls_uid, cls_name, act_id, act_name = _ALERT_CLASS[operation]
    rule = section(native, "rule")
    blocked = event.get("outcome") == "blocked"
    out = _base(native, (cat_uid, cat_name), (cls_uid, cls_name), (act_id, act_name),
                _SEVERITY.get(str(rule.get("severity")), _INFO), 2 if blocked else 1,
                ["host", "security_control"])
    denied = event.get("action") == "deny" and blocked
    out.update(
        action_id=2 if denied else 1,
        action="Denied" if denied else "Allowed",
        disposition_id=2 if blocked else 1,
        disposition="Blocked" if blocked else "Allowed",
    )
    if event.get("action") == "would_deny":
        out["observables"] = [{"name": "sentinel.would_deny", "type_id": 99,
                               "type": "Other", "value": "true"}]
    process = section(native, "process")
    actor = _process(process)
    out["actor"] = {"process": actor}
    file = section(native, "file")
    network = section(native, "network")
    if operation == "exec":
        launched: dict[str, Any] = {"pid": process.get("pid"), "file": _file(file)}
        if process.get("cmdline"):
            launched["cmd_line"] = " ".join(str(a) for a in process["cmdline"])
        out["process"] = launched
    elif operation == "open":
        out["file"] = _file(file)
    elif network:
        family = network.get("family")
        out["dst_endpoint"] = {"ip": network.get("dst_ip"), "port": network.get("dst_port")}
        protocol = str(network.get("protocol", ""))
        out["connection_info"] = {
            "protocol_name": protocol,
            "protocol_num": {"tcp": 6, "udp": 17}.get(protocol),
            "protocol_ver_id": {"ipv4": 4, "ipv6": 6}.get(str(family), 0),
            "direction_id": 2,
            "direction": "Outbound",
        }
    unmapped: dict[str, Any] = {
        "event": {"kind": "alert", "action": event.get("action"),
                  "outcome": event.get("outcome"), "operation": operation},
        "policy": dict(section(native, "policy")),
        "rule": dict(rule),
        "process": {"cgroup": process.get("cgroup"), "gid": process.get("gid")},
    }
    if file:
        unmapped["file"] = {"access": list(file.get("access", [])), "dev": file.get("dev"),
                            "inode": file.get("inode")}
        if "via" in file:
            unmapped["file"]["via"] = file["via"]
    out["unmapped"] = unmapped
    return out


def _process(process: Any) -> dict[str, Any]:
    cmdline = [str(a) for a in process.get("cmdline") or []]
    exe = process.get("exe")
    result: dict[str, Any] = {
        "pid": process.get("pid"),
        "tid": process.get("tid"),
        "name": process.get("comm"),
        "cmd_line": " ".join(cmdline),
        "user": {"uid": _str(process.get("uid")),
                 "groups": [{"uid": _str(process.get("gid"))}]},
        "parent_process": {"pid": process.get("ppid")},
    }
    parent_exe = (process.get("parent") or {}).get("exe")
    if parent_exe:
        result["parent_process"]["file"] = {"path": parent_exe, "name": posixpath.basename(str(parent_exe)),
                                            "type_id": 1, "type": "Regular File"}
    if exe:
        result["file"] = {"path": exe, "name": posixpath.basename(str(exe)), "type_id": 1,
                          "type": "Regular File"}
    return result


def _file(file: Any) -> dict[str, Any]:
    path = str(file.get("path", ""))
    return {
        "path": path,
        "name": posixpath.basename(path),
        "parent_folder": posixpath.dirname(path),
        "type_id": 1,
        "type": "Regular File",
    }


def _lost(native: Event) -> dict[str, Any]:
    count = int(section(native, "lost").get("count", 0))
    out = _base(native, (1, "System Activity"), (1008, "Event Log Activity"), (99, "Drop"),
                (3, "Medium"), 2, ["host"])
    out["count"] = count
    out["log_provider"] = "sentinel"
    out["log_name"] = "sn_events"
    out["status_detail"] = f"the kernel could not deliver {count} events"
    out["unmapped"] = {"event": {"kind": "lost"}, "lost": {"count": count}}
    return out


def _status(native: Event) -> dict[str, Any]:
    status = section(native, "status")
    state = str(status.get("state", ""))
    act_id, act_name, status_id = _STATUS.get(state, (99, state or "Other", 0))
    severity = (3, "Medium") if status_id == 2 else _INFO
    out = _base(native, (6, "Application Activity"), (6002, "Application Lifecycle"),
                (act_id, act_name), severity, status_id, ["host"])
    out["app"] = dict(_PRODUCT)
    if status.get("message"):
        out["status_detail"] = status["message"]
    out["unmapped"] = {"event": {"kind": "status"}, "status": dict(status)}
    return out


def _str(value: Any) -> str | None:
    return None if value is None else str(value)
