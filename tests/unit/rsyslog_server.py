"""A real rsyslogd on loopback for end-to-end syslog tests.

It listens on UDP and TCP (127.0.0.1) and on a unix datagram socket in its
own tmp dir, and writes every message it parses to `out.log` through a
template that prints the parsed RFC 5424 fields, so tests check what a real
receiver understood, not what we think we sent.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

RSYSLOGD = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"

_CONF = """\
global(workDirectory="{dir}" maxMessageSize="64k")
module(load="imudp")
module(load="imtcp")
module(load="imuxsock" SysSock.Use="off")
input(type="imudp" address="127.0.0.1" port="{udp}")
input(type="imtcp" address="127.0.0.1" port="{tcp}" listenPortFileName="{dir}/tcp.port")
input(type="imuxsock" Socket="{dir}/log.sock" useSpecialParser="off" parseHostname="on")
template(name="fields" type="string"
         string="%inputname%|%pri%|%hostname%|%app-name%|%procid%|%msgid%|%structured-data%|%msg%\\n")
*.* action(type="omfile" file="{dir}/out.log" template="fields")
"""


@dataclass(frozen=True)
class Line:
    """One message as rsyslog parsed it."""

    input: str
    pri: int
    hostname: str
    app: str
    procid: str
    msgid: str
    sd: str
    msg: str


def available() -> bool:
    return os.access(RSYSLOGD, os.X_OK)


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class RsyslogServer:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.udp_port = _free_udp_port()
        self.tcp_port = 0  # ephemeral on first start, then kept across restarts
        self.unix_path = str(directory / "log.sock")
        self.out = directory / "out.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> None:
        (self.dir / "tcp.port").unlink(missing_ok=True)
        conf = self.dir / "rsyslog.conf"
        conf.write_text(_CONF.format(dir=self.dir, udp=self.udp_port, tcp=self.tcp_port))
        self._proc = subprocess.Popen(
            [RSYSLOGD, "-n", "-f", str(conf), "-i", str(self.dir / "rsyslogd.pid")],
            stdout=open(self.dir / "rsyslogd.stdout", "ab"), stderr=subprocess.STDOUT,
        )
        port_file = self.dir / "tcp.port"
        if self.tcp_port == 0:
            # rsyslog writes the port file only for an ephemeral port.
            self._wait(lambda: port_file.exists() and port_file.read_text().strip() != "",
                       timeout, "tcp listener")
            self.tcp_port = int(port_file.read_text())
        self._probe(timeout)

    def _probe(self, timeout: float) -> None:
        """Ready means each input delivered a message to the output file.

        Probes are re-sent until each input's shows up: UDP has no handshake,
        and the sockets appear before rsyslog's main loop reads them.
        """
        tag = f"probe-{time.monotonic_ns()}"
        msg = f"<14>1 - probe test - {tag} - ready".encode()
        deadline = time.monotonic() + timeout
        inputs: set[str] = set()
        while True:
            for send in (self._probe_tcp, self._probe_udp, self._probe_unix):
                try:
                    send(msg)
                except OSError:
                    pass
            time.sleep(0.05)
            inputs = {line.input for line in self.lines() if line.msgid == tag}
            if {"imudp", "imtcp", "imuxsock"} <= inputs:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"rsyslogd not ready; inputs seen: {inputs}; log: "
                                   + (self.dir / "rsyslogd.stdout").read_text()[-2000:])

    def _probe_tcp(self, msg: bytes) -> None:
        with socket.create_connection(("127.0.0.1", self.tcp_port), timeout=2) as tcp:
            tcp.sendall(b"%d %b" % (len(msg), msg))

    def _probe_udp(self, msg: bytes) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.sendto(msg, ("127.0.0.1", self.udp_port))

    def _probe_unix(self, msg: bytes) -> None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as ux:
            ux.sendto(msg, self.unix_path)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def lines(self, msgid: str | None = None) -> list[Line]:
        if not self.out.exists():
            return []
        result = []
        # rsyslog may be mid-write: only newline-terminated lines are complete.
        for raw in self.out.read_text(errors="replace").split("\n")[:-1]:
            parts = raw.split("|", 7)
            if len(parts) == 8:
                line = Line(parts[0], int(parts[1]), *parts[2:])
                if msgid is None or line.msgid == msgid:
                    result.append(line)
        return result

    def wait_for(self, predicate: Callable[[list[Line]], bool], timeout: float = 10.0) -> list[Line]:
        deadline = time.monotonic() + timeout
        while True:
            lines = [x for x in self.lines() if not x.msgid.startswith("probe-")]
            if predicate(lines):
                return lines
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; got {len(lines)} lines: {lines[-3:]}")
            time.sleep(0.05)

    @staticmethod
    def _wait(cond: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                raise TimeoutError(f"rsyslogd {what} not up")
            time.sleep(0.02)
