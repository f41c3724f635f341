"""The compiled BPF object (built by `make -C bpf`) lives here as package data."""

from __future__ import annotations

from pathlib import Path

OBJECT_PATH = Path(__file__).with_name("sentinel.bpf.o")
