"""process.exe captured in the kernel (bpf/exe.bpf.c), under every mechanism:
connect alerts from short-lived processes, forked children and threads, and
exec alerts, whose hooks cannot call bpf_d_path under fmod_ret and trace.

The helper unlinks its own executable before it acts, so from then on
/proc/PID/exe can only answer "PATH (deleted)", and nothing once the process
is gone: an alert whose process.exe is the plain PATH got it from the path the
kernel stored at the helper's exec. The negative control is a helper started
before the daemon loaded: nothing was stored for it, and its alert carries
what /proc says.

Each mechanism is forced with SENTINEL_FORCE_MECHANISM (the documented test
hook); bpf-lsm is skipped where `bpf` is not an active LSM, trace and
tracepoint run the policy in audit mode. Under tracepoint nothing is stored:
every alert's process.exe is a walk up the dentries of mm->exe_file (for an
exec alert, of the caller's, noted at sys_enter_execve), which also names
processes started before the load, and an unlinked file by its last name.
"""

from __future__ import annotations

import errno
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sentinel.kernel.objects import ENFORCING, FORCE_MECHANISM_ENV, MECH_FMOD_RET, MECH_LSM, MECH_TRACE, MECH_TRACEPOINT
from sentinel.kernel.probe import active_lsms
from tests.kernel.conftest import Daemon, start_daemon, unload_in_process

# It forces each mechanism itself, so one boot (the default LSM list) covers
# all three; under the bpf-removed boot it would repeat the same runs.
pytestmark = [pytest.mark.kernel, pytest.mark.one_config]

DENIED_ADDR = "127.0.0.2"

POLICY = """\
apiVersion: sentinel/v1
kind: Policy
metadata:
  name: exe-capture
spec:
  rules:
    - id: no-egress
      operation: connect
      action: deny
      match:
        addresses: [{addr}]
    - id: no-target
      operation: exec
      action: deny
      match:
        paths: [{target}]
"""


@dataclass
class Setup:
    mechanism: str
    root: Path
    daemon: Daemon
    early: subprocess.Popen[str]  # started before the load: the negative control
    early_path: Path

    @property
    def enforcing(self) -> bool:
        return self.mechanism in ENFORCING

    def helper(self, name: str) -> Path:
        """A fresh copy of the helper: each test may unlink its own."""
        path = self.root / "bin" / f"{name}-{time.monotonic_ns()}"
        shutil.copy(self.root / "sn-op", path)
        path.chmod(0o755)
        return path

    def denied_errno(self) -> int:
        # Nothing listens on the loopback port: an allowed attempt is refused.
        return errno.EPERM if self.enforcing else errno.ECONNREFUSED

    def alerts(self, rule: str, **process: int) -> list[dict[str, Any]]:
        return self.daemon.wait_for(
            lambda a: a["rule"]["id"] == rule and all(a["process"][k] == v for k, v in process.items()))


