"""The first slice end to end: `sentinel run` denies reading one file with
EPERM, lets others through, writes the alert, reports status, and `unload`
leaves nothing in the kernel. This test fails if the LSM program is not
attached (checked once by disabling the attach on purpose)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.kernel.conftest import sentinel, sentinel_kernel_objects, start_daemon

pytestmark = pytest.mark.kernel

POLICY = """\
apiVersion: sentinel/v1
kind: Policy
metadata:
  name: deny-file-read
spec:
  mode: enforce
  rules:
    - id: deny-secret-read
      operation: open
      action: deny
      severity: high
      match:
        paths: [{secret}]
        access: [read]
"""


def cat(path: Path | str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["cat", str(path)], capture_output=True, text=True)


def test_open_rule_denies_with_eperm_and_alerts(tmpfs: Path) -> None:
    secret = tmpfs / "secret"
    other = tmpfs / "other"
    secret.write_text("s3cret\n")
    other.write_text("fine\n")
    policy = tmpfs / "policy.yaml"
    policy.write_text(POLICY.format(secret=secret))
    events = tmpfs / "events.jsonl"

    daemon = start_daemon(policy, events)
    try:
        denied = cat(secret)
        assert denied.returncode == 1
        assert "Operation not permitted" in denied.stderr
        assert "s3cret" not in denied.stdout

        allowed = cat(other)  # negative control: an unrelated file on the same tmpfs
        assert allowed.returncode == 0 and allowed.stdout == "fine\n"

        # A different name for the same object gets the same verdict.
        link = tmpfs / "alias"
        link.symlink_to(secret)
        assert cat(link).returncode == 1

        status = sentinel("status", "--json")
        assert status.returncode == 0, status.stdout + status.stderr
        assert '"self_check": "passed"' in status.stdout

        alerts = daemon.wait_events(2)
        assert len(alerts) >= 2, daemon.events(None)
        first = alerts[0]
        assert first["event"]["action"] == "deny"
        assert first["event"]["outcome"] == "blocked"
        assert first["event"]["operation"] == "open"
        assert first["rule"]["id"] == "deny-secret-read"
        assert first["rule"]["severity"] == "high"
        assert first["policy"] == {"name": "deny-file-read", "mode": "enforce"}
        assert first["file"]["path"] == str(secret)
        assert first["file"]["access"] == ["read"]
        assert first["process"]["comm"] == "cat"
        assert first["process"]["exe"].endswith("/cat")
        assert first["process"]["pid"] > 0
        assert alerts[1]["file"]["path"] == str(secret)  # the real path, not the alias
        seqs = [e["event"]["seq"] for e in daemon.events(None)]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    finally:
        err = daemon.stop()
    assert daemon.proc.returncode == 0, err

    # Enforcement outlives the daemon until unload.
    assert cat(secret).returncode == 1
    assert sentinel("unload").returncode == 0
    assert cat(secret).returncode == 0
    assert sentinel("status").returncode == 3
    assert sentinel_kernel_objects() == {"progs": [], "maps": []}


def test_invalid_policy_loads_nothing(tmpfs: Path) -> None:
    policy = tmpfs / "bad.yaml"
    policy.write_text(POLICY.format(secret="relative/path"))
    run = sentinel("run", "--policy", str(policy), "--output", f"jsonl:{tmpfs / 'e.jsonl'}")
    assert run.returncode == 2
    assert "bad.yaml:" in run.stderr
    assert sentinel("status").returncode == 3
    assert sentinel_kernel_objects() == {"progs": [], "maps": []}
