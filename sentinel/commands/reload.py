"""`sentinel reload`: SIGHUP to the running daemon."""

from __future__ import annotations

import argparse
import os
import signal

from sentinel.errors import NotRunning


def run(args: argparse.Namespace) -> int:
    from sentinel.commands.status import daemon_pid

    pid = daemon_pid()
    if pid is None:
        raise NotRunning("no sentinel daemon is running")
    os.kill(pid, signal.SIGHUP)
    print(f"asked daemon {pid} to reload; its status event says whether the policies were accepted")
    return 0