@pytest.fixture(scope="module", params=[MECH_LSM, MECH_FMOD_RET, MECH_TRACE, MECH_TRACEPOINT])
def setup(request: pytest.FixtureRequest) -> Iterator[Setup]:
    mechanism: str = request.param
    if mechanism == MECH_LSM and "bpf" not in (active_lsms() or []):
        pytest.skip("bpf is not an active LSM here")
    unload_in_process()  # fresh maps: nothing stored for processes started before the load
    root = Path(f"/run/sentinel-exe-{mechanism}")
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(root)], check=True)
    (root / "bin").mkdir()
    subprocess.run(["gcc", "-O2", "-o", str(root / "sn-op"), str(Path(__file__).with_name("sn_op.c"))], check=True)
    shutil.copy("/bin/true", root / "target")
    (root / "policy.yaml").write_text(POLICY.format(addr=DENIED_ADDR, target=root / "target"))

    early_path = root / "bin/early"
    shutil.copy(root / "sn-op", early_path)
    early = subprocess.Popen([str(early_path), "unlink-self", "wait-connect", DENIED_ADDR, "9", "tcp"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert early.stdout is not None and early.stdout.readline() == "ready\n"

    extra = ("--mode", "audit") if mechanism not in ENFORCING else ()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(FORCE_MECHANISM_ENV, mechanism)
        daemon = start_daemon(root / "policy.yaml", root / "events.jsonl", *extra)
    try:
        yield Setup(mechanism, root, daemon, early, early_path)
    finally:
        early.kill()
        early.wait()
        daemon.stop()
        unload_in_process()
        subprocess.run(["umount", "-l", str(root)], check=False)


@pytest.fixture(autouse=True)
def clean_kernel() -> Iterator[None]:
    yield  # the module's daemon stays loaded across these tests


def run_helper(argv: list[str]) -> tuple[int, str]:
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, (argv, out)
    return proc.pid, out.strip()


def assert_kernel_exe(alert: dict[str, Any], path: Path) -> None:
    assert alert["process"]["exe"] == str(path), alert["process"]
    assert "exe" not in alert["process"].get("missing", [])


def test_short_lived_connect_names_its_executable(setup: Setup) -> None:
    helper = setup.helper("connect")
    pid, out = run_helper([str(helper), "unlink-self", "connect", DENIED_ADDR, "9", "tcp"])
    assert int(out) == setup.denied_errno()
    alerts = setup.alerts("no-egress", pid=pid)
    assert alerts, setup.daemon.events(None)
    assert_kernel_exe(alerts[0], helper)


def test_forked_child_inherits_the_executable(setup: Setup) -> None:
    helper = setup.helper("fork")
    pid, out = run_helper([str(helper), "unlink-self", "fork-connect", DENIED_ADDR, "9", "tcp"])
    child, rc = (int(x) for x in out.split())
    assert rc == setup.denied_errno()
    alerts = setup.alerts("no-egress", pid=child)
    assert alerts, setup.daemon.events(None)
    assert alerts[0]["process"]["ppid"] == pid
    assert_kernel_exe(alerts[0], helper)


def test_thread_reads_its_leaders_executable(setup: Setup) -> None:
    helper = setup.helper("thread")
    pid, out = run_helper([str(helper), "unlink-self", "thread-connect", DENIED_ADDR, "9", "tcp"])
    assert int(out) == setup.denied_errno()
    alerts = setup.alerts("no-egress", pid=pid)
    assert alerts, setup.daemon.events(None)
    assert alerts[0]["process"]["tid"] != pid  # it was the second thread
    assert_kernel_exe(alerts[0], helper)


def test_exec_replaces_the_stored_executable(setup: Setup) -> None:
    first, second = setup.helper("first"), setup.helper("second")
    pid, out = run_helper([str(first), "unlink-self", "exec", str(second),
                           "unlink-self", "connect", DENIED_ADDR, "9", "tcp"])
    assert int(out) == setup.denied_errno()
    alerts = setup.alerts("no-egress", pid=pid)  # exec keeps the pid
    assert alerts, setup.daemon.events(None)
    assert_kernel_exe(alerts[0], second)


def test_exec_alert_names_the_caller(setup: Setup) -> None:
    """process.exe of an exec alert is the executable calling execve. Under
    trace the exec goes ahead (audit only), so /proc would name the target."""
    helper = setup.helper("caller")
    # Under bpf-lsm the hook d_paths mm->exe_file now, which would say "(deleted)".
    unlink = [] if setup.mechanism == MECH_LSM else ["unlink-self"]
    proc = subprocess.Popen([str(helper), *unlink, "exec", str(setup.root / "target")],
                            stdout=subprocess.PIPE, text=True)
    out, _ = proc.communicate(timeout=60)
    if setup.enforcing:
        assert out.strip() == str(errno.EPERM)
    else:
        assert proc.returncode == 0 and out == ""  # it became /bin/true
    alerts = setup.alerts("no-target", pid=proc.pid)
    assert alerts, setup.daemon.events(None)
    assert alerts[0]["event"]["operation"] == "exec"
    assert alerts[0]["file"]["path"] == str(setup.root / "target")
    assert_kernel_exe(alerts[0], helper)


def test_process_started_before_load_falls_back_to_proc(setup: Setup) -> None:
    """Negative control: nothing was stored for a process exec'd before the
    load, so its executable is what /proc says while it still runs. Under
    tracepoint nothing is stored for anyone: the alert walks mm->exe_file's
    dentries, which name the unlinked file by the name it had."""
    assert setup.early.stdin is not None and setup.early.stdout is not None
    setup.early.stdin.write("go\n")
    setup.early.stdin.flush()
    assert int(setup.early.stdout.readline()) == setup.denied_errno()
    alerts = setup.alerts("no-egress", pid=setup.early.pid)
    assert alerts, setup.daemon.events(None)
    if setup.mechanism == MECH_TRACEPOINT:
        assert_kernel_exe(alerts[0], setup.early_path)
    else:
        assert alerts[0]["process"]["exe"] == f"{setup.early_path} (deleted)"
    setup.early.stdin.close()
    setup.early.wait(timeout=30)
