"""`sentinel unload`: stop the daemon if it runs, then remove every program,
link and map sentinel left in the kernel."""

from __future__ import annotations

import argparse
import os
import signal
import time


def run(args: argparse.Namespace) -> int:
    from sentinel.commands.status import daemon_pid
    from sentinel.kernel import guard, pins
    from sentinel.kernel.objects import unload_all

    pid = daemon_pid()
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and daemon_pid() is not None:
            time.sleep(0.1)
    # A stopped daemon released its guard; a killed one's lapses within seconds.
    guard.wait_until_free()
    removed = unload_all()
    for path in (pins.STATUS_FILE, pins.CANARY_FILE, pins.PID_FILE):
        try:
            path.unlink()
        except FileNotFoundError:
            pass
    print(f"removed {len(removed)} pins" if removed else "nothing was loaded")
    return 0
