"""connect rules in the kernel: connect(2), unconnected UDP sendto, TCP Fast
Open, IPv4, IPv6 and IPv4-mapped IPv6, CIDR longest-prefix, exact ports over
ranges, protocols, 0.0.0.0 and :: judged as the address they reach.
Loopback addresses only; refused connections prove that the kernel let the
attempt through. Alerts of short-lived processes name their executable
(every mechanism: tests/kernel/test_exe_capture.py)."""

from __future__ import annotations

import ctypes
import errno
import shutil
import socket
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kernel.conftest import Daemon, sentinel, start_daemon

pytestmark = pytest.mark.kernel

ROOT = Path("/run/sentinel-net")
# Listened on by the unspecified-destination tests: in block-range (127.0.0.0/8,
# 6000-6100) and block-v6 (::1, 7000), so a connect that is let through connects.
LO_DENIED, LO6_DENIED = 6077, 7000

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


@pytest.fixture(scope="module")
def unspec_listeners() -> Iterator[int]:
    """Listeners on 127.0.0.1:LO_DENIED and [::1]:LO6_DENIED (both denied by a
    rule) and on 127.0.0.6:N (no rule); yields N."""
    socks = []
    for family, addr in ((socket.AF_INET, ("127.0.0.1", LO_DENIED)), (socket.AF_INET6, ("::1", LO6_DENIED)),
                         (socket.AF_INET, ("127.0.0.6", 0))):
        srv = socket.socket(family, socket.SOCK_STREAM)
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(addr)
        srv.listen(16)
        socks.append(srv)
    yield socks[-1].getsockname()[1]
    for srv in socks:
        srv.close()


def bound_tcp_errno(src: str, host: str, port: int, family: int = socket.AF_INET) -> int:
    """connect() from a socket bound to SRC: 0 or the errno."""
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.bind((src, 0))
        return s.connect_ex((host, port))


def test_unspecified_destination_is_judged_as_loopback(daemon: Daemon, listener: int,
                                                       unspec_listeners: int) -> None:
    """0.0.0.0 and :: reach loopback: a rule on 127.0.0.0/8 or ::1 holds for them."""
    assert tcp_errno("0.0.0.0", listener) == 0  # negative control: 0.0.0.0 reaches the loopback listener
    assert tcp_errno("127.0.0.1", LO_DENIED) == errno.EPERM
    assert tcp_errno("0.0.0.0", LO_DENIED) == errno.EPERM
    assert tcp_errno("::ffff:0.0.0.0", LO_DENIED, socket.AF_INET6) == errno.EPERM
    assert tcp_errno("::", LO6_DENIED, socket.AF_INET6) == errno.EPERM
    assert tcp_errno("::", LO6_DENIED + 1, socket.AF_INET6) == errno.ECONNREFUSED  # no rule on 7001
    # An IPv6 socket bound to a v4-mapped address reaches 127.0.0.1, not ::1:
    # 127.0.0.1:7000 has no rule (and no listener), 127.0.0.1:6077 has both.
    assert bound_tcp_errno("::ffff:127.0.0.1", "::", LO6_DENIED, socket.AF_INET6) == errno.ECONNREFUSED
    assert bound_tcp_errno("::ffff:127.0.0.1", "::", LO_DENIED, socket.AF_INET6) == errno.EPERM


def test_unspecified_destination_reaches_the_bound_address(daemon: Daemon, unspec_listeners: int) -> None:
    # negative control: bound to 127.0.0.6, 0.0.0.0 reaches the 127.0.0.6 listener (not 127.0.0.1)
    assert bound_tcp_errno("127.0.0.6", "0.0.0.0", unspec_listeners) == 0
    assert tcp_errno("0.0.0.0", unspec_listeners) == errno.ECONNREFUSED
    # block-host (127.0.0.2, any port): judged as 127.0.0.2, not as loopback 127.0.0.1
    assert bound_tcp_errno("127.0.0.2", "0.0.0.0", 6199) == errno.EPERM
    assert tcp_errno("0.0.0.0", 6199) == errno.ECONNREFUSED


