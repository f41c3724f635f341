"""`sentinel doctor`: what this kernel can do and which mechanism sentinel uses."""

from __future__ import annotations

import argparse

# What each audit-only mechanism runs on, for the doctor's one-line summary.
_OBSERVING = {
    "trace": "trace (fentry on security_*)",
    "tracepoint": "tracepoint (classic syscall and sched tracepoints, judged after the fact)",
}


def run(args: argparse.Namespace) -> int:
    from sentinel.kernel.probe import probe

    report = probe()
    print(f"kernel: {report.release}")
    for cap in report.capabilities:
        print(f"  {cap.name:16} {'yes' if cap.ok else 'no ':3}  {cap.detail}")
    if report.forced:
        print(f"mechanism forced to {report.forced!r} by SENTINEL_FORCE_MECHANISM (a test hook)")
    if report.mechanism in _OBSERVING:
        print(f"enforcement: NOT POSSIBLE on this kernel; audit mode only, through {_OBSERVING[report.mechanism]}")
        for reason in report.reasons:
            print(f"  - {reason}")
        print("  `sentinel run --mode audit` reports would_deny alerts; `--mode enforce` exits 1")
        if report.mechanism == "tracepoint":
            print("  not seen through tracepoints: io_uring operations, renames/links/unlinks, truncate(2),"
                  " 32-bit (ia32) system calls")
    elif report.mechanism:
        print(f"enforcement: possible, through {report.mechanism}")
        if report.mechanism == "fmod_ret":
            print("  (BPF-LSM is not active; the fmod_ret fallback on security_* functions still returns EPERM)")
        print("  the daemon proves it with a self-check canary after every load")
    else:
        print("enforcement: NOT POSSIBLE on this kernel")
        for reason in report.reasons:
            print(f"  - {reason}")
        print("  tracing (fentry, tracepoints) does not load either, so sentinel cannot run here, not even in audit mode")
    return 0
