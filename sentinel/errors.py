"""The exception tree. `cli.py` is the only place that catches SentinelError."""

from __future__ import annotations

from dataclasses import dataclass


class SentinelError(Exception):
    """Base of every error sentinel reports to a user."""

    exit_code: int = 1


class UsageError(SentinelError):
    """Bad command-line arguments."""

    exit_code = 2


class NotRunning(SentinelError):
    """Nothing is loaded in the kernel (for `status`)."""

    exit_code = 3


@dataclass(frozen=True)
class Diagnostic:
    """One problem in a policy file, pointing at its source."""

    file: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.message}"


class PolicyError(SentinelError, ValueError):
    """One or more policy files are invalid; carries every diagnostic at once."""

    exit_code = 2

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = list(diagnostics)
        super().__init__("\n".join(str(d) for d in self.diagnostics))


class KernelError(SentinelError):
    """A kernel or libbpf operation failed.

    Attributes:
        op: what sentinel was doing ("load sentinel.bpf.o", "attach lsm_file_open").
        errno: the positive errno, when the kernel gave one.
        log: libbpf's own messages captured during the call (verifier output included).
    """

    def __init__(self, op: str, errno: int = 0, log: str = "") -> None:
        self.op = op
        self.errno = errno
        self.log = log
        super().__init__(op)

    def __str__(self) -> str:
        import os

        text = self.op
        if self.errno:
            text += f": {os.strerror(self.errno)} (errno {self.errno})"
        tail = [line for line in self.log.strip().splitlines() if line.strip()][-8:]
        if tail:
            text += "\n" + "\n".join("  " + line for line in tail)
        return text


class NotSupported(KernelError):
    """A conclusive 'this kernel lacks X'."""


class MapIncompatible(KernelError):
    """A pinned map differs from what this build expects."""
