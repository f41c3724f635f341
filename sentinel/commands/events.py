"""`sentinel events`: a readable, filterable view of the JSONL event file.

    sentinel events [--follow] [--rule ID] [--action deny|would_deny|audit]
                    [--color] [PATH]

Without --follow it prints every event in PATH and exits. With --follow it
prints the last 10 and then new ones as they are written, across rotation,
until interrupted. Colour is used when stdout is a terminal (and NO_COLOR is
unset), or always with --color. The options are declared in cli.py.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import time
from collections.abc import Iterable
from typing import TextIO

from sentinel.errors import SentinelError
from sentinel.output.follow import LineFollower
from sentinel.output.view import extract, matches, render

TAIL_LINES = 10
POLL_SECONDS = 0.25


def use_colour(forced: bool, stream: TextIO) -> bool:
    if forced:
        return True
    return stream.isatty() and "NO_COLOR" not in os.environ


def format_lines(raw: Iterable[bytes], args: argparse.Namespace, colour: bool) -> list[str]:
    """Render the raw JSON lines that pass the filters; bad lines are reported."""
    out: list[str] = []
    for line in raw:
        try:
            doc = json.loads(line)
        except ValueError:
            print(f"sentinel events: skipping a line that is not JSON: {line[:80]!r}",
                  file=sys.stderr)
            continue
        if not isinstance(doc, dict):
            continue
        view = extract(doc)
        if matches(view, args.rule, args.action):
            out.append(render(view, colour))
    return out


def run(args: argparse.Namespace) -> int:
    colour = use_colour(args.color, sys.stdout)
    follower = LineFollower(args.path)
    if not args.follow and not os.path.exists(args.path):
        raise SentinelError(f"{args.path}: no such file (is the daemon writing jsonl there?)")
    try:
        first = format_lines(follower.read_available(), args, colour)
        if args.follow:
            first = list(collections.deque(first, maxlen=TAIL_LINES))
        _write(first)
        while args.follow:
            time.sleep(POLL_SECONDS)
            _write(format_lines(follower.read_available(), args, colour))
    finally:
        follower.close()
    return 0


def _write(lines: list[str]) -> None:
    if lines:
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()
