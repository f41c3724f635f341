"""The loaded sentinel object: programs attached through the chosen mechanism,
maps pinned so that enforcement outlives the daemon, and the generation switch
that makes a new rule set take effect all at once.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sentinel.bpf import OBJECT_PATH
from sentinel.errors import KernelError, NotSupported
from sentinel.kernel import abi, pins
from sentinel.kernel.encode import EncodedRuleSet, FileIdentity
from sentinel.kernel.libbpf import BpfObject, Link, Map, RingBuffer, open_pinned_map, possible_cpus
from sentinel.kernel.resolve import KernelResolver

MECH_LSM = "bpf-lsm"
MECH_FMOD_RET = "fmod_ret"
MECH_TRACE = "trace"
MECH_TRACEPOINT = "tracepoint"

# Mechanisms that make a denied operation fail with EPERM. MECH_TRACE (fentry
# on the same security_* functions) and MECH_TRACEPOINT (classic tracepoints
# on the syscalls, after the fact) only observe: audit mode only.
ENFORCING = (MECH_LSM, MECH_FMOD_RET)

# Test hook: force one mechanism (bpf-lsm, fmod_ret, trace, tracepoint) instead of the
# automatic choice, so that the tracing fallback can be exercised on a kernel
# that could enforce. Not meant for production use.
FORCE_MECHANISM_ENV = "SENTINEL_FORCE_MECHANISM"

_NAME_HOOKS = ("path_rename", "path_link", "path_unlink", "path_rmdir", "path_truncate")
# The guard (bpf/guard.bpf.c) protects sentinel itself; it needs a mechanism that can deny.
_GUARD_HOOKS = ("guard_map", "guard_unlink", "guard_rmdir", "guard_rename", "guard_umount", "guard_ptrace")

# bpf/guard.bpf.c's exit program ends the lease when the daemon's last thread
# exits, so a daemon restarted after kill -9 takes over at once.
_GUARD_EXIT = "tp_guard_exit"

# bpf/exe.bpf.c keeps each process's executable path for hooks without
# bpf_d_path: at exec commit and at fork. They decide nothing, so the fentry
# pair serves both fmod_ret and trace.
_EXE_HOOKS = ("exe_commit", "exe_fork")

# The entry points each mechanism loads; the other mechanisms' stay unloaded.
PROGRAMS: dict[str, tuple[str, ...]] = {
    MECH_LSM: (
        "lsm_file_open", "lsm_bprm_check", "lsm_mmap_file", "lsm_file_mprotect", "lsm_connect", "lsm_sendmsg",
        *(f"lsm_{h}" for h in _NAME_HOOKS), *(f"lsm_{h}" for h in _GUARD_HOOKS),
        *(f"lsm_{h}" for h in _EXE_HOOKS), _GUARD_EXIT,
    ),
    MECH_FMOD_RET: (
        "fmodret_file_open", "fmodret_bprm_check", "fmodret_mmap_file", "fmodret_file_mprotect",
        "fmodret_connect", "fmodret_sendmsg",
        *(f"fmodret_{h}" for h in _NAME_HOOKS), *(f"fmodret_{h}" for h in _GUARD_HOOKS),
        *(f"fentry_{h}" for h in _EXE_HOOKS), _GUARD_EXIT,
    ),
    MECH_TRACE: (
        "fentry_file_open", "fentry_bprm_check", "fentry_connect", "fentry_sendmsg",
        *(f"fentry_{h}" for h in _NAME_HOOKS), *(f"fentry_{h}" for h in _EXE_HOOKS),
    ),
    # Classic tracepoints (bpf/*.bpf.c, "tracepoint" sections): for kernels
    # that refuse fentry but load tracepoint programs. Opens are judged at
    # syscall exit on the file the new fd names, execs at sched_process_exec,
    # connects and sends at syscall entry. No name-change hooks, no guard.
    MECH_TRACEPOINT: (
        "tp_enter_openat", "tp_enter_open", "tp_enter_openat2",
        "tp_exit_openat", "tp_exit_open", "tp_exit_openat2", "tp_exit_creat",
        "tp_enter_execve", "tp_enter_execveat", "tp_exit_execve", "tp_exit_execveat", "tp_exec",
        "tp_connect", "tp_sendto", "tp_sendmsg", "tp_sendmmsg",
    ),
}

MAP_NAMES = (
    "sn_files", "sn_rule_refs", "sn_net4", "sn_net6", "sn_ports", "sn_bins", "sn_uids", "sn_cgroups",
    "sn_probe", "sn_config", "sn_state", "sn_guard", "sn_rate", "sn_counters", "sn_events",
    "sn_exe", "sn_exec_open", "sn_path_buf", "sn_tp_open", "sn_tp_exec",
)


@dataclass
class PinnedState:
    """Maps of a loaded sentinel, opened from their pins (for status, takeover)."""

    maps: dict[str, Map]

    def close(self) -> None:
        for m in self.maps.values():
            m.close()


def _u32(n: int) -> bytes:
    return bytes(ctypes.c_uint32(n))


def read_state(maps: dict[str, Map]) -> tuple[int, abi.sn_config]:
    """The generation in force and its configuration."""
    raw = maps["sn_state"].lookup(_u32(0))
    gen = abi.sn_state.from_buffer_copy(raw).gen & 1 if raw else 0
    cfg_raw = maps["sn_config"].lookup(_u32(gen))
    cfg = abi.sn_config.from_buffer_copy(cfg_raw) if cfg_raw else abi.sn_config()
    return gen, cfg


def read_counters(maps: dict[str, Map]) -> dict[str, int]:
    """sn_counters summed over CPUs, by name."""
    ncpu = possible_cpus()
    out: dict[str, int] = {}
    for counter in abi.SnCounter:
        if counter == abi.SnCounter.MAX:
            continue
        raw = maps["sn_counters"].lookup(_u32(counter))
        total = 0
        if raw:
            total = sum(int.from_bytes(raw[i * 8 : i * 8 + 8], "little") for i in range(ncpu))
        out[counter.name.lower()] = total
    return out


def open_pinned() -> PinnedState:
    """Open the pinned maps that describe what is loaded, read-only (the guard
    lets anyone read). Raises KernelError when sentinel is not loaded."""
    sizes = {
        "sn_files": (ctypes.sizeof(abi.sn_file_key), ctypes.sizeof(abi.sn_file_val)),
        "sn_rule_refs": (ctypes.sizeof(abi.sn_rule_ref_key), ctypes.sizeof(abi.sn_rule_ref)),
        "sn_config": (4, ctypes.sizeof(abi.sn_config)),
        "sn_state": (4, ctypes.sizeof(abi.sn_state)),
        "sn_counters": (4, 8 * possible_cpus()),
    }
    maps: dict[str, Map] = {}
    try:
        for name, (ks, vs) in sizes.items():
            maps[name] = open_pinned_map(str(pins.MAP_DIR / name), name, ks, vs, read_only=True)
    except KernelError:
        for m in maps.values():
            m.close()
        raise
    return PinnedState(maps)


class Enforcer:
    """Programs and maps of one daemon's load. Pinned: closing it keeps enforcement."""

    def __init__(self, obj: BpfObject, links: dict[str, Link], mechanism: str, adopted: bool = False) -> None:
        self._obj = obj
        self.links = links
        self.mechanism = mechanism
        self.adopted = adopted  # True: the pinned programs of a previous daemon were kept as they are
        self.maps = {name: obj.maps[name] for name in MAP_NAMES}
        self._resolver: KernelResolver | None = None

    @classmethod
    def load(cls, mechanism: str, object_path: Path = OBJECT_PATH) -> Enforcer:
        """Load the object, reusing pinned maps, and put MECHANISM's programs in force.

        When the pinned links are exactly MECHANISM's programs from this same
        object (a restart of the same version), they are adopted as they are:
        nothing is attached, so no kernel code is patched under running CPUs.
        Otherwise (first start, upgrade, another mechanism) new links are
        attached before the old pinned ones are retired, so enforcement never
        lapses either way.
        """
        if mechanism not in PROGRAMS:
            raise NotSupported(f"no enforcement mechanism named {mechanism!r}")
        if not object_path.exists():
            raise KernelError(f"{object_path} is missing: build it with `make -C bpf`")
        pins.ensure_bpffs()
        if mechanism == MECH_TRACEPOINT:
            pins.ensure_tracefs()
        pins.MAP_DIR.mkdir(parents=True, exist_ok=True)
        pins.LINK_DIR.mkdir(parents=True, exist_ok=True)
        build = object_build_id(object_path)
        wanted = PROGRAMS[mechanism]
        adoptable = adoptable_links(mechanism, build)
        obj = BpfObject(str(object_path))
        links: dict[str, Link] = {}
        try:
            for name, prog in obj.programs.items():
                # Adopting loads no program at all: the maps are all it needs.
                prog.set_autoload(adoptable is None and name in wanted)
            for name in MAP_NAMES:
                obj.maps[name].set_pin_path(str(pins.MAP_DIR / name))
            obj.load()
            if adoptable is not None:
                links = {name: Link.open_pinned(str(path)) for name, path in adoptable.items()}
            else:
                links = {name: obj.programs[name].attach() for name in wanted}
                _swap_link_pins(links, build)
        except BaseException:
            for link in links.values():
                link.close()
            obj.close()
            raise
        return cls(obj, links, mechanism, adopted=adoptable is not None)

    def current_gen(self) -> int:
        return read_state(self.maps)[0]

    def config(self) -> abi.sn_config:
        return read_state(self.maps)[1]

    def counters(self) -> dict[str, int]:
        return read_counters(self.maps)

    def apply(self, build: Callable[[int], EncodedRuleSet]) -> EncodedRuleSet:
        """Write a new rule set into the idle generation, then switch to it.

        BUILD(gen) encodes the rule set for generation GEN. Until the one store
        to sn_state the old generation is in force; after it, the new one.
        On failure the idle generation is cleared and the old one stays.
        """
        old = self.current_gen()
        new = old ^ 1
        self._clear_gen(new)
        with self.resolver.session():
            encoded = build(new)
        try:
            for name, entries in (
                ("sn_files", encoded.files),
                ("sn_rule_refs", encoded.rule_refs),
                ("sn_net4", encoded.net4),
                ("sn_net6", encoded.net6),
                ("sn_bins", encoded.bins),
                ("sn_cgroups", encoded.cgroups),
            ):
                self.maps[name].update_many(entries)
            if encoded.uids:
                base = new * abi.MAX_UID_BOUNDS
                n = len(encoded.uids) // ctypes.sizeof(abi.sn_uid_bound)
                keys = b"".join((base + i).to_bytes(4, "little") for i in range(n))
                self.maps["sn_uids"].update_batch(keys, encoded.uids)
            if encoded.ports:
                base = new * abi.PORTS
                keys = b"".join((base + port).to_bytes(4, "little") for port in range(abi.PORTS))
                self.maps["sn_ports"].update_batch(keys, encoded.ports)
            self.maps["sn_config"].update(_u32(new), encoded.config)
        except KernelError:
            self._clear_gen(new)
            raise
        self.maps["sn_state"].update(_u32(0), bytes(abi.sn_state(gen=new)))
        self._clear_gen(old)
        return encoded

    def _clear_gen(self, gen: int) -> None:
        self.maps["sn_config"].update(_u32(gen), bytes(abi.sn_config()))
        gen_offset = abi.sn_file_key.gen.offset
        net_gen_offset = abi.sn_net4_key.gen.offset
        for name, offset in (
            ("sn_files", gen_offset),
            ("sn_rule_refs", gen_offset),
            ("sn_net4", net_gen_offset),
            ("sn_net6", net_gen_offset),
            ("sn_bins", gen_offset),
            ("sn_cgroups", abi.sn_cgroup_key.gen.offset),
        ):
            stale = [k for k in self.maps[name].all_keys() if k[offset] == gen]
            self.maps[name].delete_many(stale)

    @property
    def resolver(self) -> KernelResolver:
        """Rule paths -> the identities the hooks see (sentinel/kernel/resolve.py)."""
        if self._resolver is None:
            self._resolver = KernelResolver(self.maps["sn_probe"], self.maps["sn_state"], self.current_gen)
        return self._resolver

    def resolve(self, path: str) -> list[FileIdentity]:
        """The identities the hooks see for the object at PATH (OSError when nothing is there)."""
        return self.resolver(path)

    def ring_buffer(self, callback: Callable[[bytes], None], cut_short: Callable[[], bool] = lambda: False) -> RingBuffer:
        return RingBuffer(self.maps["sn_events"], callback, cut_short=cut_short)

    def close(self) -> None:
        """Release our handles. Pinned links and maps keep enforcing."""
        for link in self.links.values():
            link.close()
        self._obj.close()


