"""No silent loss: flood alerts until the ring buffer overflows, then check
that the alerts delivered plus the `lost` counts the daemon reported equal
the operations that were really judged."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.kernel.conftest import start_daemon

pytestmark = pytest.mark.kernel

OPENS = 30000  # ~2,000 events fit in the 16 MiB ring buffer: this must overflow


def test_flood_lost_count_is_exact(tmpfs: Path) -> None:
    helper = tmpfs / "sn-op"
    subprocess.run(["gcc", "-O2", "-o", str(helper), str(Path(__file__).with_name("sn_op.c"))], check=True)
    target = tmpfs / "watched"
    target.write_text("x")
    policy = tmpfs / "policy.yaml"
    policy.write_text(f"""\
apiVersion: sentinel/v1
kind: Policy
metadata:
  name: watch
spec:
  rules:
    - id: audit-watched
      operation: open
      action: audit
      match:
        paths: [{target}]
""")
    daemon = start_daemon(policy, tmpfs / "events.jsonl")
    try:
        proc = subprocess.run([str(helper), "open-loop", str(target), str(OPENS)], capture_output=True, text=True, check=True)
        assert proc.stdout.strip() == "0"  # audit never blocks
    finally:
        err = daemon.stop()  # the daemon drains the ring and reports the last losses on the way out
    assert daemon.proc.returncode == 0, err
    events = daemon.events(None)
    delivered = sum(1 for e in events if e["event"]["kind"] == "alert" and e["rule"]["id"] == "audit-watched")
    lost = sum(e["lost"]["count"] for e in events if e["event"]["kind"] == "lost")
    print(f"opens={OPENS} delivered={delivered} lost={lost}")
    assert lost > 0, "the flood did not overflow the ring buffer: the test proves nothing"
    assert delivered + lost == OPENS
    seqs = [e["event"]["seq"] for e in events]
    assert seqs == list(range(1, len(seqs) + 1))  # no gap a consumer would misread
