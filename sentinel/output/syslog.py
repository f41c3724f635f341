"""RFC 5424 syslog over UDP (RFC 5426), TCP (RFC 6587 octet counting) and a
unix datagram socket (/dev/log style).

Message layout (RFC 5424 section 6):

    <PRI>1 TIMESTAMP HOSTNAME sentinel PROCID MSGID - MSG

PRI = facility * 8 + severity (the record's, from the rule severity);
TIMESTAMP is the event's own `@timestamp`; MSGID is the event kind (alert,
lost, status); STRUCTURED-DATA is "-"; MSG is the JSON event. RFC 5424 asks
for a BOM before a UTF-8 MSG; one is added only when the JSON actually holds
non-ASCII bytes, because the default encoder escapes to ASCII and a BOM would
then only break receivers that parse MSG as JSON.

Transports raise OSError for *transient* failures (peer gone, timeout); the
QueuedSink above them reconnects with capped exponential backoff and retries
the batch, so delivery over TCP is at-least-once across a reconnect. Records
a transport can never send (a datagram too large) are discarded and counted,
never retried forever.

Receiver notes: alerts carry whole command lines, so raise the receiver's
message size limit (rsyslog `global(maxMessageSize="64k")`; its default is
8k and longer messages are truncated). Over a unix socket rsyslog's imuxsock
must parse RFC 5424 headers: `useSpecialParser="off" parseHostname="on"`
(the tests run exactly that). systemd-journald's /dev/log only understands
the BSD format, so on such hosts point the unix sink at rsyslog's socket or
use UDP/TCP to a local collector.
"""

from __future__ import annotations

import errno
import os
import re
import select
import socket
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any, Protocol

from sentinel.output.record import Record

APP_NAME = "sentinel"
FACILITY_AUTHPRIV = 10
"""Default facility: security/authorisation messages, kept out of world-readable logs."""

_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?(Z|[+-]\d\d:\d\d)\Z")
_BOM = b"\xef\xbb\xbf"


def _printable(value: str, limit: int) -> str:
    """RFC 5424 header fields are PRINTUSASCII (33..126) or the NILVALUE '-'."""
    clean = "".join(c for c in value if 33 <= ord(c) <= 126)[:limit]
    return clean or "-"


class Framer:
    """Builds RFC 5424 messages; the header fields that never change are cached."""

    def __init__(self, facility: int = FACILITY_AUTHPRIV, hostname: str | None = None) -> None:
        if not 0 <= facility <= 23:
            raise ValueError("syslog facility must be 0..23")
        self.facility = facility
        self._default_host = _printable(hostname or socket.gethostname(), 255)
        self._procid = str(os.getpid())

    def frame(self, record: Record) -> bytes:
        pri = self.facility * 8 + min(max(record.severity, 0), 7)
        timestamp = record.timestamp if _TIMESTAMP.match(record.timestamp) else (
            datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z"))
        host = _printable(record.hostname, 255) if record.hostname else self._default_host
        msgid = _printable(record.kind, 32)
        header = f"<{pri}>1 {timestamp} {host} {APP_NAME} {self._procid} {msgid} - "
        body = record.data if record.data.isascii() else _BOM + record.data
        return header.encode("ascii") + body


class Transport(Protocol):
    discarded: int

    def send(self, frames: Sequence[bytes]) -> None: ...
    def reset(self) -> None: ...
    def close(self) -> None: ...


class UdpTransport:
    """One datagram per message; fire and forget, as RFC 5426 intends."""

    def __init__(self, host: str, port: int, timeout: float = 5.0) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.discarded = 0
        self._sock: socket.socket | None = None
        self._addr: Any = None  # a sockaddr tuple, shape depends on the family

    def _open(self) -> socket.socket:
        if self._sock is None:
            # Resolved here, not at parse time: a name that does not resolve
            # yet (DNS down at boot) is a transient failure, retried.
            family, _, _, _, addr = socket.getaddrinfo(
                self.host, self.port, type=socket.SOCK_DGRAM)[0]
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sock.settimeout(self.timeout)
            self._sock, self._addr = sock, addr
        return self._sock

    def send(self, frames: Sequence[bytes]) -> None:
        sock = self._open()
        for frame in frames:
            try:
                sock.sendto(frame, self._addr)
            except OSError as exc:
                if exc.errno != errno.EMSGSIZE:
                    raise
                self.discarded += 1  # larger than a datagram can be: never sendable

    def reset(self) -> None:
        self.close()

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class TcpTransport:
    """A stream with octet-counting framing: `LEN SP MSG` (RFC 6587 3.4.1).

    Octet counting rather than LF-termination because the framing must not
    depend on the MSG's content.
    """

    def __init__(self, host: str, port: int, timeout: float = 5.0) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.discarded = 0
        self.connects = 0
        self._sock: socket.socket | None = None

    def send(self, frames: Sequence[bytes]) -> None:
        sock = self._connected()
        data = b"".join(b"%d %b" % (len(f), f) for f in frames)
        # A timeout here means a stalled peer; the caller resets and retries
        # on a fresh connection rather than waiting forever.
        sock.sendall(data)

    def _connected(self) -> socket.socket:
        if self._sock is not None and self._peer_closed(self._sock):
            self.reset()
        if self._sock is None:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            self._sock = sock
            self.connects += 1
        return self._sock

    @staticmethod
    def _peer_closed(sock: socket.socket) -> bool:
        """True when the peer has closed its end (a restarted server).

        Without this check the first batch after a restart is accepted by
        the local kernel and lost with the RST; a syslog server never talks
        back, so a readable socket can only mean EOF or an error.
        """
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return False
        try:
            return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True

    def reset(self) -> None:
        self.close()

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class UnixTransport:
    """Datagrams to a local socket such as /dev/log or rsyslog's imuxsock."""

    def __init__(self, path: str, timeout: float = 5.0) -> None:
        self.path, self.timeout = path, timeout
        self.discarded = 0
        self._sock: socket.socket | None = None

    def send(self, frames: Sequence[bytes]) -> None:
        if self._sock is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.settimeout(self.timeout)
            try:
                sock.connect(self.path)
            except OSError:
                sock.close()
                raise
            self._sock = sock
        for frame in frames:
            try:
                self._sock.send(frame)
            except OSError as exc:
                if exc.errno != errno.EMSGSIZE:
                    raise  # ECONNREFUSED/ENOENT: the daemon restarted; reconnect
                self.discarded += 1

    def reset(self) -> None:
        self.close()

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class SyslogWriter:
    """Frames records and hands them to a transport (the Writer interface)."""

    def __init__(self, transport: Transport, framer: Framer | None = None) -> None:
        self.transport = transport
        self.framer = framer or Framer()

    @property
    def discarded(self) -> int:
        return self.transport.discarded

    def write(self, records: Sequence[Record]) -> None:
        self.transport.send([self.framer.frame(r) for r in records])

    def flush(self) -> None:
        """Nothing is buffered in user space."""

    def reset(self) -> None:
        self.transport.reset()

    def close(self) -> None:
        self.transport.close()
