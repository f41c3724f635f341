"""`sentinel check POLICY...`: validate, printing every error as FILE:LINE:COL."""

from __future__ import annotations

import argparse

from sentinel.errors import PolicyError
from sentinel.policy.loader import load_policies


def run(args: argparse.Namespace) -> int:
    try:
        loaded = load_policies(args.policies)
    except PolicyError as exc:
        for diagnostic in exc.diagnostics:
            print(diagnostic)
        return exc.exit_code
    rules = sum(len(lp.policy.spec.rules) for lp in loaded)
    print(f"OK: {len(loaded)} policies, {rules} rules")
    return 0
