"""Command line: argparse, one core call per command, and the only place that
catches SentinelError.

Each command's implementation lives in `sentinel.commands.<module>` and is
imported only when that command runs, so that quick commands (`status`,
`unload`, `reload`) start without pydantic or structlog: under software
emulation every import is seconds.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from sentinel.errors import PolicyError, SentinelError

# command name -> module in sentinel.commands exposing `run(args) -> int`
_COMMANDS = {
    "check": "check",
    "compile": "compile",
    "explain": "explain",
    "test": "ruletest",
    "run": "run",
    "reload": "reload",
    "status": "status",
    "doctor": "doctor",
    "unload": "unload",
    "events": "events",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sentinel", description="Runtime security enforcement for Linux hosts."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("check", help="validate policy files")
    p.add_argument("policies", nargs="+", metavar="POLICY")

    p = sub.add_parser("compile", help="show the map entries policies compile to")
    p.add_argument("policies", nargs="+", metavar="POLICY")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser("explain", help="print the verdict for one operation")
    p.add_argument("policies", nargs="+", metavar="POLICY")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--exec", dest="exec_path", metavar="PATH")
    what.add_argument("--open", dest="open_path", metavar="PATH")
    what.add_argument("--connect", metavar="ADDR:PORT[/tcp|/udp]")
    p.add_argument("--access", choices=["read", "write"], action="append")
    p.add_argument("--fileless", action="store_true",
                   help="with --exec: the file has no name in any directory (a deleted file; memfd:NAME for a memfd)")
    p.add_argument("--mmap", action="store_true",
                   help="with --exec: the file is mapped executable (ld.so, dlopen), not exec'd: defaults do not apply")
    p.add_argument("--binary", metavar="PATH")
    p.add_argument("--uid", type=int)
    p.add_argument("--cgroup", metavar="PATH")

    p = sub.add_parser("test", help="run rule test cases")
    p.add_argument("paths", nargs="*", metavar="PATH", default=[])

    p = sub.add_parser("run", help="the daemon, in the foreground")
    p.add_argument("--policy", action="append", required=True, metavar="PATH")
    p.add_argument("--mode", choices=["enforce", "audit"])
    p.add_argument("--output", action="append", metavar="SPEC")
    p.add_argument("--format", choices=["native", "ecs", "ocsf"], default="native")
    p.add_argument("--alert-rate", type=int, default=100, metavar="N",
                   help="alerts per second per process and rule; the rest are counted and summarised (0: no limit)")
    p.add_argument("--output-queue", type=int, metavar="N",
                   help="events each output holds while it cannot keep up (default 65536, and at most 64 MiB); "
                        "past that they are dropped and counted per output")

    sub.add_parser("reload", help="make the running daemon reload its policies")

    p = sub.add_parser("status", help="is enforcement loaded and self-checked?")
    p.add_argument("--json", action="store_true")

    sub.add_parser("doctor", help="report what this kernel can do")
    sub.add_parser("unload", help="remove everything sentinel left in the kernel")

    p = sub.add_parser("events", help="show alerts from the JSONL event file")
    p.add_argument("path", nargs="?", default="/var/log/sentinel/events.jsonl", metavar="PATH")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing, across rotation")
    p.add_argument("--rule", metavar="ID", help="only alerts from this rule")
    p.add_argument("--action", choices=["deny", "would_deny", "audit"])
    p.add_argument("--color", "--colour", dest="color", action="store_true",
                   help="colour even when stdout is not a terminal")
    return parser


def _problems(count: int) -> str:
    return "1 problem" if count == 1 else f"{count} problems"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on bad arguments, 0 on --help
        return int(exc.code or 0)
    module = importlib.import_module(f"sentinel.commands.{_COMMANDS[args.command]}")
    try:
        code: int = module.run(args)
        sys.stdout.flush()
        return code
    except PolicyError as exc:
        # One `FILE:LINE:COL: message` per line, as `check` prints them, so
        # editors and CI annotations can jump to each.
        for diagnostic in exc.diagnostics:
            print(diagnostic, file=sys.stderr)
        print(f"sentinel {args.command}: {_problems(len(exc.diagnostics))} found", file=sys.stderr)
        return exc.exit_code
    except SentinelError as exc:
        print(f"sentinel {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:
        # `sentinel compile | head` is not an error.
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
