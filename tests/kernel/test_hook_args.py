"""Each enforcing entry point's `ret` is where this kernel puts it.

BPF_PROG reads its arguments from the hook's context by position, and `ret`
(the previous program's verdict, tests/abi/test_hook_chain.py) comes right
after the hook's own arguments. A program declaring one argument too few
reads the last real argument as `ret` and the verifier accepts it silently:
6.1's path_rename hook and security_path_rename take the rename flags, which
the path_rename programs once left out. Checked against the running kernel's
BTF (bpf_lsm_<hook> for lsm/, the function itself for fmod_ret/).
"""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.abi.test_hook_chain import PROGRAMS, VOID_HOOKS

# The count does not depend on the mechanism: once, in the default boot.
pytestmark = [pytest.mark.kernel, pytest.mark.one_config]

def _kernel_arg_counts(functions: set[str], btf: str = "/sys/kernel/btf/vmlinux") -> dict[str, int]:
    """How many arguments each of FUNCTIONS takes, by the BTF in the file BTF."""
    raw = subprocess.run(["bpftool", "btf", "dump", "file", btf, "format", "raw"],
                         capture_output=True, text=True, check=True).stdout
    protos: dict[str, int] = {}
    wanted: dict[str, str] = {}
    for m in re.finditer(r"^\[(\d+)\] FUNC_PROTO '\(anon\)' ret_type_id=\d+ vlen=(\d+)$", raw, re.M):
        protos[m.group(1)] = int(m.group(2))
    for m in re.finditer(r"^\[\d+\] FUNC '(\w+)' type_id=(\d+)", raw, re.M):
        if m.group(1) in functions:
            wanted[m.group(1)] = m.group(2)
    return {fn: protos[tid] for fn, tid in wanted.items()}


def _target(name: str, hook: str) -> str:
    return f"bpf_lsm_{hook}" if name.startswith("lsm_") else hook


def test_ret_follows_the_hooks_own_arguments() -> None:
    progs = [(name, _target(name, hook), args) for name, hook, args, _ in PROGRAMS if hook not in VOID_HOOKS]
    counts = _kernel_arg_counts({target for _, target, _ in progs})
    wrong = []
    for name, target, args in progs:
        assert target in counts, f"{name}: {target} is not in this kernel's BTF"
        declared = len(args.split(",")) - 1  # without ret
        if declared != counts[target]:
            wrong.append(f"{name}: declares {declared} arguments before ret, {target} has {counts[target]}")
    assert not wrong, "\n".join(wrong)
