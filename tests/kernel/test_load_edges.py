"""What a load binds, and what needs a reload (issue 4, last item).

Rules and selectors are bound to kernel objects when they are loaded: an
exact rule on a path with nothing behind it, or a cgroup selector naming a
cgroup that does not exist yet, matches nothing until a reload after it
exists. That is never silent: the started status event, the daemon's log and
`sentinel status` name every such entry. A subtree rule covers files created
later without a reload.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.kernel.conftest import Daemon, sentinel, start_daemon, unload_in_process

pytestmark = pytest.mark.kernel

LATE_CG = Path("/sys/fs/cgroup/sentinel-late")


def reload_and_wait(daemon: Daemon, n: int) -> None:
    os.kill(daemon.proc.pid, signal.SIGHUP)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if len([e for e in daemon.events(None) if e.get("status", {}).get("state") == "reloaded"]) >= n:
            return
        time.sleep(0.3)
    raise AssertionError(f"no reloaded status event: {daemon.events(None)}")


def test_exact_rule_on_missing_path_is_reported_and_needs_a_reload(tmpfs: Path) -> None:
    missing, present = tmpfs / "later", tmpfs / "present"
    (tmpfs / "dir").mkdir()
    present.write_text("p\n")
    policy = tmpfs / "policy.yaml"
    policy.write_text(f"""\
apiVersion: sentinel/v1
kind: Policy
metadata:
  name: edges
spec:
  rules:
    - id: exact
      operation: open
      action: deny
      match:
        paths: [{missing}, {present}]
    - id: subtree
      operation: open
      action: deny
      match:
        prefixes: [{tmpfs}/dir/]
""")
    daemon = start_daemon(policy, tmpfs / "events.jsonl")
    try:
        started = daemon.wait_events(1, kind="status")[0]["status"]
        assert started["unresolved_paths"] == [str(missing)]
        assert "WARNING" in started["message"] and str(missing) in started["message"]
        info = json.loads(sentinel("status", "--json").stdout)
        assert info["unresolved_paths"] == [str(missing)]
        assert "WARNING" in sentinel("status").stdout

        missing.write_text("created after load\n")
        with pytest.raises(PermissionError):
            (tmpfs / "dir/new").write_text("n\n")  # the subtree rule covers a file created later
        assert subprocess.run(["cat", str(present)], capture_output=True).returncode == 1
        # As reported: the exact rule binds at load, so the file created later is not covered yet...
        assert subprocess.run(["cat", str(missing)], capture_output=True).returncode == 0
        reload_and_wait(daemon, 1)
        # ...and is after a reload, with no warning left.
        assert subprocess.run(["cat", str(missing)], capture_output=True).returncode == 1
        reloaded = [e for e in daemon.events(None) if e.get("status", {}).get("state") == "reloaded"][0]
        assert reloaded["status"]["unresolved_paths"] == []
    finally:
        err = daemon.stop()
    assert str(missing) in err  # the daemon's log names it too


def test_cgroup_created_after_load_needs_a_reload(tmpfs: Path) -> None:
    if LATE_CG.exists():
        LATE_CG.rmdir()
    secret, other = tmpfs / "secret", tmpfs / "other"
    secret.write_text("s\n")
    other.write_text("o\n")
    helper = tmpfs / "sn-op"
    subprocess.run(["gcc", "-O2", "-o", str(helper), str(Path(__file__).with_name("sn_op.c"))], check=True)
    policy = tmpfs / "policy.yaml"
    policy.write_text(f"""\
apiVersion: sentinel/v1
kind: Policy
metadata:
  name: late-cgroup
spec:
  selector:
    cgroups: [/sentinel-late]
  rules:
    - id: no-secret
      operation: open
      action: deny
      match:
        paths: [{secret}]
""")

    def op(target: Path, cgroup: Path | None) -> int:
        def setup() -> None:
            if cgroup is not None:
                (cgroup / "cgroup.procs").write_text(str(os.getpid()))

        out = subprocess.run([str(helper), "open", str(target), "r"], capture_output=True, text=True,
                             preexec_fn=setup, check=True).stdout
        return int(out.strip())

    daemon = start_daemon(policy, tmpfs / "events.jsonl")
    try:
        started = daemon.wait_events(1, kind="status")[0]["status"]
        assert started["unresolved_paths"] == ["cgroup:/sentinel-late"]
        LATE_CG.mkdir()
        # Selected by nothing until the reload: the policy does not widen to everyone either.
        assert op(secret, LATE_CG) == 0
        assert op(secret, None) == 0
        reload_and_wait(daemon, 1)
        assert op(secret, LATE_CG) == errno.EPERM
        assert op(secret, None) == 0  # negative control: outside the cgroup
        assert op(other, LATE_CG) == 0  # negative control: another file
    finally:
        daemon.stop()
        unload_in_process()
        try:
            LATE_CG.rmdir()
        except OSError:
            pass


@pytest.fixture(autouse=True)
def _no_late_cgroup() -> None:
    assert not LATE_CG.exists() or not (LATE_CG / "cgroup.procs").read_text().strip()
