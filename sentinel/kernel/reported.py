"""How much of the kernel's loss and tamper counters has been turned into
events, kept in /run/sentinel/ where the next daemon finds it.

The counters live in the pinned sn_counters map and keep counting while no
daemon runs (after a kill -9, during a restart). A daemon that started from
the counters' current values would never report what the kernel lost in
between; starting from what the previous daemon last reported, the first
`lost` (or `tamper_denied`) event of the new daemon covers that gap. The
record names the pinned map it is about (boot and bpffs inode), so one from
before an unload or a reboot is ignored.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from sentinel.kernel import pins

REPORTED_FILE = pins.RUN_DIR / "reported.json"
_KEYS = ("ringbuf_full", "tamper")


def _maps_identity() -> str:
    """The boot and the sn_counters pin: a new pin (after an unload) is a new map."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        boot = "?"
    return f"{boot}:{os.stat(pins.MAP_DIR / 'sn_counters').st_ino}"


@dataclass(frozen=True)
class ReportedCounters:
    """The record for the pinned counters in force: their identity is taken
    once, when a daemon starts, not at every write."""

    maps: str

    @classmethod
    def for_pinned_maps(cls) -> ReportedCounters:
        return cls(_maps_identity())

    def starting_points(self, counters: dict[str, int]) -> dict[str, int]:
        """Where reporting resumes: the previous daemon's last reported values
        for these pinned counters where they are on record and not ahead of the
        kernel, else the counters as they are now."""
        start = {k: counters[k] for k in _KEYS}
        try:
            record = json.loads(REPORTED_FILE.read_text())
            if record.get("maps") != self.maps:
                return start
            for k in _KEYS:
                value = record.get(k)
                if isinstance(value, int) and 0 <= value <= counters[k]:
                    start[k] = value
        except (OSError, ValueError, AttributeError):
            pass
        return start

    def record(self, reported: dict[str, int]) -> None:
        """Note what has been reported, atomically."""
        tmp = Path(str(REPORTED_FILE) + ".tmp")
        tmp.write_text(json.dumps({"maps": self.maps, **{k: reported[k] for k in _KEYS}}) + "\n")
        os.replace(tmp, REPORTED_FILE)
