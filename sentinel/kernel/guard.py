"""Self-protection: the lease in sn_guard that puts sentinel's maps, pins and
daemon off limits to every other process while the daemon runs.

The kernel side is bpf/guard.bpf.c. The guard holds while
`sn_guard.expires_ns` (CLOCK_BOOTTIME) lies ahead, so it is a lease: the daemon
renews it every second from a thread, clears it when it stops, and a killed
daemon's lease lapses after LEASE_NS. That is what lets `sentinel unload`
after a stop, or a daemon restarted after a crash, take the state over without
anyone else ever being able to.
"""

from __future__ import annotations

import ctypes
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sentinel.errors import KernelError
from sentinel.kernel import abi, pins
from sentinel.kernel.encode import proc_stat_fields, process_start_ticks
from sentinel.kernel.libbpf import Map, open_pinned_map

LEASE_NS = 5_000_000_000
RENEW_EVERY_S = 1.0
_ZERO = bytes(ctypes.c_uint32(0))


def boottime_ns() -> int:
    return time.clock_gettime_ns(time.CLOCK_BOOTTIME)


@dataclass(frozen=True)
class GuardState:
    """The guard as pinned: who holds it and until when."""

    expires_ns: int
    owner_pid: int
    owner_ticks: int

    @property
    def remaining_ns(self) -> int:
        return max(0, self.expires_ns - boottime_ns())

    def owner_alive(self) -> bool:
        """The owner is the process with that pid *and* start time (a recycled
        pid is not), and not on its way out: a killed daemon is exiting, then a
        zombie until its parent reaps it, and holds nothing in either state."""
        try:
            return (
                self.owner_pid > 0
                and process_start_ticks(self.owner_pid) == self.owner_ticks
                and not process_exiting(self.owner_pid)
            )
        except (OSError, ValueError, IndexError):
            return False


PF_EXITING = 0x4  # include/linux/sched.h: set by do_exit before anything else


def process_exiting(pid: int) -> bool:
    """True once PID's main thread is in do_exit (the flags of /proc/PID/stat,
    field 9) or has become a zombie (state Z) or dead (X)."""
    fields = proc_stat_fields(pid)
    return fields[0] in (b"Z", b"X") or bool(int(fields[6]) & PF_EXITING)


def read_guard() -> GuardState | None:
    """The pinned guard, read through a read-only fd (which the guard allows),
    or None when sentinel has nothing pinned."""
    try:
        m = open_pinned_map(str(pins.MAP_DIR / "sn_guard"), "sn_guard", 4, ctypes.sizeof(abi.sn_guard), read_only=True)
    except KernelError:
        return None
    try:
        raw = m.lookup(_ZERO)
    finally:
        m.close()
    if raw is None:
        return None
    g = abi.sn_guard.from_buffer_copy(raw)
    return GuardState(expires_ns=g.expires_ns, owner_pid=g.owner_tgid, owner_ticks=g.owner_ticks)


def wait_until_free(timeout_s: float = LEASE_NS / 1e9 + 1) -> None:
    """Return once no other live process holds the guard.

    The kernel ends a lease when its owner's last thread exits
    (bpf/guard.bpf.c), so after a kill -9 this returns at once; a lease left
    by an older build without that program lapses within LEASE_NS: wait for
    it. A live owner (another daemon) is an error: two daemons must not share
    the state.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        state = read_guard()
        if state is None or state.remaining_ns == 0 or state.owner_pid == os.getpid():
            return
        if state.owner_alive():
            raise KernelError(
                f"sentinel daemon pid {state.owner_pid} holds the pinned state; stop it first "
                "(systemctl stop sentinel, or `sentinel unload`)"
            )
        if time.monotonic() >= deadline:
            raise KernelError("the guard of a dead sentinel daemon did not lapse in time")
        time.sleep(min(0.1, state.remaining_ns / 1e9 + 0.01))


def guard_value(expires_ns: int) -> abi.sn_guard:
    """This process as the guard's owner until EXPIRES_NS, with the pin directories it protects."""
    g = abi.sn_guard(expires_ns=expires_ns, owner_tgid=os.getpid(), owner_ticks=process_start_ticks(os.getpid()))
    root = os.stat(pins.PIN_ROOT)
    g.pin_dev = root.st_dev  # bpffs: stat() and the kernel agree on the anonymous device
    for i, d in enumerate((pins.PIN_ROOT, pins.MAP_DIR, pins.LINK_DIR)):
        g.pin_dirs[i] = os.stat(d).st_ino
    return g


class GuardLease:
    """Holds the guard for this process: renewed from a thread so that a long
    reload or a busy poll loop never lets it lapse."""

    def __init__(self, guard_map: Map, on_error: Callable[[Exception], None]) -> None:
        self._map = guard_map
        self._on_error = on_error
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sentinel-guard", daemon=True)
        self._value = guard_value(0)

    def start(self) -> None:
        self._renew()  # held before start() returns, not a second later
        self._thread.start()

    def _renew(self) -> None:
        self._value.expires_ns = boottime_ns() + LEASE_NS
        self._map.update(_ZERO, self._value)

    def _run(self) -> None:
        while not self._stop.wait(RENEW_EVERY_S):
            try:
                self._renew()
            except KernelError as exc:
                self._on_error(exc)

    def release(self) -> None:
        """Stop renewing and open the guard now (a clean stop hands over at once)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self._value.expires_ns = 0
        self._map.update(_ZERO, self._value)
