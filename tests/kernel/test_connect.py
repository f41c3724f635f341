"""connect rules in the kernel: connect(2), unconnected UDP sendto, TCP Fast
Open, IPv4, IPv6 and IPv4-mapped IPv6, CIDR longest-prefix, exact ports over
ranges, protocols. Loopback addresses only; refused connections prove that
the kernel let the attempt through. Alerts of short-lived processes name
their executable (every mechanism: tests/kernel/test_exe_capture.py)."""

from __future__ import annotations

import errno
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kernel.conftest import Daemon, sentinel, start_daemon

pytestmark = pytest.mark.kernel

ROOT = Path("/run/sentinel-net")

POLICY = """\
apiVersion: sentinel/v1
kind: Policy
metadata:
  name: egress
spec:
  rules:
    - id: block-host
      operation: connect
      action: deny
      severity: high
      match:
        addresses: [127.0.0.2]
    - id: block-range
      operation: connect
      action: deny
      match:
        addresses: [127.0.0.0/8]
        ports: ["6000-6100"]
    - id: allow-one
      operation: connect
      action: allow
      match:
        addresses: [127.0.0.3]
        ports: [6050]
    - id: block-udp
      operation: connect
      action: deny
      match:
        addresses: [127.0.0.4]
        ports: [9999]
        protocols: [udp]
    - id: block-v6
      operation: connect
      action: deny
      match:
        addresses: ["::1"]
        ports: [7000]
    - id: watch
      operation: connect
      action: audit
      severity: low
      match:
        addresses: [127.0.0.5]
"""


@pytest.fixture(scope="module")
def daemon() -> Iterator[Daemon]:
    sentinel("unload")
    subprocess.run(["ip", "link", "set", "lo", "up"], check=False)
    ROOT.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(ROOT)], check=True)
    (ROOT / "policy.yaml").write_text(POLICY)
    d = start_daemon(ROOT / "policy.yaml", ROOT / "events.jsonl")
    yield d
    d.stop()
    sentinel("unload")
    subprocess.run(["umount", "-l", str(ROOT)], check=False)


@pytest.fixture(autouse=True)
def clean_kernel() -> Iterator[None]:
    yield


def tcp_errno(host: str, port: int, family: int = socket.AF_INET) -> int:
    """0 when connected, else the errno of connect()."""
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        return s.connect_ex((host, port))


@pytest.fixture(scope="module")
def listener() -> Iterator[int]:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    yield srv.getsockname()[1]
    srv.close()


def test_tcp_connect_by_address(daemon: Daemon, listener: int) -> None:
    assert tcp_errno("127.0.0.1", listener) == 0  # negative control: a real connection
    assert tcp_errno("127.0.0.2", listener) == errno.EPERM
    assert tcp_errno("127.0.0.2", 1) == errno.EPERM


def test_ipv4_mapped_ipv6_is_judged_as_ipv4(daemon: Daemon) -> None:
    assert tcp_errno("::ffff:127.0.0.2", 80, socket.AF_INET6) == errno.EPERM
    assert tcp_errno("::ffff:127.0.0.6", 80, socket.AF_INET6) == errno.ECONNREFUSED


def test_port_range_edges_and_longest_prefix_exception(daemon: Daemon) -> None:
    assert tcp_errno("127.0.0.1", 5999) == errno.ECONNREFUSED
    assert tcp_errno("127.0.0.1", 6000) == errno.EPERM
    assert tcp_errno("127.0.0.1", 6100) == errno.EPERM
    assert tcp_errno("127.0.0.1", 6101) == errno.ECONNREFUSED
    assert tcp_errno("127.0.0.3", 6050) == errno.ECONNREFUSED  # /32 allow beats the /8 range deny
    assert tcp_errno("127.0.0.3", 6051) == errno.EPERM  # /32 rule does not match: the /8 range decides


