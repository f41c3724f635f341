"""Where not even fentry loads (issue 4, item 6): the fourth mechanism,
`tracepoint` (classic syscall and sched tracepoints, judging after the fact),
reports would_deny alerts in audit mode and blocks nothing; `run --mode
enforce` refuses it with exit 1 and loads nothing. The guest kernel could
enforce, so the test forces the mechanism with SENTINEL_FORCE_MECHANISM, the
documented test hook.

Every attempt runs in its own process (or is made by this one), and its
alerts are found by pid: each must have exactly the expected alert.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sentinel.kernel.objects import FORCE_MECHANISM_ENV, MECH_TRACEPOINT
from tests.kernel.conftest import Daemon, sentinel, sentinel_kernel_objects, start_daemon, unload_in_process

# The mechanism is forced, so the boot's LSM list changes nothing: one boot runs it.
pytestmark = [pytest.mark.kernel, pytest.mark.one_config]

DENIED_V4 = "127.0.0.2"
DENIED_V6 = "2001:db8::7"
OTHER_V4 = "127.0.0.3"

POLICY = """\
apiVersion: sentinel/v1
kind: Policy
metadata:
  name: observe
spec:
  mode: enforce
  rules:
    - id: no-secret
      operation: open
      action: deny
      match:
        paths: [{secret}]
        access: [read]
    - id: no-write
      operation: open
      action: deny
      match:
        paths: [{wfile}]
        access: [write]
    - id: no-tool
      operation: exec
      action: deny
      match:
        paths: [{tool}]
    - id: no-egress
      operation: connect
      action: deny
      match:
        addresses: [{v4}, "{v6}"]
"""

# One process for every network attempt: its pid finds its alerts, the port
# tells them apart. Prints {label: errno} (0: success).
NET_SCRIPT = r"""
import errno, json, socket, sys
v4, v6, other, p_direct, p_mapped, p_other = sys.argv[1], sys.argv[2], sys.argv[3], *map(int, sys.argv[4:7])
out = {}
def attempt(label, fn):
    try:
        fn()
        out[label] = 0
    except OSError as e:
        out[label] = e.errno
def tcp(family, addr):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(10)
    try:
        s.connect(addr)
    finally:
        s.close()
