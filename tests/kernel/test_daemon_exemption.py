"""The daemon is not governed by user policies: an audit-everything policy
alerts on other processes but not on the daemon's own /proc and file reads
(which would feed back into more alerts), and a reload still reads its files."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.kernel.conftest import sentinel, start_daemon

pytestmark = pytest.mark.kernel


def test_audit_everything_spares_the_daemon(tmpfs: Path) -> None:
    policy = tmpfs / "policy.yaml"
    policy.write_text("""\
apiVersion: sentinel/v1
kind: Policy
metadata:
  name: audit-all
spec:
  defaults: {open: audit}
""")
    daemon = start_daemon(policy, tmpfs / "events.jsonl")
    try:
        cat = subprocess.Popen(["cat", "/etc/hostname"], stdout=subprocess.DEVNULL)
        cat.wait()
        mine = daemon.wait_for(lambda a: a["process"]["pid"] == cat.pid)
        assert mine and all(a["event"]["action"] == "audit" and a["rule"]["id"] == "default" for a in mine)
        assert sentinel("reload").returncode == 0
        reloaded = []
        for _ in range(60):
            reloaded = [e for e in daemon.events(None) if e["event"]["kind"] == "status"
                        and e["status"]["state"] == "reloaded"]
            if reloaded:
                break
            time.sleep(0.5)
        assert reloaded, daemon.events(None)[-5:]
    finally:
        daemon.stop()
    own = [a for a in daemon.events() if a["process"]["pid"] == daemon.proc.pid]
    assert own == []
