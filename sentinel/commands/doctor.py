"""`sentinel doctor`: what this kernel can do and which mechanism sentinel uses."""

from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    from sentinel.kernel.probe import probe

    report = probe()
    print(f"kernel: {report.release}")
    for cap in report.capabilities:
        print(f"  {cap.name:16} {'yes' if cap.ok else 'no ':3}  {cap.detail}")
    if report.forced:
        print(f"mechanism forced to {report.forced!r} by SENTINEL_FORCE_MECHANISM (a test hook)")
    if report.mechanism == "trace":
        print("enforcement: NOT POSSIBLE on this kernel; audit mode only, through trace (fentry on security_*)")
        for reason in report.reasons:
            print(f"  - {reason}")
        print("  `sentinel run --mode audit` reports would_deny alerts; `--mode enforce` exits 1")
    elif report.mechanism:
        print(f"enforcement: possible, through {report.mechanism}")
        if report.mechanism == "fmod_ret":
            print("  (BPF-LSM is not active; the fmod_ret fallback on security_* functions still returns EPERM)")
        print("  the daemon proves it with a self-check canary after every load")
    else:
        print("enforcement: NOT POSSIBLE on this kernel")
        for reason in report.reasons:
            print(f"  - {reason}")
        print("  tracing (fentry) does not load either, so sentinel cannot run here, not even in audit mode")
    return 0
