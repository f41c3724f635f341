"""`sentinel explain POLICY... --exec|--open|--connect ...`: one verdict, no kernel."""

from __future__ import annotations

import argparse
import os

from sentinel.compiler.build import build_ruleset
from sentinel.compiler.evaluate import (
    Process,
    Verdict,
    evaluate_connect,
    evaluate_exec,
    evaluate_open,
    parse_endpoint,
    resolve_path,
)
from sentinel.errors import UsageError
from sentinel.policy.loader import load_policies


def format_verdict(verdict: Verdict) -> str:
    outcome = "blocked" if verdict.blocked else "allowed"
    lines = [f"verdict: {verdict.action} ({outcome}{', alert' if verdict.alert else ''})"]
    lines.append(f"policy:  {verdict.policy or '(none governs this process)'}")
    if verdict.policy is not None:
        rule = verdict.rule or "default"
        lines.append(f"rule:    {rule}" + (f" (severity {verdict.severity})" if verdict.severity else ""))
    return "\n".join(lines)


def exec_target(path: str, fileless: bool) -> str | None:
    """The path exec rules see. With --fileless, "memfd:NAME" is a file that
    never had a name (memfd_create, O_TMPFILE): no path or prefix rule
    matches it; any other PATH is a deleted file's last name, whose rules by
    identity and directory still hold."""
    if fileless and path.startswith("memfd:"):
        return None
    return resolve_path(path)


def run(args: argparse.Namespace) -> int:
    if args.access and not args.open_path:
        raise UsageError("--access applies only to --open")
    if (args.fileless or args.mmap) and not args.exec_path:
        raise UsageError("--fileless and --mmap apply only to --exec")
    if args.uid is not None and not 0 <= args.uid <= 2**32 - 2:
        raise UsageError(f"--uid {args.uid} is out of range")
    rs = build_ruleset(load_policies(args.policies))
    proc = Process(
        binary=resolve_path(args.binary) if args.binary else None,
        uid=args.uid if args.uid is not None else os.getuid(),
        cgroup=args.cgroup,
    )
    if args.exec_path:
        verdict = evaluate_exec(rs, exec_target(args.exec_path, args.fileless), proc,
                                fileless=args.fileless, mapping=args.mmap)
    elif args.open_path:
        verdict = evaluate_open(rs, resolve_path(args.open_path), args.access or ["read"], proc)
    else:
        try:
            addr, port, protocol = parse_endpoint(args.connect)
        except ValueError as exc:
            raise UsageError(f"--connect {exc}") from None
        verdict = evaluate_connect(rs, addr, port, protocol, proc)
    print(format_verdict(verdict))
    if args.mmap and verdict.policy is None:
        print("note:    no rule names this file; defaults do not apply to executable mappings")
    return 0
