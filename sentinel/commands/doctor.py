"""`sentinel doctor`: what this kernel can do and which mechanism sentinel uses."""

from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    from sentinel.kernel.probe import probe

    report = probe()
    print(f"kernel: {report.release}")
    for cap in report.capabilities:
        print(f"  {cap.name:16} {'yes' if cap.ok else 'no ':3}  {cap.detail}")
    if report.mechanism:
        print(f"enforcement: possible, through {report.mechanism}")
        if report.mechanism == "fmod_ret":
            print("  (BPF-LSM is not active; the fmod_ret fallback on security_* functions still returns EPERM)")
        print("  the daemon proves it with a self-check canary after every load")
    else:
        print("enforcement: NOT POSSIBLE on this kernel")
        for reason in report.reasons:
            print(f"  - {reason}")
        print("  audit mode through tracepoints is not implemented yet, so sentinel cannot run here")
    return 0
