"""Parse `--output SPEC` strings into a typed description of a sink.

Accepted forms (the contract's "Output SPEC"):

    stdout
    jsonl:PATH
    syslog:udp://HOST:PORT      HOST may be a name, an IPv4 or an [IPv6] literal
    syslog:tcp://HOST:PORT
    syslog:unix:PATH            a datagram socket such as /dev/log

Parsing is separate from opening so that `sentinel run` can reject every bad
SPEC before it loads anything into the kernel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from sentinel.errors import UsageError

DEFAULT_SPEC = "jsonl:/var/log/sentinel/events.jsonl"

_FORMS = ("stdout, jsonl:PATH, syslog:udp://HOST:PORT, syslog:tcp://HOST:PORT, "
          "syslog:unix:PATH")


@dataclass(frozen=True)
class OutputSpec:
    """A parsed SPEC. `str()` gives back the canonical SPEC (used as sink name)."""

    kind: Literal["stdout", "jsonl", "syslog"]
    transport: Literal["", "udp", "tcp", "unix"] = ""
    path: str = ""
    host: str = ""
    port: int = 0

    def __str__(self) -> str:
        if self.kind == "stdout":
            return "stdout"
        if self.kind == "jsonl":
            return f"jsonl:{self.path}"
        if self.transport == "unix":
            return f"syslog:unix:{self.path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"syslog:{self.transport}://{host}:{self.port}"


def parse_spec(text: str) -> OutputSpec:
    """Parse one SPEC.

    Raises:
        UsageError: the SPEC is not one of the accepted forms; the message
            names the SPEC and lists the forms.
    """
    spec = text.strip()
    if spec == "stdout":
        return OutputSpec("stdout")
    scheme, sep, rest = spec.partition(":")
    if not sep:
        raise _bad(text, "unknown output")
    if scheme == "jsonl":
        if not rest:
            raise _bad(text, "jsonl needs a PATH")
        return OutputSpec("jsonl", path=rest)
    if scheme != "syslog":
        raise _bad(text, f"unknown output type {scheme!r}")
    if rest.startswith("unix:"):
        path = rest[len("unix:"):]
        if not path:
            raise _bad(text, "syslog:unix needs a socket PATH")
        return OutputSpec("syslog", "unix", path=path)
    return _parse_network(text, rest)


def _parse_network(text: str, rest: str) -> OutputSpec:
    url = urlsplit(rest)
    if url.scheme not in ("udp", "tcp") or not rest.startswith(f"{url.scheme}://"):
        raise _bad(text, "syslog needs udp://HOST:PORT, tcp://HOST:PORT or unix:PATH")
    if url.path not in ("", "/") or url.query or url.fragment or url.username or url.password:
        raise _bad(text, "only HOST:PORT may follow the scheme")
    try:
        port = url.port
    except ValueError:
        raise _bad(text, "PORT must be a number from 1 to 65535") from None
    if not url.hostname:
        raise _bad(text, "missing HOST")
    if port is None or not 1 <= port <= 65535:
        raise _bad(text, "PORT must be a number from 1 to 65535")
    transport: Literal["udp", "tcp"] = "udp" if url.scheme == "udp" else "tcp"
    return OutputSpec("syslog", transport, host=url.hostname, port=port)


def parse_specs(texts: list[str] | None) -> list[OutputSpec]:
    """Parse every `--output`; the contract's default when none is given.

    Raises:
        UsageError: any SPEC is invalid, or the same SPEC is given twice
            (two writers on one file would interleave rotations).
    """
    specs: list[OutputSpec] = []
    problems: list[str] = []  # every bad SPEC, not just the first
    for text in texts or [DEFAULT_SPEC]:
        try:
            specs.append(parse_spec(text))
        except UsageError as exc:
            problems.append(str(exc))
    names = [str(s) for s in specs]
    for i, name in enumerate(names):
        if name in names[:i] and name not in names[i + 1 :]:
            problems.append(f"output {name!r} given more than once")
    if problems:
        raise UsageError("; ".join(problems))
    return specs


def _bad(text: str, why: str) -> UsageError:
    return UsageError(f"invalid output {text!r}: {why} (expected one of: {_FORMS})")
