"""A stateful emulator of the Runs API for your tests, demos and benchmarks.

    >>> from openai_runs.testing import Emulator, RunScript
    >>> async def main() -> None:
    ...     async with Emulator() as emu:
    ...         run = emu.create_run(script=RunScript.failed(after=2.0))
    ...         ...  # point your client at emu.url with emu.api_key

Runs follow a `RunScript` (phases of statuses with durations) against the
emulator's clock; a `ManualClock` moves them without sleeping. `Fault`
makes requests fail the ways the live API does. The pytest plugin provides
an `emulator` fixture. See docs/emulator.md.
"""

from ._assistants import Assistant
from ._clock import Clock, ManualClock, SystemClock
from ._emulator import Emulator, serve
from ._ratelimit import RateLimit
from ._script import Fault, Phase, RunScript, ScriptedCall
from ._state import ApiError, RequestCounts

__all__ = [
    "ApiError",
    "Assistant",
    "Clock",
    "Emulator",
    "Fault",
    "ManualClock",
    "Phase",
    "RateLimit",
    "RequestCounts",
    "RunScript",
    "ScriptedCall",
    "SystemClock",
    "serve",
]
