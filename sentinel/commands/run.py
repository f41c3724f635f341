"""`sentinel run`: the daemon in the foreground."""

from __future__ import annotations

import argparse

DEFAULT_OUTPUT = "jsonl:/var/log/sentinel/events.jsonl"


def run(args: argparse.Namespace) -> int:
    from sentinel import log as sentinel_log
    from sentinel.daemon import Daemon, DaemonConfig, compile_policies
    from sentinel.output.pipeline import Pipeline
    from sentinel.output.sinks import DEFAULT_MAX_EVENTS, open_sink
    from sentinel.output.spec import parse_specs

    # Validate everything before touching the kernel: an invalid policy or
    # output spec exits 2 with nothing loaded.
    from sentinel.errors import UsageError

    from sentinel.commands.explain import report_usage
    from sentinel.errors import PolicyError

    problems: list[str] = []  # every wrong argument and policy, at once
    if not 0 <= args.alert_rate < 2**32:
        problems.append(f"--alert-rate {args.alert_rate}: give alerts per second, 0 for no limit")
    queue = DEFAULT_MAX_EVENTS if args.output_queue is None else args.output_queue
    if queue < 1:
        problems.append(f"--output-queue {args.output_queue}: give the number of events an output may hold, at least 1")
    specs = []
    try:
        specs = parse_specs(args.output or [DEFAULT_OUTPUT])
    except UsageError as exc:
        problems.append(str(exc))
    try:
        compile_policies(args.policy, args.mode)
    except PolicyError:
        report_usage(problems)
        raise
    if problems:
        raise UsageError("; ".join(problems))
    logger = sentinel_log.setup(policy_paths=args.policy, mode=args.mode or "per-policy")
    pipeline = Pipeline([open_sink(s, max_events=queue) for s in specs], args.format)
    daemon = Daemon(DaemonConfig(args.policy, args.mode, pipeline, alert_rate=args.alert_rate), logger)
    try:
        daemon.start()
    except BaseException:
        pipeline.close(timeout=2.0)
        raise
    return daemon.serve()