def test_udp_sendto_connect_and_protocols(daemon: Daemon) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        with pytest.raises(PermissionError):
            s.sendto(b"x", ("127.0.0.4", 9999))
        assert s.sendto(b"x", ("127.0.0.4", 9998)) == 1
        with pytest.raises(PermissionError):
            s.sendmsg([b"x"], [], 0, ("127.0.0.4", 9999))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        assert s.connect_ex(("127.0.0.4", 9999)) == errno.EPERM
    assert tcp_errno("127.0.0.4", 9999) == errno.ECONNREFUSED  # the rule is udp only


def test_tcp_fast_open(daemon: Daemon, listener: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        with pytest.raises(PermissionError):
            s.sendto(b"x", socket.MSG_FASTOPEN, ("127.0.0.2", listener))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.sendto(b"x", socket.MSG_FASTOPEN, ("127.0.0.1", listener))  # negative control


def test_ipv6(daemon: Daemon) -> None:
    assert tcp_errno("::1", 7000, socket.AF_INET6) == errno.EPERM
    assert tcp_errno("::1", 7001, socket.AF_INET6) == errno.ECONNREFUSED


def test_alerts_carry_the_destination(daemon: Daemon) -> None:
    assert tcp_errno("127.0.0.5", 1) == errno.ECONNREFUSED
    audits = daemon.wait_for(lambda a: a["rule"]["id"] == "watch")
    assert audits and audits[0]["event"]["action"] == "audit" and audits[0]["event"]["outcome"] == "allowed"
    assert audits[0]["network"] == {"family": "ipv4", "protocol": "tcp", "dst_ip": "127.0.0.5", "dst_port": 1}
    v6 = daemon.wait_for(lambda a: a["rule"]["id"] == "block-v6")
    assert v6 and v6[0]["network"]["dst_ip"] == "::1" and v6[0]["network"]["family"] == "ipv6"
    mapped = daemon.wait_for(lambda a: a["rule"]["id"] == "block-host")
    assert mapped and all(a["network"]["dst_ip"] == "127.0.0.2" for a in mapped)
    udp = daemon.wait_for(lambda a: a["rule"]["id"] == "block-udp")
    assert udp and udp[0]["network"]["protocol"] == "udp" and udp[0]["event"]["outcome"] == "blocked"


def test_short_lived_process_and_forked_child_name_their_executable(daemon: Daemon) -> None:
    """The helper unlinks itself first: /proc/PID/exe could only say
    "PATH (deleted)", or nothing once it exited. The plain path in the alert
    is the one the kernel stored at the helper's exec."""
    template = ROOT / "sn-op"
    if not template.exists():
        subprocess.run(["gcc", "-O2", "-o", str(template), str(Path(__file__).with_name("sn_op.c"))], check=True)
    helper, forker = ROOT / "short-lived", ROOT / "forker"
    for path in (helper, forker):
        shutil.copy(template, path)

    alone = subprocess.Popen([str(helper), "unlink-self", "connect", "127.0.0.2", "9", "tcp"],
                             stdout=subprocess.PIPE, text=True)
    assert int(alone.communicate(timeout=60)[0]) == errno.EPERM
    forked = subprocess.Popen([str(forker), "unlink-self", "fork-connect", "127.0.0.2", "9", "tcp"],
                              stdout=subprocess.PIPE, text=True)
    child, rc = (int(x) for x in forked.communicate(timeout=60)[0].split())
    assert rc == errno.EPERM

    alerts = daemon.wait_for(lambda a: a["process"]["pid"] == alone.pid)
    assert alerts and alerts[0]["rule"]["id"] == "block-host"
    assert alerts[0]["process"]["exe"] == str(helper), alerts[0]["process"]
    assert "exe" not in alerts[0]["process"].get("missing", [])
    from_child = daemon.wait_for(lambda a: a["process"]["pid"] == child)
    assert from_child and from_child[0]["process"]["ppid"] == forked.pid
    assert from_child[0]["process"]["exe"] == str(forker), from_child[0]["process"]
