"""The pytest plugin of openai-runs: an `emulator` fixture.

The fixture serves an `Emulator` from a background thread, so tests need no
async plugin: a plain test calls `asyncio.run(...)` against `emulator.url`
as often as it likes. Options for the emulator come from a marker:

    @pytest.mark.emulator(clock=ManualClock(), require_beta=False)
    def test_something(emulator): ...
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

    from openai_runs.testing import Emulator


def pytest_configure(config: pytest.Config) -> None:
    """Register the `emulator` marker."""
    config.addinivalue_line(
        "markers",
        "emulator(**options): keyword arguments for the `emulator` fixture's "
        "Emulator(...)",
    )


@pytest.fixture(name="emulator")
def _emulator(request: pytest.FixtureRequest) -> Iterator[Emulator]:
    """Return an `Emulator` serving on 127.0.0.1 for the duration of a test."""
    from openai_runs.testing import Emulator  # noqa: PLC0415 - cheap plugin import

    marker = request.node.get_closest_marker("emulator")
    emulator = Emulator(**(marker.kwargs if marker else {}))
    with emulator.running_in_thread():
        yield emulator
