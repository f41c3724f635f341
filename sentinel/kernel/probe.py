"""What this kernel can do, found by trying (for `doctor` and the daemon).

Each capability is probed by the operation sentinel would perform: loading
the real programs of each mechanism (without attaching them), because a
kernel may advertise a feature and still refuse it (this project's build
hosts refuse BPF-LSM loads with EPERM although `bpf` is in their LSM list).
A load that succeeds is still no proof of enforcement: the daemon's
self-check is.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from sentinel.errors import KernelError

LSM_LIST = Path("/sys/kernel/security/lsm")
BTF_VMLINUX = Path("/sys/kernel/btf/vmlinux")


@dataclass(frozen=True)
class Capability:
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class KernelReport:
    release: str
    capabilities: tuple[Capability, ...]
    mechanism: str | None  # "bpf-lsm", "fmod_ret", "trace" or "tracepoint" (both audit only) or None: nothing loads
    reasons: tuple[str, ...] = field(default=())  # why nothing can enforce
    forced: str | None = None  # SENTINEL_FORCE_MECHANISM, a test hook

    @property
    def enforcing(self) -> bool:
        from sentinel.kernel.objects import ENFORCING

        return self.mechanism in ENFORCING

    def cap(self, name: str) -> Capability:
        return next(c for c in self.capabilities if c.name == name)


def active_lsms() -> list[str] | None:
    try:
        return LSM_LIST.read_text().strip().split(",")
    except OSError:
        return None


def _try_load(programs: tuple[str, ...]) -> tuple[bool, str]:
    """Load the sentinel object with only PROGRAMS enabled; never attach."""
    from sentinel.bpf import OBJECT_PATH
    from sentinel.kernel.libbpf import BpfObject

    try:
        obj = BpfObject(str(OBJECT_PATH))
    except KernelError as exc:
        return False, str(exc).splitlines()[0]
    try:
        for name, prog in obj.programs.items():
            prog.set_autoload(name in programs)
        obj.load()
        return True, "loads"
    except KernelError as exc:
        return False, str(exc).splitlines()[0]
    finally:
        obj.close()


def _kprobes() -> Capability:
    present = Path("/sys/bus/event_source/devices/kprobe").exists()
    return Capability("kprobe", present, "configured" if present else "not configured in this kernel")


def choose(
    *, btf: bool, lsms: list[str] | None, lsm_ok: bool, fmod_ok: bool, trace_ok: bool, tp_ok: bool,
    details: dict[str, str],
) -> tuple[str | None, list[str]]:
    """The mechanism to use, strongest first, and why nothing can enforce
    (empty when something can): BPF-LSM where `bpf` is an active LSM and its
    programs load, else fmod_ret, else (audit only) fentry tracing, else
    (audit only) classic tracepoints."""
    from sentinel.kernel.objects import MECH_FMOD_RET, MECH_LSM, MECH_TRACE, MECH_TRACEPOINT

    bpf_active = lsms is not None and "bpf" in lsms
    if bpf_active and lsm_ok:
        return MECH_LSM, []
    if fmod_ok:
        return MECH_FMOD_RET, []
    reasons: list[str] = []
    if not btf:
        reasons.append("the kernel has no BTF")
    if lsms is None:
        reasons.append(f"the active LSM list is unreadable ({LSM_LIST}; securityfs not mounted?)")
    elif not bpf_active:
        reasons.append("BPF-LSM is not in the active LSM list")
    if not lsm_ok:
        reasons.append(f"loading the BPF-LSM program failed: {details.get('lsm', '?')}")
    if not fmod_ok:
        reasons.append(f"loading the fmod_ret fallback failed: {details.get('fmod_ret', '?')}")
    if trace_ok:
        return MECH_TRACE, reasons
    if tp_ok:
        reasons.append(f"loading the fentry tracing programs failed: {details.get('trace', '?')}")
        return MECH_TRACEPOINT, reasons
    return None, reasons


def probe() -> KernelReport:
    from sentinel.kernel.objects import FORCE_MECHANISM_ENV, MECH_FMOD_RET, MECH_LSM, MECH_TRACE, MECH_TRACEPOINT, PROGRAMS

    caps: list[Capability] = []
    btf = BTF_VMLINUX.exists()
    caps.append(Capability("btf", btf, str(BTF_VMLINUX) if btf else "no /sys/kernel/btf/vmlinux: CO-RE cannot load"))
    lsms = active_lsms()
    bpf_active = lsms is not None and "bpf" in lsms
    caps.append(
        Capability(
            "bpf-lsm-active",
            bpf_active,
            f"active LSMs: {','.join(lsms)}" if lsms is not None else f"{LSM_LIST} unreadable (securityfs not mounted?)",
        )
    )
    loaded: dict[str, tuple[bool, str]] = {}
    for mech, cap in ((MECH_LSM, "lsm-load"), (MECH_FMOD_RET, "fmod_ret-load"), (MECH_TRACE, "fentry-load"),
                      (MECH_TRACEPOINT, "tracepoint-load")):
        loaded[mech] = _try_load(PROGRAMS[mech]) if btf else (False, "needs BTF")
        caps.append(Capability(cap, *loaded[mech]))
    caps.append(_kprobes())

    mechanism, reasons = choose(
        btf=btf, lsms=lsms, lsm_ok=loaded[MECH_LSM][0], fmod_ok=loaded[MECH_FMOD_RET][0],
        trace_ok=loaded[MECH_TRACE][0], tp_ok=loaded[MECH_TRACEPOINT][0],
        details={"lsm": loaded[MECH_LSM][1], "fmod_ret": loaded[MECH_FMOD_RET][1], "trace": loaded[MECH_TRACE][1]},
    )
    forced = os.environ.get(FORCE_MECHANISM_ENV) or None
    if forced:
        mechanism = forced if forced in PROGRAMS else None
    return KernelReport(os.uname().release, tuple(caps), mechanism, tuple(reasons), forced)
