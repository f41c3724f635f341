"""`sentinel explain POLICY... --exec|--open|--connect ...`: one verdict, no kernel."""

from __future__ import annotations

import argparse
import os
import sys

from sentinel.compiler.addr import IPAddress, reached_address, unmap_address
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
from sentinel.errors import PolicyError, UsageError
from sentinel.policy.loader import load_policies


def format_verdict(verdict: Verdict) -> str:
    outcome = "blocked" if verdict.blocked else "allowed"
    lines = [f"verdict: {verdict.action} ({outcome}{', alert' if verdict.alert else ''})"]
    lines.append(f"policy:  {verdict.policy or '(none governs this process)'}")
    if verdict.policy is not None:
        rule = verdict.rule or "default"
        lines.append(f"rule:    {rule}" + (f" (severity {verdict.severity})" if verdict.severity else ""))
    return "\n".join(lines)


def reached_note(addr: IPAddress) -> str | None:
    """A line saying which address 0.0.0.0 or :: was judged as, else None."""
    reached = reached_address(addr)
    if reached == unmap_address(addr):
        return None
    bound = ("an IPv4-bound socket reaches its bound address instead" if reached.version == 4
             else "on an IPv6 socket bound to ::ffff:a.b.c.d it is 127.0.0.1")
    return f"judged:  as {reached}, the address a connect to {addr} reaches from an unbound socket ({bound})"


def exec_target(path: str, fileless: bool) -> str | None:
    """The path exec rules see. With --fileless, "memfd:NAME" is a file that
    never had a name (memfd_create, O_TMPFILE): no path or prefix rule
    matches it; any other PATH is a deleted file's last name, whose rules by
    identity and directory still hold."""
    if fileless and path.startswith("memfd:"):
        return None
    return resolve_path(path)


def run(args: argparse.Namespace) -> int:
    # Every wrong argument and every policy problem is reported at once.
    problems: list[str] = []
    if args.access and not args.open_path:
        problems.append("--access applies only to --open")
    if (args.fileless or args.mmap) and not args.exec_path:
        problems.append("--fileless and --mmap apply only to --exec")
    if args.uid is not None and not 0 <= args.uid <= 2**32 - 2:
        problems.append(f"--uid {args.uid} is out of range")
    endpoint = None
    if args.connect is not None:
        try:
            endpoint = parse_endpoint(args.connect)
        except ValueError as exc:
            problems.append(f"--connect {exc}")
    try:
        rs = build_ruleset(load_policies(args.policies))
    except PolicyError:
        report_usage(problems)
        raise
    if problems:
        raise UsageError("; ".join(problems))
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
        assert endpoint is not None  # argparse requires one of --exec, --open, --connect
        addr, port, protocol = endpoint
        verdict = evaluate_connect(rs, addr, port, protocol, proc)
        note = reached_note(addr)
        if note:
            print(format_verdict(verdict) + "\n" + note)  # last, so the first lines keep their shape
            return 0
    print(format_verdict(verdict))
    if args.mmap and verdict.policy is None:
        print("note:    no rule names this file; defaults do not apply to executable mappings")
    return 0


def report_usage(problems: list[str]) -> None:
    """Print argument problems found alongside a PolicyError (which the CLI prints)."""
    for problem in problems:
        print(f"sentinel: {problem}", file=sys.stderr)
