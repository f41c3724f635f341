"""Every enforcing entry point passes an earlier program's denial through.

BPF-LSM and fmod_ret programs on one hook form a chain: each gets the
previous program's return value as its last argument (`int ret`) and returns
the chain's result. Sentinel shares hooks with other BPF-LSM users (systemd's
RestrictFileSystems), so each of its lsm/ and fmod_ret/ programs declares
`ret` and returns it unchanged when it is non-zero, before deciding anything.

On x86-64 the trampoline stops the chain at the first non-zero return
(invoke_bpf_mod_ret in arch/x86/net/bpf_jit_comp.c), so a program that forgot
`ret` is not caught by tests/kernel/test_coexist.py on those kernels: this
reads the sources instead, on the host.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

BPF = Path(__file__).resolve().parents[2] / "bpf"

# LSM hooks that return void: their programs have no `ret`.
VOID_HOOKS = {"bprm_committed_creds"}

_PROG = re.compile(
    r'SEC\("(?P<sec>(?:lsm(?:\.s)?|fmod_ret)/(?P<hook>\w+))"\)\s*'
    r"int BPF_PROG\((?P<name>\w+),(?P<args>[^)]*)\)\s*\{(?P<body>.*?)\n\}",
    re.S,
)
_PASS_THROUGH = re.compile(r"^\s*(?:if \(ret\)\s*return ret;|return ret \? ret :)")


def _programs() -> list[tuple[str, str, str, str]]:
    out = []
    for src in sorted(BPF.glob("*.bpf.c")):
        for m in _PROG.finditer(src.read_text()):
            out.append((m["name"], m["hook"], m["args"], m["body"]))
    return out


PROGRAMS = _programs()


def test_programs_were_found() -> None:
    names = {p[0] for p in PROGRAMS}
    assert {"lsm_file_open", "fmodret_file_open", "lsm_path_unlink", "fmodret_path_rename"} <= names


@pytest.mark.parametrize("name,hook,args,body", [p for p in PROGRAMS if p[1] not in VOID_HOOKS],
                         ids=[p[0] for p in PROGRAMS if p[1] not in VOID_HOOKS])
def test_program_returns_an_earlier_denial_unchanged(name: str, hook: str, args: str, body: str) -> None:
    last = " ".join(args.split(",")[-1].split())
    assert last == "int ret", f"{name}: last argument is {last!r}, not the chain's `int ret`"
    assert _PASS_THROUGH.match(body), f"{name}: does not start by returning a non-zero ret unchanged"