def test_unspecified_destination_udp_sends(daemon: Daemon, unspec_listeners: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        with pytest.raises(PermissionError):
            s.sendto(b"x", ("0.0.0.0", LO_DENIED))
        with pytest.raises(PermissionError):
            s.sendmsg([b"x"], [], 0, ("0.0.0.0", LO_DENIED))
        assert s.sendto(b"x", ("0.0.0.0", 6101)) == 1  # negative control: no rule on 6101
        assert s.sendto(b"x", ("0.0.0.0", 9999)) == 1  # reaches 127.0.0.1:9999, block-udp is on 127.0.0.4
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.4", 0))  # now 0.0.0.0 reaches 127.0.0.4
        with pytest.raises(PermissionError):
            s.sendto(b"x", ("0.0.0.0", 9999))
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
        with pytest.raises(PermissionError):
            s.sendto(b"x", ("::", LO6_DENIED))
        with pytest.raises(PermissionError):
            s.sendto(b"x", ("::ffff:0.0.0.0", LO_DENIED))
        assert s.sendto(b"x", ("::", LO6_DENIED + 1)) == 1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        assert s.connect_ex(("0.0.0.0", LO_DENIED)) == errno.EPERM


def test_unspecified_destination_tcp_fast_open(daemon: Daemon, listener: int, unspec_listeners: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        with pytest.raises(PermissionError):
            s.sendto(b"x", socket.MSG_FASTOPEN, ("0.0.0.0", LO_DENIED))
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
        with pytest.raises(PermissionError):
            s.sendto(b"x", socket.MSG_FASTOPEN, ("::", LO6_DENIED))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.sendto(b"x", socket.MSG_FASTOPEN, ("0.0.0.0", listener))  # negative control


_libc = ctypes.CDLL(None, use_errno=True)


def sendto_unspec(fd: int, host: str, port: int) -> int:
    """sendto(2) with a sockaddr_in whose family is AF_UNSPEC: bytes sent or -errno."""
    addr = struct.pack("=H", socket.AF_UNSPEC) + struct.pack("!H", port) + socket.inet_aton(host) + bytes(8)
    n = _libc.sendto(fd, b"x", 1, 0, addr, len(addr))
    return int(n) if n >= 0 else -ctypes.get_errno()


def test_udp_send_to_af_unspec_is_judged_as_ipv4(daemon: Daemon, unspec_listeners: int) -> None:
    """udp_sendmsg() takes an AF_UNSPEC address as AF_INET."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        assert sendto_unspec(s.fileno(), "127.0.0.4", 9998) == 1  # negative control: the kernel sends it
        assert sendto_unspec(s.fileno(), "127.0.0.4", 9999) == -errno.EPERM
        assert sendto_unspec(s.fileno(), "0.0.0.0", LO_DENIED) == -errno.EPERM


def test_unspecified_destination_alerts_name_the_reached_address(daemon: Daemon, unspec_listeners: int) -> None:
    assert tcp_errno("0.0.0.0", LO_DENIED) == errno.EPERM
    assert tcp_errno("::", LO6_DENIED, socket.AF_INET6) == errno.EPERM
    assert bound_tcp_errno("127.0.0.2", "0.0.0.0", 6199) == errno.EPERM
    lo = daemon.wait_for(lambda a: a.get("network", {}).get("dst_port") == LO_DENIED)
    assert lo and all(a["network"]["dst_ip"] == "127.0.0.1" and a["network"]["family"] == "ipv4" for a in lo), lo
    assert all(a["rule"]["id"] == "block-range" for a in lo)
    lo6 = daemon.wait_for(lambda a: a.get("network", {}).get("dst_port") == LO6_DENIED)
    assert lo6 and all(a["network"]["dst_ip"] == "::1" and a["rule"]["id"] == "block-v6" for a in lo6), lo6
    bound = daemon.wait_for(lambda a: a.get("network", {}).get("dst_port") == 6199)
    assert bound and all(a["network"]["dst_ip"] == "127.0.0.2" and a["rule"]["id"] == "block-host" for a in bound)
