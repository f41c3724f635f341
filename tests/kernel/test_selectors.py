"""Selectors in the kernel: binaries and notBinaries by the executable's
identity, uid ranges with their edges, cgroup v2 subtrees."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kernel.conftest import Daemon, sentinel, start_daemon

pytestmark = pytest.mark.kernel

ROOT = Path("/run/sentinel-sel")
CG = Path("/sys/fs/cgroup/sentinel-sel")


def policy(name: str, selector: str, target: str) -> str:
    return f"""\
apiVersion: sentinel/v1
kind: Policy
metadata:
  name: {name}
spec:
  selector:
{selector}
  rules:
    - id: deny-{name}
      operation: open
      action: deny
      match:
        paths: [{ROOT}/data/{target}]
"""


@pytest.fixture(scope="module")
def daemon() -> Iterator[Daemon]:
    sentinel("unload")
    ROOT.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=755", "tmpfs", str(ROOT)], check=True)
    (ROOT / "bin").mkdir()
    (ROOT / "data").mkdir()
    subprocess.run(["gcc", "-O2", "-o", str(ROOT / "bin/tool"), str(Path(__file__).with_name("sn_op.c"))], check=True)
    shutil.copy(ROOT / "bin/tool", ROOT / "bin/other")
    for name in "abcd":
        (ROOT / "data" / name).write_text(name)
        (ROOT / "data" / name).chmod(0o644)
    (CG / "child").mkdir(parents=True, exist_ok=True)
    docs = [
        policy("by-binary", f"    binaries: [{ROOT}/bin/tool]", "a"),
        policy("by-uid", '    uids: ["1000-1999", 3000]', "b"),
        policy("by-cgroup", "    cgroups: [/sentinel-sel]", "c"),
        policy("not-binary", f"    notBinaries: [{ROOT}/bin/tool]", "d"),
    ]
    (ROOT / "policy.yaml").write_text("---\n".join(docs))
    d = start_daemon(ROOT / "policy.yaml", ROOT / "events.jsonl")
    yield d
    d.stop()
    sentinel("unload")
    subprocess.run(["umount", "-l", str(ROOT)], check=False)


@pytest.fixture(autouse=True)
def clean_kernel() -> Iterator[None]:
    yield


def op(binary: str, target: str, uid: int = 0, cgroup: Path | None = None) -> int:
    def setup() -> None:
        if cgroup is not None:
            (cgroup / "cgroup.procs").write_text(str(os.getpid()))
        if uid:
            os.setgid(uid)
            os.setuid(uid)

    out = subprocess.run([str(ROOT / "bin" / binary), "open", str(ROOT / "data" / target), "r"],
                         capture_output=True, text=True, preexec_fn=setup, check=True).stdout
    return int(out.strip())


def test_binaries_by_identity(daemon: Daemon) -> None:
    assert op("tool", "a") == errno.EPERM
    assert op("other", "a") == 0  # same bytes, another file: not selected
    link = ROOT / "bin/alias"
    if not link.exists():
        link.symlink_to(ROOT / "bin/tool")
    assert op("alias", "a") == errno.EPERM  # the executable, whatever it was called


def test_not_binaries(daemon: Daemon) -> None:
    assert op("tool", "d") == 0
    assert op("other", "d") == errno.EPERM


@pytest.mark.parametrize(("uid", "expected"), [
    (999, 0), (1000, errno.EPERM), (1500, errno.EPERM), (1999, errno.EPERM), (2000, 0),
    (2999, 0), (3000, errno.EPERM), (3001, 0), (0, 0),
])
def test_uid_ranges_and_edges(daemon: Daemon, uid: int, expected: int) -> None:
    assert op("other", "b", uid=uid) == expected


def test_cgroup_subtree(daemon: Daemon) -> None:
    assert op("other", "c") == 0
    assert op("other", "c", cgroup=CG) == errno.EPERM
    assert op("other", "c", cgroup=CG / "child") == errno.EPERM  # the subtree is included
    alerts = daemon.wait_for(lambda a: a["rule"]["id"] == "deny-by-cgroup" and a["process"]["cgroup"] == "/sentinel-sel/child")
    assert alerts and alerts[0]["process"]["cgroup_id"] > 0
    # The cgroup is named from the id the hook captured: the process had
    # exited before the daemon could read /proc, and the path is still there.
    assert {a["process"]["cgroup"] for a in daemon.events() if a["rule"]["id"] == "deny-by-cgroup"} \
        >= {"/sentinel-sel", "/sentinel-sel/child"}
    assert all("cgroup" not in a["process"].get("missing", []) for a in alerts)
