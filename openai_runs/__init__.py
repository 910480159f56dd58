"""An asyncio SDK for the OpenAI Assistants Runs API.

Start with :class:`RunsClient`; the models are in :mod:`openai_runs.models`,
the errors in :mod:`openai_runs.exceptions`, authentication schemes in
:mod:`openai_runs.auth`, and the emulator in :mod:`openai_runs.testing`.
"""

from ._budget import Budget, LocalBudget
from ._client import RunCreateParams, Runs, RunsClient, RunSteps
from ._converter import converter
from ._http import Response
from ._many import WatchResult
from ._pagination import AsyncPager
from ._retry import RetryPolicy
from ._tools import ToolHandler, tool_registry
from ._watch_core import PollPolicy, WatchOptions, WatchPolicy
from ._watcher import RunWatcher, WatchState
from .exceptions import OpenAIRunsError
from .models import Run, RunStatus, RunStep

__version__ = "0.1.0"

__all__ = [
    "AsyncPager",
    "Budget",
    "LocalBudget",
    "OpenAIRunsError",
    "PollPolicy",
    "Response",
    "RetryPolicy",
    "Run",
    "RunCreateParams",
    "RunStatus",
    "RunStep",
    "RunSteps",
    "RunWatcher",
    "Runs",
    "RunsClient",
    "ToolHandler",
    "WatchOptions",
    "WatchPolicy",
    "WatchResult",
    "WatchState",
    "converter",
    "tool_registry",
]
