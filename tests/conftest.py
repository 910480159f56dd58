"""Settings every test file shares."""

from __future__ import annotations

import pytest

SERIAL = frozenset(
    {
        "test_emulator.py",
        "test_many.py",
        "test_reliability.py",
        "test_thread_lock.py",
        "test_watch_core.py",
        "test_watcher.py",
    }
)
"""Files whose tests assert deadlines, back-offs and throughput with short real
intervals. `nox -s tests` runs every other test on all cores (pytest-xdist),
then these in one process, so no other test competes with them for the CPU."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.name in SERIAL:
            item.add_marker(pytest.mark.serial)
