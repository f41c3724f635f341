"""`sentinel status`: exit 0 only when policies are loaded in the kernel and
the self-check passed; 3 when nothing is loaded. Imports stay lean: no
pydantic, no structlog."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from sentinel.errors import KernelError, NotRunning


def daemon_pid() -> int | None:
    from sentinel.kernel import pins

    try:
        pid = int(pins.PID_FILE.read_text().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def gather() -> dict[str, Any]:
    """What is loaded, from the kernel's pinned maps and the daemon's status file."""
    from sentinel.kernel import abi, guard, pins
    from sentinel.kernel.objects import open_pinned, parse_link_pin, read_counters, read_state

    try:
        state = open_pinned()
    except KernelError:
        raise NotRunning("nothing is loaded in the kernel") from None
    try:
        gen, cfg = read_state(state.maps)
        counters = read_counters(state.maps)
    finally:
        state.close()
    user_policies = cfg.active & ~(1 << abi.CANARY_POLICY)
    try:
        recorded = json.loads(pins.STATUS_FILE.read_text())
    except (OSError, ValueError):
        recorded = {}
    links = [p.name for p in pins.pinned_links()]
    lease = guard.read_guard()
    held = lease is not None and lease.remaining_ns > 0 and lease.owner_alive()
    # The audit-only mechanisms (trace, tracepoint) load no guard programs:
    # a held lease protects nothing there.
    guarded = any(parse_link_pin(name)[0].split("_", 1)[-1].startswith("guard_") for name in links)
    if held and lease and guarded:
        protection = f"active, held by pid {lease.owner_pid}"
    elif held:
        protection = "inactive (the mechanism in use loads no guard programs)"
    else:
        protection = "inactive (no daemon holds it)"
    return {
        "loaded": bool(user_policies) and bool(links),
        "policies_in_kernel": bin(user_policies).count("1"),
        "generation": gen,
        "links": links,
        "mechanism": recorded.get("mechanism"),
        "self_check": recorded.get("self_check", "unknown"),
        "self_check_at": recorded.get("self_check_at"),
        "policies": recorded.get("policies", []),
        "enforcing": recorded.get("enforcing"),
        "unresolved_paths": recorded.get("unresolved_paths", []),
        # Events the daemon's formatter failed on (they reached no output), as of
        # its last report; None when the status file predates the field.
        "invalid_events": recorded.get("invalid_events"),
        "daemon_pid": daemon_pid(),
        "self_protection": protection,
        "counters": counters,
    }


def run(args: argparse.Namespace) -> int:
    info = gather()
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        names = ", ".join(p["name"] for p in info["policies"]) or "?"
        print(f"loaded: {'yes' if info['loaded'] else 'no'} ({info['policies_in_kernel']} policies: {names})")
        observe = " (observing only: nothing is blocked)" if info["enforcing"] is False else ""
        print(f"mechanism: {info['mechanism']}{observe}  links: {', '.join(info['links']) or 'none'}")
        if info["unresolved_paths"]:
            print(f"WARNING: nothing existed at load at {', '.join(info['unresolved_paths'])}: "
                  "these entries match nothing until a reload")
        print(f"self-check: {info['self_check']} at {info['self_check_at']}")
        pid = info["daemon_pid"]
        print(f"daemon: {'running, pid ' + str(pid) if pid else 'not running (pinned enforcement stays)'}")
        print(f"self-protection: {info['self_protection']}")
        c = info["counters"]
        invalid = info["invalid_events"]
        print(f"invalid events (could not be formatted, reached no output): {'?' if invalid is None else invalid}")
        print(f"decided: {c['decided']}  denied: {c['denied']}  lost events: {c['ringbuf_full']}  tampering denied: {c['tamper']}")
    if not info["loaded"]:
        raise NotRunning("no policies are loaded in the kernel")
    return 0 if info["self_check"] == "passed" else 1
