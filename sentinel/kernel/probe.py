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
    mechanism: str | None  # "bpf-lsm", "fmod_ret", "trace" (audit only) or None: nothing loads
    reasons: tuple[str, ...] = field(default=())  # why nothing can enforce
    forced: str | None = None  # SENTINEL_FORCE_MECHANISM, a test hook

    @property
    def enforcing(self) -> bool:
        return self.mechanism in ("bpf-lsm", "fmod_ret")

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


def _tracepoints() -> Capability:
    from sentinel.kernel.libbpf import lib

    BPF_PROG_TYPE_TRACEPOINT = 5
    rc = lib().libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_TRACEPOINT, None)
    return Capability("tracepoint", rc == 1, "loads" if rc == 1 else f"refused ({os.strerror(-rc) if rc < 0 else 'unsupported'})")


def _kprobes() -> Capability:
    present = Path("/sys/bus/event_source/devices/kprobe").exists()
    return Capability("kprobe", present, "configured" if present else "not configured in this kernel")


def probe() -> KernelReport:
    from sentinel.kernel.objects import FORCE_MECHANISM_ENV, MECH_FMOD_RET, MECH_LSM, MECH_TRACE, PROGRAMS

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
    lsm_ok, lsm_detail = _try_load(PROGRAMS[MECH_LSM]) if btf else (False, "needs BTF")
    caps.append(Capability("lsm-load", lsm_ok, lsm_detail))
    fmod_ok, fmod_detail = _try_load(PROGRAMS[MECH_FMOD_RET]) if btf else (False, "needs BTF")
    caps.append(Capability("fmod_ret-load", fmod_ok, fmod_detail))
    trace_ok, trace_detail = _try_load(PROGRAMS[MECH_TRACE]) if btf else (False, "needs BTF")
    caps.append(Capability("fentry-load", trace_ok, trace_detail))
    caps.append(_tracepoints())
    caps.append(_kprobes())

    mechanism: str | None = None
    reasons: list[str] = []
    forced = os.environ.get(FORCE_MECHANISM_ENV) or None
    if bpf_active and lsm_ok:
        mechanism = MECH_LSM
    elif fmod_ok:
        mechanism = MECH_FMOD_RET
    if mechanism is None:
        if not btf:
            reasons.append("the kernel has no BTF")
        if lsms is None:
            reasons.append(f"the active LSM list is unreadable ({LSM_LIST}; securityfs not mounted?)")
        elif not bpf_active:
            reasons.append("BPF-LSM is not in the active LSM list")
        if not lsm_ok:
            reasons.append(f"loading the BPF-LSM program failed: {lsm_detail}")
        if not fmod_ok:
            reasons.append(f"loading the fmod_ret fallback failed: {fmod_detail}")
        if trace_ok:
            mechanism = MECH_TRACE
    if forced:
        mechanism = forced if forced in PROGRAMS else None
    return KernelReport(os.uname().release, tuple(caps), mechanism, tuple(reasons), forced)
