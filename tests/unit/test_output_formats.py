"""Each format's required fields for exec, open, connect, lost and status events."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sentinel.output import ecs, native, ocsf
from tests.unit import samples


def test_native_is_identity_in_content_and_canonical_in_order() -> None:
    event = samples.open_alert()
    shuffled = dict(reversed(list(event.items())))
    shuffled["network"] = None
    out = native.format_event(shuffled)
    assert out == event
    assert list(out)[:2] == ["@timestamp", "event"]
    assert "network" not in out


def test_native_rejects_half_events() -> None:
    with pytest.raises(ValueError):
        native.format_event({"event": {"kind": "alert"}})


def test_timestamp_ms_is_exact() -> None:
    assert native.timestamp_ms("1970-01-01T00:00:01.123999Z") == 1123
    assert native.timestamp_ms("2026-11-21T22:10:00.123456Z") == 1795299000123


@pytest.mark.parametrize("event", samples.all_events(), ids=lambda e: e["event"].get("operation", e["event"]["kind"]))
def test_every_format_is_json_serialisable(event: dict[str, object]) -> None:
    for fmt in (native.format_event, ecs.format_event, ocsf.format_event):
        json.loads(json.dumps(fmt(event), allow_nan=False))


# ---------------------------------------------------------------- ECS

def _ecs_common(doc: dict[str, Any]) -> None:
    assert doc["ecs"] == {"version": ecs.ECS_VERSION}
    assert ecs.ECS_VERSION.startswith("8.")
    assert doc["host"] == {"hostname": "web-1", "name": "web-1"}
    assert isinstance(doc["message"], str) and doc["message"]


def test_ecs_exec() -> None:
    doc = ecs.format_event(samples.exec_alert())
    _ecs_common(doc)
    ev = doc["event"]
    assert ev["kind"] == "alert"
    assert ev["category"] == ["process", "intrusion_detection"]
    assert ev["type"] == ["start", "denied"]
    assert ev["action"] == "deny" and ev["outcome"] == "failure"
    assert ev["sequence"] == 18 and ev["severity"] == 99
    assert doc["rule"] == {"id": "no-nc", "name": "no-nc", "ruleset": "baseline"}
    proc = doc["process"]
    assert proc["pid"] == 4242 and proc["thread"] == {"id": 4243}
    assert proc["parent"] == {"pid": 1, "executable": "/usr/lib/systemd/systemd"}
    assert proc["user"] == {"id": "1000"} and proc["group"] == {"id": "1001"}
    assert proc["name"] == "bash" and proc["executable"] == "/usr/bin/bash"
    assert proc["args"] == ["bash", "-c", "nc -l 4444"] and proc["args_count"] == 3
    assert proc["command_line"] == "bash -c nc -l 4444"
    assert doc["file"]["path"] == "/usr/bin/nc.openbsd"
    assert doc["sentinel"]["policy"] == {"name": "baseline", "mode": "enforce"}


def test_ecs_open() -> None:
    doc = ecs.format_event(samples.open_alert())
    _ecs_common(doc)
    assert doc["event"]["category"][0] == "file"
    assert doc["event"]["type"] == ["access", "denied"]
    assert doc["file"] == {"path": "/etc/shadow", "name": "shadow", "directory": "/etc",
                           "inode": "1234", "device": "2049"}
    assert doc["sentinel"]["file"]["access"] == ["read"]
    assert doc["sentinel"]["process"]["cgroup"] == "/user.slice"
    assert "destination" not in doc


def test_ecs_would_deny_succeeds() -> None:
    doc = ecs.format_event(samples.open_alert(action="would_deny", outcome="allowed"))
    assert doc["event"]["action"] == "would_deny"
    assert doc["event"]["outcome"] == "success"
    assert doc["event"]["type"] == ["access", "allowed"]


def test_ecs_connect() -> None:
    doc = ecs.format_event(samples.connect_alert())
    _ecs_common(doc)
    assert doc["event"]["category"] == ["network", "intrusion_detection"]
    assert doc["event"]["type"] == ["connection", "allowed"]
    assert doc["event"]["outcome"] == "success" and doc["event"]["severity"] == 21
    assert doc["destination"] == {"ip": "203.0.113.7", "port": 22}
    assert doc["network"] == {"transport": "tcp", "type": "ipv4", "direction": "egress"}
    assert "file" not in doc
    assert doc["rule"]["ruleset"] == "egress"


def test_ecs_lost() -> None:
    doc = ecs.format_event(samples.lost_event(7))
    _ecs_common(doc)
    assert doc["event"]["kind"] == "event"
    assert doc["event"]["action"] == "events_lost"
    assert doc["event"]["sequence"] == 20
    assert doc["sentinel"]["lost"] == {"count": 7}
    assert "rule" not in doc and "process" not in doc


@pytest.mark.parametrize("state,category,etype,outcome", [
    ("started", "process", "start", "success"),
    ("stopped", "process", "end", "success"),
    ("reloaded", "configuration", "change", "success"),
    ("reload_rejected", "configuration", "change", "failure"),
])
def test_ecs_status(state: str, category: str, etype: str, outcome: str) -> None:
    doc = ecs.format_event(samples.status_event(state, "why"))
    _ecs_common(doc)
    ev = doc["event"]
    assert (ev["kind"], ev["category"], ev["type"], ev["outcome"]) == (
        "event", [category], [etype], outcome)
    assert ev["action"] == state
    assert doc["sentinel"]["status"]["mechanism"] == "bpf-lsm"
    assert doc["message"] == f"sentinel {state}: why"


# ---------------------------------------------------------------- OCSF

def _ocsf_common(doc: dict[str, Any], class_uid: int, activity_id: int,
                 category_uid: int) -> None:
    assert doc["class_uid"] == class_uid
    assert doc["activity_id"] == activity_id
    assert doc["category_uid"] == category_uid
    assert doc["type_uid"] == class_uid * 100 + activity_id
    assert isinstance(doc["severity_id"], int)
    assert isinstance(doc["time"], int) and doc["time"] > 1_700_000_000_000
    meta = doc["metadata"]
    assert meta["version"] == ocsf.OCSF_VERSION
    assert meta["product"]["name"] == "sentinel"
    assert meta["product"]["vendor_name"] and meta["product"]["version"]
    assert doc["device"]["hostname"] == "web-1"
    assert "unmapped" in doc


def test_ocsf_exec_is_process_launch() -> None:
    doc = ocsf.format_event(samples.exec_alert())
    _ocsf_common(doc, 1007, 1, 1)
    assert doc["activity_name"] == "Launch"
    assert doc["severity_id"] == 5
    assert (doc["action_id"], doc["disposition_id"], doc["status_id"]) == (2, 2, 2)
    actor = doc["actor"]["process"]
    assert actor["pid"] == 4242 and actor["tid"] == 4243
    assert actor["file"]["path"] == "/usr/bin/bash"
    assert actor["user"]["uid"] == "1000"
    assert actor["parent_process"]["pid"] == 1
    assert actor["parent_process"]["file"]["path"] == "/usr/lib/systemd/systemd"
    assert doc["process"]["file"]["path"] == "/usr/bin/nc.openbsd"
    assert doc["unmapped"]["rule"] == {"id": "no-nc", "severity": "critical"}
    assert doc["unmapped"]["policy"]["name"] == "baseline"
    assert doc["metadata"]["sequence"] == 18


def test_ocsf_open_is_file_open() -> None:
    doc = ocsf.format_event(samples.open_alert())
    _ocsf_common(doc, 1001, 14, 1)
    assert doc["type_uid"] == 100114
    assert doc["file"]["path"] == "/etc/shadow" and doc["file"]["name"] == "shadow"
    assert doc["severity_id"] == 4
    assert doc["disposition"] == "Blocked" and doc["action"] == "Denied"
    assert doc["unmapped"]["file"] == {"access": ["read"], "dev": 2049, "inode": 1234}
    assert doc["time"] == 1795299000123


def test_ocsf_audit_mode_would_deny_is_allowed_with_observation() -> None:
    doc = ocsf.format_event(samples.open_alert(action="would_deny", outcome="allowed"))
    assert (doc["action_id"], doc["disposition_id"], doc["status_id"]) == (1, 1, 1)
    assert {"name": "sentinel.would_deny", "type_id": 99, "type": "Other",
            "value": "true"} in doc["observables"]
    assert doc["unmapped"]["event"]["action"] == "would_deny"


def test_ocsf_connect_is_network_open() -> None:
    doc = ocsf.format_event(samples.connect_alert())
    _ocsf_common(doc, 4001, 1, 4)
    assert doc["dst_endpoint"] == {"ip": "203.0.113.7", "port": 22}
    info = doc["connection_info"]
    assert info["protocol_name"] == "tcp" and info["protocol_num"] == 6
    assert info["protocol_ver_id"] == 4 and info["direction_id"] == 2
    assert (doc["action_id"], doc["disposition_id"]) == (1, 1)
    assert doc["severity_id"] == 2
    assert "observables" not in doc


def test_ocsf_lost_is_event_log_activity() -> None:
    doc = ocsf.format_event(samples.lost_event(12))
    _ocsf_common(doc, 1008, 99, 1)
    assert doc["count"] == 12 and doc["status_id"] == 2
    assert doc["unmapped"]["lost"] == {"count": 12}


@pytest.mark.parametrize("state,activity_id,status_id", [
    ("started", 3, 1), ("stopped", 4, 1), ("reloaded", 8, 1), ("reload_rejected", 8, 2),
])
def test_ocsf_status_is_application_lifecycle(state: str, activity_id: int,
                                              status_id: int) -> None:
    doc = ocsf.format_event(samples.status_event(state, "bad policy"))
    _ocsf_common(doc, 6002, activity_id, 6)
    assert doc["status_id"] == status_id
    assert doc["app"]["name"] == "sentinel"
    assert doc["status_detail"] == "bad policy"
    assert doc["unmapped"]["status"]["state"] == state
