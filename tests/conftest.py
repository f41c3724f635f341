"""Kernel tests attach enforcing programs: they run only inside the VM
(scripts/vm-test sets SENTINEL_IN_VM=1), never against the host kernel."""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("SENTINEL_IN_VM") == "1":
        return
    guard = pytest.mark.skip(reason="kernel tests run only inside the VM: scripts/vm-test")
    for item in items:
        if "kernel" in item.keywords:
            item.add_marker(guard)
