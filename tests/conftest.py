"""Settings every test file shares."""

from __future__ import annotations

import signal
import threading

import pytest

# A test run started in the background (`nox &` in a script, some CI
# runners) has SIGINT ignored, and every child inherits that: the tests that
# stop a served emulator with Ctrl-C (SIGINT) then wait on a child nothing can
# interrupt. Restore what a terminal gives, in this process and its children.
if (
    threading.current_thread() is threading.main_thread()
    and signal.getsignal(signal.SIGINT) is signal.SIG_IGN
):
    signal.signal(signal.SIGINT, signal.default_int_handler)

SERIAL = frozenset(
    {
        "test_emulator.py",
        "test_many.py",
        "test_redis_budget.py",
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
