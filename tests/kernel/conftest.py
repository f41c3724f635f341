"""Fixtures for kernel scenarios: a tmpfs to put protected files on, the real
`sentinel` command as a subprocess, a clean kernel after every test, and a
kernel log that must stay free of lockups, stalls, oopses and warnings."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sentinel.kernel import pins

REPO = Path(__file__).resolve().parents[2]
BPFTOOL = "bpftool"


def sentinel(*args: str, timeout: float = 120, check: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sentinel.cli", *args],
        capture_output=True, text=True, timeout=timeout, check=check, cwd=REPO,
    )


def bpftool_json(*args: str) -> Any:
    out = subprocess.run([BPFTOOL, "-j", *args], capture_output=True, text=True, check=True).stdout
    return json.loads(out or "[]")


def sentinel_kernel_objects() -> dict[str, list[str]]:
    """Programs, maps and links of sentinel's in the kernel, by bpftool."""
    progs = [p.get("name", "") for p in bpftool_json("prog", "show")]
    maps = [m.get("name", "") for m in bpftool_json("map", "show")]
    return {
        "progs": [p for p in progs if p.startswith(("lsm_", "fmodret_", "fentry_", "tp_"))],
        "maps": [m for m in maps if m.startswith("sn_")],
    }


# What the kernel prints when it is in trouble: soft and hard lockups, RCU
# stalls, hung tasks, oopses and BUG()s, and WARN()s (BPF's among them). One
# extended regular expression, which scripts/vm-run also greps the console for.
KERNEL_TROUBLE = re.compile((REPO / "scripts/kernel-trouble.ere").read_text().strip())


def read_kmsg(fd: int) -> list[str]:
    """The kernel log records that arrived since FD last read (non-blocking /dev/kmsg)."""
    lines: list[str] = []
    while True:
        try:
            record = os.read(fd, 8192)
        except BlockingIOError:
            return lines
        except OSError:  # EPIPE: records were overwritten before we read them; go on from the next
            continue
        if not record:
            return lines
        # "level,seq,usec,flags;message"
        lines.append(record.decode(errors="replace").split(";", 1)[-1].rstrip("\n"))


@pytest.fixture(scope="session")
def kmsg() -> Iterator[int]:
    fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
    os.lseek(fd, 0, os.SEEK_END)  # what the boot printed is not this suite's doing
    yield fd
    os.close(fd)


@pytest.fixture(autouse=True)
def kernel_log_clean(kmsg: int) -> Iterator[None]:
    """Fail a scenario during which the kernel reported a lockup, a stall, an
    oops or a warning: a passing test over a kernel in trouble is no pass."""
    read_kmsg(kmsg)
    yield
    trouble = [line for line in read_kmsg(kmsg) if KERNEL_TROUBLE.search(line)]
    if trouble:
        pytest.fail("the kernel log reported trouble during this test:\n" + "\n".join(trouble[:40]), pytrace=False)


@pytest.fixture
def tmpfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh tmpfs: the guest's root is 9p and /etc an overlay, and identities
    on tmpfs are what both stat() and the kernel hooks see."""
    path = Path("/run/sentinel-test") / str(time.monotonic_ns())
    path.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(path)], check=True)
    yield path
    subprocess.run(["umount", "-l", str(path)], check=False)


def unload_in_process() -> None:
    """What `sentinel unload` does, run in this process: a clean-up between
    scenarios need not pay for the command's interpreter start, which takes
    seconds under the VM's emulation. Tests of `unload` itself call the command."""
    from sentinel.commands import unload

    unload.run(argparse.Namespace())


@pytest.fixture(autouse=True)
def clean_kernel() -> Iterator[None]:
    """Every scenario starts and ends with nothing of sentinel's loaded."""
    unload_in_process()
    yield
    unload_in_process()


class Daemon:
    def __init__(self, proc: subprocess.Popen[str], events: Path) -> None:
        self.proc = proc
        self.events_path = events

    def events(self, kind: str | None = "alert") -> list[dict[str, Any]]:
        if not self.events_path.exists():
            return []
        text = self.events_path.read_text()
        # The daemon may be half-way through writing its last line (a long
        # status message arrives in more than one write): only whole lines count.
        lines = text.split("\n")[:-1]
        out = [json.loads(line) for line in lines if line.strip()]
        return [e for e in out if kind is None or e["event"]["kind"] == kind]

    def wait_events(self, n: int, kind: str = "alert", timeout: float = 30) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.events(kind)
            if len(found) >= n:
                return found
            time.sleep(0.2)
        return self.events(kind)

    def wait_for(self, pred: Callable[[dict[str, Any]], bool], timeout: float = 30) -> list[dict[str, Any]]:
        """Alerts matching PRED, once at least one has arrived (or the timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            found = [e for e in self.events() if pred(e)]
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.2)

    def wait_for_status(self, state: str, timeout: float = 30) -> list[dict[str, Any]]:
        """Status events in STATE, once at least one has arrived (or the timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            found = [e for e in self.events("status") if e["status"]["state"] == state]
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.2)

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            _, err = self.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return err


def _pid_file_names(pid: int) -> bool:
    try:
        return int(pins.PID_FILE.read_text().strip()) == pid
    except (OSError, ValueError):
        return False


def status_says_enforcing() -> bool:
    """What `sentinel status` exits 0 for, asked in this process: the command's
    interpreter start costs seconds under emulation, at every poll. Tests of
    `status` itself call the command."""
    from sentinel.commands import status
    from sentinel.errors import SentinelError

    try:
        info = status.gather()
    except SentinelError:
        return False
    return bool(info["loaded"]) and info["self_check"] == "passed"


def start_daemon(policy: Path, events: Path, *extra: str, timeout: float = 300) -> Daemon:
    """`sentinel run` in the background, returned once this daemon's own load
    passed the self-check and `status` says enforcing."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "sentinel.cli", "run", "--policy", str(policy), "--output", f"jsonl:{events}", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"daemon exited {proc.returncode}:\n{out}\n{err}")
        # The pid file names this daemon only once its own load passed the
        # self-check: after a kill -9 the pinned state alone already reports enforcement.
        if _pid_file_names(proc.pid) and status_says_enforcing():
            return Daemon(proc, events)
        time.sleep(0.5)
    proc.kill()
    raise AssertionError("daemon did not report enforcement in time:\n" + proc.communicate()[1])