def udp_sendto(addr, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.sendto(b"x", (addr, port))
    finally:
        s.close()
def udp_sendmsg(addr, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.sendmsg([b"y"], [], 0, (addr, port))
    finally:
        s.close()
attempt("v4", lambda: tcp(socket.AF_INET, (v4, p_direct)))
attempt("mapped", lambda: tcp(socket.AF_INET6, ("::ffff:" + v4, p_mapped)))
attempt("v6", lambda: tcp(socket.AF_INET6, (v6, 9)))
attempt("sendto", lambda: udp_sendto(v4, 7001))
attempt("sendmsg", lambda: udp_sendmsg(v4, 7002))
attempt("other", lambda: tcp(socket.AF_INET, (other, p_other)))
print(json.dumps(out))
"""


@dataclass
class Setup:
    root: Path
    daemon: Daemon

    def path(self, name: str) -> Path:
        return self.root / name

    def alerts_of(self, pid: int, rule: str, n: int = 1) -> list[dict[str, Any]]:
        """PID's alerts for RULE once N have arrived, after a settling wait so
        that a duplicate would be seen too."""
        deadline = time.monotonic() + 30
        while True:
            found = [a for a in self.daemon.events() if a["process"]["pid"] == pid and a["rule"]["id"] == rule]
            if len(found) >= n or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        time.sleep(1.0)
        return [a for a in self.daemon.events() if a["process"]["pid"] == pid and a["rule"]["id"] == rule]


@pytest.fixture(scope="module")
def setup() -> Iterator[Setup]:
    unload_in_process()
    root = Path("/run/sentinel-tracepoint")
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(root)], check=True)
    (root / "secret").write_text("s3cret\n")
    (root / "wfile").write_text("keep\n")
    (root / "other").write_text("fine\n")
    (root / "sub").mkdir()
    (root / "link").symlink_to(root / "secret")
    for name in ("tool", "fine-tool"):
        shutil.copy("/bin/true", root / name)
        (root / name).chmod(0o755)
    (root / "tool-link").symlink_to(root / "tool")
    (root / "policy.yaml").write_text(
        POLICY.format(secret=root / "secret", wfile=root / "wfile", tool=root / "tool", v4=DENIED_V4, v6=DENIED_V6))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(FORCE_MECHANISM_ENV, MECH_TRACEPOINT)
        daemon = start_daemon(root / "policy.yaml", root / "events.jsonl", "--mode", "audit")
    try:
        yield Setup(root, daemon)
    finally:
        daemon.stop()
        unload_in_process()
        subprocess.run(["umount", "-l", str(root)], check=False)


@pytest.fixture(autouse=True)
def clean_kernel() -> Iterator[None]:
    yield  # the module's daemon stays loaded across these tests


def assert_would_deny(alert: dict[str, Any], operation: str, rule: str) -> None:
    assert alert["event"]["operation"] == operation, alert
    assert alert["event"]["action"] == "would_deny" and alert["event"]["outcome"] == "allowed", alert
    assert alert["policy"] == {"name": "observe", "mode": "audit"}, alert
    assert alert["rule"]["id"] == rule, alert


def cat(argv: list[str], **kw: Any) -> int:
    """Run cat; it must succeed (audit never blocks) and print the secret."""
    proc = subprocess.Popen(["cat", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and out == "s3cret\n", (argv, out, err)
    return proc.pid


def test_enforce_through_tracepoint_exits_1_and_loads_nothing(tmp_path: Path) -> None:
    # First in the file: it runs before the module's daemon is started.
    unload_in_process()
    secret = tmp_path / "secret"
    secret.write_text("s\n")
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY.format(secret=secret, wfile=tmp_path / "w", tool=tmp_path / "tool", v4=DENIED_V4, v6=DENIED_V6))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(FORCE_MECHANISM_ENV, MECH_TRACEPOINT)
        for extra in ([], ["--mode", "enforce"]):
            r = sentinel("run", "--policy", str(policy), "--output", f"jsonl:{tmp_path / 'e.jsonl'}", *extra)
            assert r.returncode == 1, r.stderr
            assert "cannot enforce" in r.stderr and "tracepoint" in r.stderr and "--mode audit" in r.stderr, r.stderr
            assert sentinel("status").returncode == 3
            assert sentinel_kernel_objects() == {"progs": [], "maps": []}


@pytest.mark.parametrize("how", ["path", "symlink", "relative", "proc-fd"])
def test_open_is_reported_by_identity_and_not_blocked(setup: Setup, how: str) -> None:
    secret = setup.path("secret")
    if how == "path":
        pid = cat([str(secret)])
    elif how == "symlink":
        pid = cat([str(setup.path("link"))])
    elif how == "relative":
        pid = cat(["../secret"], cwd=setup.path("sub"))
    else:
        # This process opens it (an alert of its own, another pid); cat
        # reopens it through /proc/self/fd/N.
        fd = os.open(secret, os.O_RDONLY)
        try:
            pid = cat([f"/proc/self/fd/{fd}"], pass_fds=(fd,))
        finally:
            os.close(fd)
    alerts = setup.alerts_of(pid, "no-secret")
    assert len(alerts) == 1, (alerts, setup.daemon.events(None))
    a = alerts[0]
    assert_would_deny(a, "open", "no-secret")
    assert a["file"]["path"] == str(secret)
    assert a["file"]["access"] == ["read"]
    assert a["file"]["inode"] == secret.stat().st_ino
    assert a["process"]["comm"] == "cat"
    assert a["process"]["exe"] == os.path.realpath(shutil.which("cat") or "cat")


def test_o_trunc_counts_as_write(setup: Setup) -> None:
    """O_RDONLY|O_TRUNC: f_mode says read only and the open clears O_TRUNC
    from f_flags before the syscall returns; sys_enter must have noted it."""
    wfile = setup.path("wfile")
    fd = os.open(wfile, os.O_RDONLY | os.O_TRUNC)  # allowed: audit never blocks
    os.close(fd)
    assert wfile.read_text() == ""  # it did truncate
    alerts = setup.alerts_of(os.getpid(), "no-write")
    assert len(alerts) == 1, (alerts, setup.daemon.events(None))
    assert_would_deny(alerts[0], "open", "no-write")
    assert alerts[0]["file"]["path"] == str(wfile)
    assert "write" in alerts[0]["file"]["access"]


def test_exec_is_reported_and_not_blocked(setup: Setup) -> None:
    tool = setup.path("tool")
    for argv in ([str(tool)], [str(setup.path("tool-link"))]):
        proc = subprocess.Popen(argv)
        assert proc.wait(timeout=60) == 0  # it ran
        alerts = setup.alerts_of(proc.pid, "no-tool")
        assert len(alerts) == 1, (argv, alerts, setup.daemon.events(None))
        a = alerts[0]
        assert_would_deny(a, "exec", "no-tool")
        assert a["file"]["path"] == str(tool)  # the object, whatever name was used
        assert a["file"]["inode"] == tool.stat().st_ino
        # the caller's executable (noted at sys_enter_execve), not the new program
        assert a["process"]["exe"] == os.path.realpath(sys.executable), a["process"]


def test_connect_and_sends_are_reported_and_not_blocked(setup: Setup) -> None:
    listeners = []
    ports = []
    for addr in (DENIED_V4, DENIED_V4, OTHER_V4):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((addr, 0))
        s.listen(4)
        listeners.append(s)
        ports.append(s.getsockname()[1])
    try:
        proc = subprocess.Popen([sys.executable, "-c", NET_SCRIPT, DENIED_V4, DENIED_V6, OTHER_V4, *map(str, ports)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = proc.communicate(timeout=120)
    finally:
        for s in listeners:
            s.close()
    assert proc.returncode == 0, err
    results = json.loads(out)
    # audit never blocks: the loopback attempts succeed; the IPv6 one fails
    # for want of a route, never with EPERM
    assert results["v4"] == 0 and results["mapped"] == 0 and results["other"] == 0, results
    assert results["sendto"] == 0 and results["sendmsg"] == 0, results
    assert results["v6"] != errno.EPERM, results

    expected = [
        ("ipv4", "tcp", DENIED_V4, ports[0]),
        ("ipv4", "tcp", DENIED_V4, ports[1]),  # ::ffff:127.0.0.2 is judged as the IPv4 address
        ("ipv4", "udp", DENIED_V4, 7001),      # sendto
        ("ipv4", "udp", DENIED_V4, 7002),      # sendmsg
        ("ipv6", "tcp", DENIED_V6, 9),
    ]
    mine = setup.alerts_of(proc.pid, "no-egress", n=len(expected))
    got = [(a["network"]["family"], a["network"]["protocol"], a["network"]["dst_ip"], a["network"]["dst_port"]) for a in mine]
    assert sorted(got) == sorted(expected), (got, setup.daemon.events(None))
    # negative control: the same process's connect to an unrelated address
    assert not [a for a in setup.daemon.events() if a["process"]["pid"] == proc.pid and a["rule"]["id"] != "no-egress"]
    for a in mine:
        assert_would_deny(a, "connect", "no-egress")
    assert not [a for a in setup.daemon.events() if a.get("network", {}).get("dst_ip") == OTHER_V4]


def test_unrelated_file_and_binary_are_not_reported(setup: Setup) -> None:
    other = setup.path("other")
    r = subprocess.run(["cat", str(other)], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout == "fine\n"
    r2 = subprocess.run(["cat", str(setup.path("wfile"))], capture_output=True, text=True)  # read: the rule is about write
    assert r2.returncode == 0
    assert subprocess.run([str(setup.path("fine-tool"))]).returncode == 0
    # a positive attempt after them, so that their alerts (if any) have had time to arrive
    pid = cat([str(setup.path("secret"))])
    assert setup.alerts_of(pid, "no-secret")
    paths = [a.get("file", {}).get("path") for a in setup.daemon.events()]
    assert str(other) not in paths and str(setup.path("fine-tool")) not in paths
    assert not [a for a in setup.daemon.events()
                if a.get("file", {}).get("path") == str(setup.path("wfile")) and a["process"]["comm"] == "cat"]


def test_status_and_doctor_name_the_mechanism(setup: Setup) -> None:
    status = sentinel("status", "--json")
    assert status.returncode == 0, status.stdout + status.stderr
    info = json.loads(status.stdout)
    assert info["mechanism"] == MECH_TRACEPOINT and info["enforcing"] is False
    assert info["links"] and all(n.split("@")[0].startswith("tp_") for n in info["links"]), info["links"]
    assert info["self_protection"].startswith("inactive")
    started = [e for e in setup.daemon.events("status") if e["status"]["state"] == "started"][0]
    assert started["status"]["mechanism"] == MECH_TRACEPOINT and started["status"]["enforcing"] is False
    assert "nothing can be blocked" in started["status"]["message"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(FORCE_MECHANISM_ENV, MECH_TRACEPOINT)
        # doctor loads all four mechanisms' programs; under emulation, with
        # the tracepoint programs judging each of its opens, that took > 120 s.
        doctor = sentinel("doctor", timeout=600)
    assert "audit mode only, through tracepoint" in doctor.stdout, doctor.stdout
    assert "tracepoint-load  yes" in doctor.stdout, doctor.stdout  # its real programs load on this kernel