def object_build_id(path: Path = OBJECT_PATH) -> str:
    """What names one build of the BPF object: the start of its SHA-256. Link
    pins carry it, so a restart can tell its own programs from an upgrade's."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def link_pin_name(program: str, build: str, stamp: int) -> str:
    """`<program>@<build>-<stamp>`: bpffs refuses dots in names, and has no
    rename, so every attach gets a name of its own."""
    return f"{program}@{build}-{stamp}"


def parse_link_pin(name: str) -> tuple[str, str | None]:
    """(program, build) from a pin name; build is None for pins of older releases."""
    program, _, rest = name.partition("@")
    build, sep, _ = rest.partition("-")
    return program, (build if sep else None)


def adoptable_links(mechanism: str, build: str) -> dict[str, Path] | None:
    """The pinned links, by program, when they are exactly MECHANISM's
    programs of build BUILD, each pinned once; else None (attach anew)."""
    found: dict[str, Path] = {}
    for path in pins.pinned_links():
        program, pinned_build = parse_link_pin(path.name)
        if pinned_build != build or program in found:
            return None
        found[program] = path
    return found if set(found) == set(PROGRAMS[mechanism]) else None


def _swap_link_pins(links: dict[str, Link], build: str) -> None:
    """Pin the new links, then detach and unpin every older one.

    Each pin gets a fresh name (link_pin_name): the new pin exists before the
    old one goes, and while both programs run over the same maps enforcement
    never lapses, even if the daemon dies half-way.
    """
    stamp = time.time_ns()
    keep = set()
    for name, link in links.items():
        path = pins.LINK_DIR / link_pin_name(name, build, stamp)
        link.pin(str(path))
        keep.add(path)
    for path in pins.pinned_links():
        if path not in keep:  # the previous daemon's, another mechanism's, an older build's
            _retire_link(path)


def _retire_link(path: Path) -> None:
    """Detach the link pinned at PATH and remove the pin.

    Tracing and LSM links on 6.1 refuse BPF_LINK_DETACH (EOPNOTSUPP); for them
    removing the pin drops the last reference (the daemon that made it has
    exited or been stopped), which detaches the program.
    """
    try:
        link = Link.open_pinned(str(path))
    except KernelError:
        link = None
    if link is not None:
        try:
            link.detach()
        except KernelError as exc:
            if exc.errno != errno.EOPNOTSUPP:
                raise
        link.close()
    path.unlink()


def unload_all() -> list[str]:
    """Detach every pinned link and remove every pin. Returns what was removed."""
    removed: list[str] = []
    for path in pins.pinned_links():
        _retire_link(path)
        removed.append(str(path))
    if pins.MAP_DIR.is_dir():
        for path in sorted(pins.MAP_DIR.iterdir()):
            path.unlink()
            removed.append(str(path))
    for d in (pins.MAP_DIR, pins.LINK_DIR, pins.PIN_ROOT):
        if d.is_dir():
            d.rmdir()
    return removed
