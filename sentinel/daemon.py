"""The daemon: load -> attach -> self-check -> poll -> reload on SIGHUP.

Signal handlers only set flags; all work happens in the poll loop. A reload
builds and validates the whole new rule set before touching the kernel, then
switches generations in one store; on any failure the old set stays in force
and a status event says why. Stopping keeps the pinned enforcement in place:
only `sentinel unload` removes it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from sentinel.compiler.build import build_ruleset
from sentinel.compiler.ir import Mode, RuleSet
from sentinel.errors import KernelError, NotSupported, PolicyError, SentinelError
from sentinel.events.decode import Event
from sentinel.events.enrich import Enricher, iso_timestamp
from sentinel.kernel import abi, guard, pins, reported
from sentinel.kernel.encode import FileIdentity, encode_ruleset
from sentinel.kernel.objects import (
    ENFORCING,
    FORCE_MECHANISM_ENV,
    MECH_FMOD_RET,
    MECH_LSM,
    MECH_TRACE,
    MECH_TRACEPOINT,
    PROGRAMS,
    Enforcer,
)
from sentinel.kernel.probe import active_lsms
from sentinel.output.pipeline import Pipeline
from sentinel.policy.loader import load_policies

POLL_MS = 200
OUTPUT_REPORT_S = 10.0  # how often per-output drops are checked and reported


@dataclass
class DaemonConfig:
    policy_paths: list[str]
    mode: str | None  # "enforce" | "audit" | None: each policy's own mode
    pipeline: Pipeline
    alert_rate: int = 100  # per process and rule per second, in the kernel; 0: no limit


def compile_policies(paths: list[str], mode: str | None) -> RuleSet:
    """Load and compile; raises PolicyError with every diagnostic."""
    override = {"enforce": Mode.ENFORCE, "audit": Mode.AUDIT}.get(mode or "")
    return build_ruleset(load_policies(paths), override)


def mechanism_candidates() -> list[str]:
    """Mechanisms to try, strongest first: BPF-LSM where `bpf` is an active
    LSM, the fmod_ret fallback, then tracing (audit only): fentry, then
    classic tracepoints where fentry does not load. Whether one really
    loads and denies is proven by loading it and by the self-check."""
    forced = os.environ.get(FORCE_MECHANISM_ENV)
    if forced:
        if forced not in PROGRAMS:
            raise NotSupported(f"{FORCE_MECHANISM_ENV}={forced!r}: no such mechanism (one of {', '.join(PROGRAMS)})")
        return [forced]
    lsms = active_lsms() or []
    return ([MECH_LSM] if "bpf" in lsms else []) + [MECH_FMOD_RET, MECH_TRACE, MECH_TRACEPOINT]


def choose_mechanism() -> str:
    return mechanism_candidates()[0]


def load_enforcer(ruleset: RuleSet) -> Enforcer:
    """Load the strongest mechanism that loads. A rule set with an enforcing
    policy never falls back to tracing: that would report enforcement that is
    not happening, so it fails naming what is missing."""
    enforcing = any(p.mode != Mode.AUDIT for p in ruleset.policies)
    failures: list[str] = []
    candidates = mechanism_candidates()
    if "bpf" not in (active_lsms() or []) and not os.environ.get(FORCE_MECHANISM_ENV):
        failures.append("BPF-LSM is not in the active LSM list")
    for mechanism in candidates:
        if mechanism not in ENFORCING and enforcing:
            if os.environ.get(FORCE_MECHANISM_ENV):
                failures.append(f"mechanism {mechanism} (forced by {FORCE_MECHANISM_ENV}) can only observe")
            break
        try:
            return Enforcer.load(mechanism)
        except KernelError as exc:
            failures.append(f"loading the {mechanism} programs failed: {str(exc).splitlines()[0]}")
    what = "enforce" if enforcing else "observe"
    hint = ""
    if enforcing:
        hint = (" Nothing here can make a denied operation fail with EPERM;"
                " `--mode audit` still reports would_deny alerts where tracing (fentry or tracepoints) loads.")
    raise NotSupported(
        f"cannot {what} on this kernel ({os.uname().release}): " + "; ".join(failures) + "." + hint
        + " Run `sentinel doctor` for details."
    )


@dataclass
class Daemon:
    config: DaemonConfig
    log: Any
    enforcer: Enforcer | None = None
    ruleset: RuleSet | None = None
    seq: int = 0
    lost_seen: int = 0
    tamper_seen: int = 0
    _drops_seen: dict[str, int] = field(default_factory=dict)
    _drops_checked_at: float = 0.0
    _invalid_seen: int = 0
    _invalid_checked_at: float = 0.0
    _status: dict[str, Any] = field(default_factory=dict)
    _reported: reported.ReportedCounters = field(init=False)  # set by start()
    suppressed_seen: int = 0
    _suppressed_reported_at: float = 0.0
    _lease: guard.GuardLease | None = None
    _reload_requested: bool = False
    _stop_requested: bool = False
    _canary_seen: int = 0
    _enricher: Enricher = field(default_factory=Enricher)
    _unresolved: list[str] = field(default_factory=list)

    # -- lifecycle -------------------------------------------------------
    def start(self) -> None:
        """Compile, load, switch in and self-check. Raises SentinelError with
        nothing left half-applied when the policies are invalid."""
        # Handlers first: a `sentinel reload` (SIGHUP's default action is to
        # terminate) or a stop that arrives during the seconds a start takes
        # is served once it is done, instead of killing the daemon.
        signal.signal(signal.SIGHUP, self.request_reload)
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        ruleset = compile_policies(self.config.policy_paths, self.config.mode)
        guard.wait_until_free()  # a killed daemon's guard lapses; a live one's is an error
        self.enforcer = load_enforcer(ruleset)
        mechanism = self.enforcer.mechanism
        counters = self.enforcer.counters()
        # What the kernel lost or refused while no daemon ran is reported by
        # the first _report_counters, from where the previous daemon stopped.
        self._reported = reported.ReportedCounters.for_pinned_maps()
        start = self._reported.starting_points(counters)
        self.lost_seen, self.tamper_seen = start["ringbuf_full"], start["tamper"]
        pins.RUN_DIR.mkdir(parents=True, exist_ok=True)
        self._record_reported()  # from now on a successor resumes from here
        self.suppressed_seen = counters["suppressed"]
        # A reload requested by SIGHUP ends the current poll after the record in
        # hand: under an alert flood the ring always has a backlog, and a reload
        # must not wait behind it. A stop is not cut short: it drains the backlog.
        self._ring = self.enforcer.ring_buffer(self._on_record, cut_short=lambda: self._reload_requested)
        self._switch_to(ruleset)
        self._write_pid()
        self._lease = guard.GuardLease(
            self.enforcer.maps["sn_guard"],
            on_error=lambda exc: self.log.error("guard lease not renewed", reason=str(exc)),
        )
        self._lease.start()
        verb = "enforcing" if mechanism in ENFORCING else "observing (audit only, nothing can be blocked)"
        how = "adopted the pinned programs" if self.enforcer.adopted else "attached"
        self._emit_status("started", f"{verb} {len(ruleset.policies)} policies through {mechanism} ({how})"
                          + self._unresolved_warning())
        self.log.info(
            "started",
            mechanism=mechanism,
            adopted=self.enforcer.adopted,
            policies=[p.name for p in ruleset.policies],
            unresolved_paths=self._unresolved,
        )

    def _unresolved_warning(self) -> str:
        """Rules are bound to objects at load: a path with nothing behind it
        (or a cgroup not yet created) protects or selects nothing until a
        reload after it exists. Never silent: status event, log and status."""
        if not self._unresolved:
            return ""
        self.log.warning(
            "rule paths or cgroups with nothing behind them at load match nothing until a reload after they exist",
            unresolved_paths=self._unresolved,
        )
        return (f"; WARNING: nothing exists at {', '.join(self._unresolved)}: these entries match nothing "
                "until a reload after they exist (a prefix rule on the directory covers files created later)")

    def _switch_to(self, ruleset: RuleSet) -> None:
        """Apply RULESET as the next generation and prove denial happens."""
        assert self.enforcer is not None
        if self.enforcer.mechanism not in ENFORCING and any(p.mode != Mode.AUDIT for p in ruleset.policies):
            raise NotSupported(
                f"mechanism {self.enforcer.mechanism} cannot enforce: every policy must be in audit mode (--mode audit)"
            )
        pins.RUN_DIR.mkdir(parents=True, exist_ok=True)
        pins.CANARY_FILE.write_text("sentinel self-check canary\n")
        enforcer = self.enforcer
        canary = FileIdentity.from_path(str(pins.CANARY_FILE))  # tmpfs: stat() is the kernel's view
        encoded = enforcer.apply(
            lambda gen: encode_ruleset(
                ruleset, gen, canary, os.getpid(), resolve=enforcer.resolve, alert_rate=self.config.alert_rate
            )
        )
        self._enricher.rulesets[encoded.gen] = ruleset
        self._enricher.names[encoded.gen] = encoded.names
        self.ruleset = ruleset
        self._unresolved = encoded.unresolved
        self._self_check()
        self._write_status(encoded.gen)

    def _self_check(self) -> None:
        """Open the canary, which only this process is denied: a successful
        attach is no proof that the hook runs, an EPERM is. Where the
        mechanism only observes, the canary's event proves the hook runs."""
        if self.enforcer is not None and self.enforcer.mechanism not in ENFORCING:
            # The canary's event can be lost when the ring is full (a daemon
            # restarted under an alert flood takes over a full ring), so the
            # open is repeated while the backlog drains.
            seen = self._canary_seen
            deadline = time.monotonic() + 10
            next_open = 0.0
            while self._canary_seen == seen and time.monotonic() < deadline:
                if time.monotonic() >= next_open:
                    with open(pins.CANARY_FILE, "rb"):
                        pass
                    next_open = time.monotonic() + 0.5
                self._ring.poll(100)
            if self._canary_seen == seen:
                raise KernelError(
                    f"self-check failed: the canary open was not observed (mechanism {self.enforcer.mechanism})"
                )
            return
        try:
            with open(pins.CANARY_FILE, "rb"):
                pass
        except PermissionError:
            return
        raise KernelError(
            "self-check failed: the canary open was not denied, so this kernel is not enforcing "
            f"(mechanism {self.enforcer.mechanism if self.enforcer else '?'})"
        )

    def request_reload(self, *_: Any) -> None:
        self._reload_requested = True

    def request_stop(self, *_: Any) -> None:
        self._stop_requested = True

    def reload(self) -> None:
        try:
            ruleset = compile_policies(self.config.policy_paths, self.config.mode)
            self._switch_to(ruleset)
        except (PolicyError, SentinelError) as exc:
            self.log.error("reload rejected; previous policies stay enforced", reason=str(exc))
            self._emit_status("reload_rejected", str(exc))
            return
        self.log.info("reloaded", policies=[p.name for p in ruleset.policies], unresolved_paths=self._unresolved)
        self._emit_status("reloaded", f"enforcing {len(ruleset.policies)} policies" + self._unresolved_warning())

    def serve(self) -> int:
        """The poll loop, until SIGTERM/SIGINT."""
        while not self._stop_requested:
            self._ring.poll(POLL_MS)
            self._report_counters()
            if self._reload_requested:
                self._reload_requested = False
                self.reload()
        self.stop()
        return 0

    def stop(self) -> None:
        # Drain what is left (a budget at a time), so every alert is delivered
        # or counted lost; bounded in time in case producers never pause.
        deadline = time.monotonic() + 10
        while self._ring.consume() > 0 and time.monotonic() < deadline:
            pass
        self._report_counters()
        self._report_output_drops(force=True)
        self._report_invalid(force=True)
        if self.enforcer is not None:
            self._report_suppressed(self.enforcer.counters()["suppressed"], force=True)
        if self._lease is not None:
            self._lease.release()
        self._emit_status("stopped", "daemon stopped; pinned enforcement stays until `sentinel unload`")
        self.log.info("stopped", pipeline=self.config.pipeline.stats())
        self.config.pipeline.close()
        self._ring.close()
        if self.enforcer is not None:
            self.enforcer.close()
        try:
            if pins.PID_FILE.read_text().strip() == str(os.getpid()):
                pins.PID_FILE.unlink()
        except OSError:
            pass

    # -- events ----------------------------------------------------------
    def _next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def _emit(self, native: dict[str, Any]) -> None:
        native["event"]["seq"] = self._next_seq()
        self.config.pipeline.emit(native)

    def _on_record(self, raw: bytes) -> None:
        try:
            ev = Event.from_bytes(raw)
        except ValueError as exc:
            self.log.error("undecodable ring buffer record", reason=str(exc))
            return
        if ev.kind == abi.SnEventKind.CANARY:
            self._canary_seen += 1
            return
        self._emit(self._enricher(ev))

    def _report_counters(self) -> None:
        """Turn kernel counters into events: lost alerts, denied tampering."""
        assert self.enforcer is not None
        counters = self.enforcer.counters()
        before = (self.lost_seen, self.tamper_seen)
        tamper = counters["tamper"]
        if tamper > self.tamper_seen:
            n = tamper - self.tamper_seen
            self.log.warning("tampering denied", attempts=n)
            self._emit_status("tamper_denied", f"{n} attempts by other processes to change sentinel's maps, "
                              "pins or daemon were denied")
            self.tamper_seen = tamper
        self._report_output_drops()
        self._report_invalid()
        self._report_suppressed(counters["suppressed"])
        total = counters["ringbuf_full"]
        if total > self.lost_seen:
            self._emit(
                {
                    "@timestamp": iso_timestamp(time.time()),
                    "event": {"kind": "lost"},
                    "lost": {"count": total - self.lost_seen},
                    "host": {"hostname": socket.gethostname()},
                }
            )
            self.lost_seen = total
        if (self.lost_seen, self.tamper_seen) != before:
            self._record_reported()

    def _record_reported(self) -> None:
        self._reported.record({"ringbuf_full": self.lost_seen, "tamper": self.tamper_seen})

    def _report_suppressed(self, total: int, force: bool = False) -> None:
        """The periodic `suppressed N` summary: alerts the kernel's rate limit
        held back since the last one (each (process, rule) pair's own count
        also rides on its next alert, as `suppressed.count`)."""
        now = time.monotonic()
        if total <= self.suppressed_seen or (not force and now - self._suppressed_reported_at < OUTPUT_REPORT_S):
            return
        self._suppressed_reported_at = now
        n = total - self.suppressed_seen
        self.suppressed_seen = total
        self._emit(
            {
                "@timestamp": iso_timestamp(time.time()),
                "event": {"kind": "status"},
                "status": {
                    "state": "suppressed",
                    "message": f"suppressed {n} alerts over the rate limit of {self.config.alert_rate} "
                    "per second per process and rule (the operations were still judged)",
                    "mechanism": self.enforcer.mechanism if self.enforcer else None,
                    "policies": [p.name for p in self.ruleset.policies] if self.ruleset else [],
                },
                "suppressed": {"count": n},
                "host": {"hostname": socket.gethostname()},
            }
        )

    def _report_output_drops(self, force: bool = False) -> None:
        """A status event naming each output that dropped events since the last
        report, and how many: a slow or dead output never blocks the daemon,
        but it is never silent either. The event still reaches the other outputs."""
        now = time.monotonic()
        if not force and now - self._drops_checked_at < OUTPUT_REPORT_S:
            return
        self._drops_checked_at = now
        sinks = self.config.pipeline.stats()["sinks"]
        grown = {
            name: stats["dropped"] - self._drops_seen.get(name, 0)
            for name, stats in sinks.items()
            if stats["dropped"] > self._drops_seen.get(name, 0)
        }
        if not grown:
            return
        self._drops_seen.update({name: sinks[name]["dropped"] for name in grown})
        self.log.warning("outputs dropped events", dropped=grown)
        self._emit(
            {
                "@timestamp": iso_timestamp(time.time()),
                "event": {"kind": "status"},
                "status": {
                    "state": "output_dropped",
                    "message": "; ".join(f"{name}: {n} events dropped" for name, n in grown.items()),
                    "mechanism": self.enforcer.mechanism if self.enforcer else None,
                    "policies": [p.name for p in self.ruleset.policies] if self.ruleset else [],
                    "outputs": {name: {"dropped": n, "dropped_total": sinks[name]["dropped"]} for name, n in grown.items()},
                },
                "host": {"hostname": socket.gethostname()},
            }
        )

    def _report_invalid(self, force: bool = False) -> None:
        """A status event when events the formatter (or encoder) failed on have
        grown since the last report, with the count since then and the total;
        the total also goes into the status file for `sentinel status`. Such an
        event reaches no output, so this is the only trace of it."""
        now = time.monotonic()
        if not force and now - self._invalid_checked_at < OUTPUT_REPORT_S:
            return
        self._invalid_checked_at = now
        total = int(self.config.pipeline.stats()["invalid"])
        if total <= self._invalid_seen:
            return
        n, self._invalid_seen = total - self._invalid_seen, total
        self.log.warning("events could not be formatted", invalid=n, invalid_total=total)
        self._emit(
            {
                "@timestamp": iso_timestamp(time.time()),
                "event": {"kind": "status"},
                "status": {
                    "state": "output_invalid",
                    "message": f"{n} events could not be formatted and reached no output ({total} since start)",
                    "mechanism": self.enforcer.mechanism if self.enforcer else None,
                    "policies": [p.name for p in self.ruleset.policies] if self.ruleset else [],
                },
                "invalid": {"count": n, "total": total},
                "host": {"hostname": socket.gethostname()},
            }
        )
        if self._status:
            self._store_status()

    def _emit_status(self, state: str, message: str) -> None:
        self._emit(
            {
                "@timestamp": iso_timestamp(time.time()),
                "event": {"kind": "status"},
                "status": {
                    "state": state,
                    "message": message,
                    "mechanism": self.enforcer.mechanism if self.enforcer else None,
                    "enforcing": bool(self.enforcer and self.enforcer.mechanism in ENFORCING),
                    "policies": [p.name for p in self.ruleset.policies] if self.ruleset else [],
                    "unresolved_paths": list(self._unresolved),
                },
                "host": {"hostname": socket.gethostname()},
            }
        )

    # -- runtime files ---------------------------------------------------
    def _write_pid(self) -> None:
        pins.PID_FILE.write_text(f"{os.getpid()}\n")

    def _write_status(self, gen: int) -> None:
        assert self.enforcer is not None and self.ruleset is not None
        status = {
            "pid": os.getpid(),
            "mechanism": self.enforcer.mechanism,
            "enforcing": self.enforcer.mechanism in ENFORCING,
            "generation": gen,
            "self_check": "passed",
            "self_check_at": iso_timestamp(time.time()),
            "policies": [{"name": p.name, "mode": "audit" if p.mode == Mode.AUDIT else "enforce"} for p in self.ruleset.policies],
            "policy_paths": self.config.policy_paths,
            "unresolved_paths": self._unresolved,
        }
        self._status = status
        self._store_status()

    def _store_status(self) -> None:
        """Write the recorded status plus the live output counters, atomically."""
        status = dict(self._status, invalid_events=int(self.config.pipeline.stats()["invalid"]))
        tmp = Path(str(pins.STATUS_FILE) + ".tmp")
        tmp.write_text(json.dumps(status, indent=2) + "\n")
        os.replace(tmp, pins.STATUS_FILE)
