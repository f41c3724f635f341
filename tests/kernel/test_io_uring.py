"""io_uring opens (issue 4, items 2 and 5): an IORING_OP_OPENAT of a denied
file fails with EPERM, inline or forced into an io-wq worker thread with
IOSQE_ASYNC, and the worker is judged as the process that submitted the
work: a `binaries` selector and a `uids` selector still apply to it.

The helper makes raw io_uring system calls (tests/kernel/sn_op.c), no liburing.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kernel.conftest import Daemon, start_daemon, unload_in_process

pytestmark = pytest.mark.kernel

ROOT = Path("/run/sentinel-uring")

POLICY = f"""\
apiVersion: sentinel/v1
kind: Policy
metadata:
  name: everyone
spec:
  rules:
    - id: no-secret
      operation: open
      action: deny
      match:
        paths: [{ROOT}/data/secret]
---
apiVersion: sentinel/v1
kind: Policy
metadata:
  name: by-binary
spec:
  selector:
    binaries: [{ROOT}/bin/tool]
  rules:
    - id: tool-no-a
      operation: open
      action: deny
      match:
        paths: [{ROOT}/data/a]
---
apiVersion: sentinel/v1
kind: Policy
metadata:
  name: by-uid
spec:
  selector:
    uids: [1234]
  rules:
    - id: uid-no-b
      operation: open
      action: deny
      match:
        paths: [{ROOT}/data/b]
"""


@pytest.fixture(scope="module")
def daemon() -> Iterator[Daemon]:
    unload_in_process()
    ROOT.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=755", "tmpfs", str(ROOT)], check=True)
    (ROOT / "bin").mkdir()
    (ROOT / "data").mkdir()
    subprocess.run(["gcc", "-O2", "-o", str(ROOT / "bin/tool"), str(Path(__file__).with_name("sn_op.c"))], check=True)
    shutil.copy(ROOT / "bin/tool", ROOT / "bin/other")
    for name in ("secret", "a", "b", "free"):
        (ROOT / "data" / name).write_text(name)
        (ROOT / "data" / name).chmod(0o644)
    (ROOT / "policy.yaml").write_text(POLICY)
    d = start_daemon(ROOT / "policy.yaml", ROOT / "events.jsonl")
    yield d
    d.stop()
    unload_in_process()
    subprocess.run(["umount", "-l", str(ROOT)], check=False)


@pytest.fixture(autouse=True)
def clean_kernel() -> Iterator[None]:
    yield


def uring(binary: str, target: str, mode: str, access: str = "r", uid: int = 0) -> int:
    def setup() -> None:
        if uid:
            os.setgid(uid)
            os.setuid(uid)

    out = subprocess.run([str(ROOT / "bin" / binary), "uring-open", str(ROOT / "data" / target), access, mode],
                         capture_output=True, text=True, preexec_fn=setup, check=True).stdout
    return int(out.strip())


def test_io_uring_setup_works_here() -> None:
    # If the kernel refused io_uring, every EPERM below would prove nothing.
    unload_in_process()
    ROOT.mkdir(parents=True, exist_ok=True)
    probe = ROOT / "probe"
    probe.write_text("p")
    binary = Path("/run/sn-op-uring-probe")
    subprocess.run(["gcc", "-O2", "-o", str(binary), str(Path(__file__).with_name("sn_op.c"))], check=True)
    out = subprocess.run([str(binary), "uring-open", str(probe), "r", "async"], capture_output=True, text=True)
    assert out.stdout.strip() == "0", out


@pytest.mark.parametrize("mode", ["inline", "async"])
def test_io_uring_openat_of_denied_file(daemon: Daemon, mode: str) -> None:
    assert uring("other", "secret", mode) == errno.EPERM
    assert uring("other", "secret", mode, access="w") == errno.EPERM
    assert uring("other", "free", mode) == 0  # negative control


def test_worker_threads_are_judged_as_the_submitter(daemon: Daemon) -> None:
    # binaries selector: only bin/tool is denied data/a, also from a worker
    assert uring("tool", "a", "async") == errno.EPERM
    assert uring("other", "a", "async") == 0
    # uids selector: only uid 1234 is denied data/b, also from a worker
    assert uring("other", "b", "async", uid=1234) == errno.EPERM
    assert uring("other", "b", "async", uid=1235) == 0
    assert uring("other", "b", "async") == 0
    alerts = daemon.wait_for(lambda a: a["rule"]["id"] == "tool-no-a")
    assert alerts, daemon.events()
    proc = alerts[-1]["process"]
    # The open ran in an io-wq worker (another thread of the submitter),
    # and the alert names the submitting process and its executable.
    assert proc["tid"] != proc["pid"], proc
    assert proc["comm"].startswith("iou-wrk"), proc
    assert proc["exe"] == str(ROOT / "bin/tool")
    uid_alerts = daemon.wait_for(lambda a: a["rule"]["id"] == "uid-no-b")
    assert uid_alerts and uid_alerts[-1]["process"]["uid"] == 1234
