"""Where nothing can enforce (issue 4, item 6): the third mechanism, `trace`
(fentry on the same security_* functions), reports would_deny alerts in
audit mode and blocks nothing; `run --mode enforce` refuses it with exit 1
and loads nothing. The guest kernel could enforce, so the test forces the
mechanism with SENTINEL_FORCE_MECHANISM, the documented test hook.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.kernel.conftest import sentinel, sentinel_kernel_objects, start_daemon

# The mechanism is forced (SENTINEL_FORCE_MECHANISM), so the boot's LSM list
# changes nothing here: one boot runs it.
pytestmark = [pytest.mark.kernel, pytest.mark.one_config]

POLICY = """\
apiVersion: sentinel/v1
kind: Policy
metadata:
  name: observe
spec:
  mode: {mode}
  rules:
    - id: no-secret
      operation: open
      action: deny
      match:
        paths: [{secret}]
    - id: no-tool
      operation: exec
      action: deny
      match:
        paths: [{tool}]
"""


@pytest.fixture
def forced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTINEL_FORCE_MECHANISM", "trace")


def test_audit_through_trace_reports_and_blocks_nothing(tmpfs: Path, forced: None) -> None:
    secret, other, tool = tmpfs / "secret", tmpfs / "other", tmpfs / "tool"
    secret.write_text("s3cret\n")
    other.write_text("fine\n")
    tool.write_bytes(Path("/bin/true").read_bytes())
    tool.chmod(0o755)
    policy = tmpfs / "policy.yaml"
    policy.write_text(POLICY.format(mode="enforce", secret=secret, tool=tool))
    doctor = sentinel("doctor", timeout=600)  # loads all four mechanisms' programs
    assert "trace" in doctor.stdout and "SENTINEL_FORCE_MECHANISM" in doctor.stdout, doctor.stdout

    daemon = start_daemon(policy, tmpfs / "events.jsonl", "--mode", "audit")
    try:
        r = subprocess.run(["cat", str(secret)], capture_output=True, text=True)
        assert r.returncode == 0 and r.stdout == "s3cret\n"  # observed, not blocked
        assert subprocess.run([str(tool)]).returncode == 0
        os.rename(secret, tmpfs / "renamed")  # a name change is reported too, not blocked
        os.rename(tmpfs / "renamed", secret)
        unrelated = subprocess.run(["cat", str(other)], capture_output=True, text=True)
        assert unrelated.returncode == 0 and unrelated.stdout == "fine\n"  # the open happened
        # A marker after it that does alert: events arrive in the order the
        # kernel recorded them, so once the marker's alert is out, any alert
        # about the unrelated open would be out too.
        marker = subprocess.Popen(["cat", str(secret)], stdout=subprocess.DEVNULL)
        assert marker.wait(30) == 0

        opens = daemon.wait_for(lambda a: a["rule"]["id"] == "no-secret" and "via" not in a["file"])
        assert opens, daemon.events(None)
        a = opens[0]
        assert a["event"]["action"] == "would_deny" and a["event"]["outcome"] == "allowed"
        assert a["policy"] == {"name": "observe", "mode": "audit"}
        assert a["file"]["path"] == str(secret)
        execs = daemon.wait_for(lambda a: a["rule"]["id"] == "no-tool")
        assert execs and execs[0]["event"]["action"] == "would_deny"
        renames = daemon.wait_for(lambda a: a["file"].get("via") == "rename")
        assert renames and renames[0]["event"]["outcome"] == "allowed"
        # Negative control: nothing about the unrelated file, checked once the
        # daemon has processed the marker that followed its open.
        marked = daemon.wait_for(lambda a: a["process"]["pid"] == marker.pid and a["rule"]["id"] == "no-secret")
        assert marked, daemon.events(None)
        assert not [e for e in daemon.events(None) if e.get("file", {}).get("path") == str(other)]

        status = sentinel("status", "--json")
        assert status.returncode == 0, status.stdout + status.stderr
        info = json.loads(status.stdout)
        assert info["mechanism"] == "trace"
        assert all(name.startswith("fentry_") for name in (n.split("@")[0] for n in info["links"]))
        started = daemon.wait_events(1, kind="status")[0]
        assert started["status"]["mechanism"] == "trace" and started["status"]["enforcing"] is False
        assert "nothing can be blocked" in started["status"]["message"]
    finally:
        daemon.stop()
    assert sentinel("unload").returncode == 0


def test_enforce_through_trace_exits_1_and_loads_nothing(tmpfs: Path, forced: None) -> None:
    secret = tmpfs / "secret"
    secret.write_text("s\n")
    policy = tmpfs / "policy.yaml"
    policy.write_text(POLICY.format(mode="enforce", secret=secret, tool=tmpfs / "tool"))
    for extra in ([], ["--mode", "enforce"]):
        r = sentinel("run", "--policy", str(policy), "--output", f"jsonl:{tmpfs / 'e.jsonl'}", *extra)
        assert r.returncode == 1, r.stderr
        assert "cannot enforce" in r.stderr and "trace" in r.stderr and "--mode audit" in r.stderr, r.stderr
        assert sentinel("status").returncode == 3
        assert sentinel_kernel_objects() == {"progs": [], "maps": []}
